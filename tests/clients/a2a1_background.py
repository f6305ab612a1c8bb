"""The official a2a-sdk 1.x client (A2A 1.0) on background tasks, across two instances of the function sharing
one redis-server: a SendMessage with `returnImmediately` (the client's polling mode) is answered at once with
the task TASK_STATE_SUBMITTED; FC's async invocation runs it on the other instance; SubscribeToTask streams
the task, its recorded events and then the live ones until TASK_STATE_COMPLETED; GetTask on either instance
reads the journal; a finished task cannot be subscribed to (UnsupportedOperationError, as the 1.0
specification says), an unknown one is TaskNotFoundError; CancelTask stops a running background task from
the instance that does not run it.

Run by tests/clients.rs with FUNCTION_URL (where tasks are sent; FC delivers them to the other one) and
OTHER_FUNCTION_URL. Raw answers are parsed strictly into the SDK's protobuf messages. Exits non-zero, naming
the check, when any behaviour breaks.
"""
import asyncio
import json
import os
import uuid

import httpx
from google.protobuf.json_format import MessageToDict, ParseDict
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest, GetTaskRequest, Message, Part, Role, SendMessageRequest, SendMessageResponse,
    StreamResponse, SubscribeToTaskRequest, Task, TaskNotCancelableError, TaskNotFoundError, TaskState,
    UnsupportedOperationError,
)

BASE = os.environ["FUNCTION_URL"]
OTHER = os.environ["OTHER_FUNCTION_URL"]
SUBMITTED, COMPLETED, CANCELED = (
    TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_CANCELED,
)


def check(condition, what):
    if not condition:
        raise SystemExit(f"a2a 1.x background: {what}")


def request(text, user="bg-bob"):
    msg = Message(role=Role.ROLE_USER, parts=[Part(text=text)], message_id=uuid.uuid4().hex)
    msg.metadata.update({"user_id": user})
    return SendMessageRequest(message=msg)


def strictly(message_type, value):
    """`value` as the SDK's protobuf message, rejecting unknown fields and enum values."""
    return ParseDict(value, message_type(), ignore_unknown_fields=False)


def answer_of(task):
    return "".join(p.text for a in task.artifacts for p in a.parts)


def streamed_text(events):
    return "".join(p.text for e in events if e.HasField("artifact_update") for p in e.artifact_update.artifact.parts)


async def rpc(http, base, method, params, rpc_id=1):
    body = {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}
    answer = (await http.post(base + "/a2a", json=body, headers={"A2A-Version": "1.0"})).json()
    check(answer.get("id") == rpc_id and "result" in answer, f"{method}: {answer}")
    return answer["result"]


async def raw_subscribe(http, base, task_id, rpc_id):
    """SubscribeToTask as raw SSE: every result parsed strictly, each answering our JSON-RPC id."""
    body = {"jsonrpc": "2.0", "id": rpc_id, "method": "SubscribeToTask", "params": {"id": task_id}}
    events = []
    async with http.stream("POST", base + "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
        check(response.headers["content-type"].startswith("text/event-stream"), f"an SSE answer: {response.headers}")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                answer = json.loads(line[len("data: "):])
                check(answer["id"] == rpc_id, f"the events answer the subscription's id: {answer}")
                events.append(strictly(StreamResponse, answer["result"]))
    return events


async def main():
    async with httpx.AsyncClient(timeout=60) as http:
        card = await A2ACardResolver(http, BASE).get_agent_card()
        other_card = await A2ACardResolver(http, OTHER).get_agent_card()
        polling = ClientFactory(ClientConfig(httpx_client=http, streaming=False, polling=True)).create(card)
        streaming = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
        other = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(other_card)

        # Sent with returnImmediately: the task comes back submitted, before anything ran.
        [sent] = [event async for event in polling.send_message(request("sleep 2 seconds"))]
        check(sent.HasField("task") and sent.task.status.state == SUBMITTED, f"submitted at once: {sent}")
        task = sent.task

        # Subscribed on the instance that sent it (the other runs it).
        events = [event async for event in streaming.subscribe(SubscribeToTaskRequest(id=task.id))]
        kinds = [e.WhichOneof("payload") for e in events]
        check(kinds[0] == "task" and events[0].task.id == task.id, f"the stream starts with the task: {kinds}")
        states = [e.status_update.status.state for e in events if e.HasField("status_update")]
        check(states[-1] == COMPLETED and kinds[-1] == "status_update", f"ends completed: {states}")
        check(states.count(COMPLETED) == 1, f"one ending: {states}")
        check(TaskState.TASK_STATE_WORKING in states, f"working on the way: {states}")
        check("slept" in streamed_text(events), f"the answer streams: {streamed_text(events)!r}")

        # GetTask on either instance: the journal's task, strictly valid, the same answer.
        for base in (BASE, OTHER):
            got = strictly(Task, await rpc(http, base, "GetTask", {"id": task.id}))
            check(got.status.state == COMPLETED and answer_of(got) == streamed_text(events), f"GetTask: {got}")
            check(got.context_id == task.context_id, f"the same context: {got.context_id}")
        got = await other.get_task(GetTaskRequest(id=task.id))
        check(got.status.state == COMPLETED, f"the SDK's GetTask: {got.status}")

        # Over: UnsupportedOperationError (1.0's rule for a terminal task); unknown: TaskNotFoundError.
        for task_id, error in [(task.id, UnsupportedOperationError), ("no-such-task", TaskNotFoundError)]:
            try:
                async for _ in other.subscribe(SubscribeToTaskRequest(id=task_id)):
                    pass
                check(False, f"subscribing to {task_id} streams nothing")
            except error:
                pass

        # Raw and strict, on the instance running it, mid-turn.
        params = MessageToDict(request("sleep 2 seconds"))
        params["configuration"] = {"returnImmediately": True}
        raw = strictly(SendMessageResponse, await rpc(http, BASE, "SendMessage", params, rpc_id=7))
        check(raw.task.status.state == SUBMITTED, f"strict submitted: {raw}")
        events = await raw_subscribe(http, OTHER, raw.task.id, "again-1")
        check(events[0].HasField("task") and events[0].task.id == raw.task.id, f"strict: the task first: {events[0]}")
        check(events[-1].status_update.status.state == COMPLETED, f"strict: completed last: {events[-1]}")
        check("slept" in streamed_text(events), "strict: the answer")

        # A running background task (the model drips until stopped), cancelled where it does not run.
        [running] = [event async for event in polling.send_message(request("[fault:drip] count"))]
        cancelled, seen = None, []
        async for event in streaming.subscribe(SubscribeToTaskRequest(id=running.task.id)):
            seen.append(event)
            if event.HasField("artifact_update") and cancelled is None:
                cancelled = strictly(Task, await rpc(http, BASE, "CancelTask", {"id": running.task.id}))
        check(cancelled is not None and cancelled.status.state == CANCELED, f"CancelTask: {cancelled}")
        check(seen[-1].status_update.status.state == CANCELED, f"the subscribed stream ends canceled: {seen[-1]}")
        got = await other.get_task(GetTaskRequest(id=running.task.id))
        check(got.status.state == CANCELED, f"GetTask after the cancel: {got.status}")
        try:
            await other.cancel_task(CancelTaskRequest(id=running.task.id))
            check(False, "a finished background task is not cancelable")
        except TaskNotCancelableError:
            pass
    print("a2a 1.x background: ok")


asyncio.run(main())
