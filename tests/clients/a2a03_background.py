"""The official a2a-sdk 0.3 client on background tasks, across two instances of the function sharing one
redis-server: a non-blocking message/send (the client's polling mode: `blocking: false`) is answered at once
with the task `submitted`; FC's async invocation runs it on the other instance; `tasks/resubscribe` streams
its recorded events and then the live ones until `completed`; `tasks/get` on either instance reads the
journal; a finished task cannot be resubscribed (-32602, what the SDK's own server answers), an unknown one
is -32001; `tasks/cancel` stops a running background task from the instance that does not run it.

Run by tests/clients.rs with FUNCTION_URL (where tasks are sent; FC delivers them to the other one) and
OTHER_FUNCTION_URL. Raw answers are validated strictly with the SDK's models. Exits non-zero, naming the
check, when any behaviour breaks.
"""
import asyncio
import os
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientJSONRPCError
from a2a.types import (
    CancelTaskResponse, GetTaskResponse, Message, Part, Role, SendMessageResponse, SendStreamingMessageResponse,
    Task, TaskArtifactUpdateEvent, TaskIdParams, TaskQueryParams, TaskState, TaskStatusUpdateEvent, TextPart,
)

BASE = os.environ["FUNCTION_URL"]
OTHER = os.environ["OTHER_FUNCTION_URL"]


def check(condition, what):
    if not condition:
        raise SystemExit(f"a2a 0.3 background: {what}")


def message(text, user="bg-alice"):
    return Message(role=Role.user, parts=[Part(root=TextPart(text=text))], message_id=uuid.uuid4().hex,
                   metadata={"user_id": user})


def strictly(model, raw):
    """`raw` (JSON text from the wire) as the SDK's `model` in pydantic's strict mode."""
    return model.model_validate_json(raw, strict=True).root


def answer_of(task):
    return "".join(p.root.text for a in task.artifacts or [] for p in a.parts)


async def raw_resubscribe(http, base, task_id, rpc_id):
    """`tasks/resubscribe` as raw SSE: every event validated strictly, each answering our JSON-RPC id."""
    body = {"jsonrpc": "2.0", "id": rpc_id, "method": "tasks/resubscribe", "params": {"id": task_id}}
    events = []
    async with http.stream("POST", base + "/a2a", json=body) as response:
        check(response.headers["content-type"].startswith("text/event-stream"), f"an SSE answer: {response.headers}")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                answer = strictly(SendStreamingMessageResponse, line[len("data: "):])
                check(answer.id == rpc_id, f"the events answer the resubscribe's id: {answer.id!r}")
                events.append(answer.result)
    return events


async def main():
    async with httpx.AsyncClient(timeout=60) as http:
        card = await A2ACardResolver(http, BASE).get_agent_card()
        other_card = await A2ACardResolver(http, OTHER).get_agent_card()
        polling = ClientFactory(ClientConfig(httpx_client=http, streaming=False, polling=True)).create(card)
        streaming = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
        other = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(other_card)

        # Sent non-blocking: the task comes back submitted, before anything ran.
        [(task, update)] = [event async for event in polling.send_message(message("sleep 2 seconds"))]
        check(update is None and task.status.state == TaskState.submitted, f"submitted at once: {task.status}")
        check(task.history and task.history[0].parts[0].root.text == "sleep 2 seconds", f"the question: {task}")

        # Resubscribed on the instance that sent it (the other runs it): the recorded events, then the live
        # ones, until the terminal status.
        updates, last = [], None
        async for current, update in streaming.resubscribe(TaskIdParams(id=task.id)):
            last = current
            updates.append(update)
        check(updates[0] is None, f"the stream starts with the task: {updates[:2]}")
        statuses = [u for u in updates if isinstance(u, TaskStatusUpdateEvent)]
        check([s.status.state for s in statuses].count(TaskState.completed) == 1, f"one ending: {statuses}")
        check(statuses[-1].final and statuses[-1] is updates[-1], f"the terminal status is last: {updates[-1]}")
        check(any("sleep" in (s.status.message.parts[0].root.text if s.status.message else "") for s in statuses),
              f"the tool's use shows: {statuses}")
        check(any(isinstance(u, TaskArtifactUpdateEvent) for u in updates), "the answer streams as artifacts")
        check(last.id == task.id and last.context_id == task.context_id, f"the same task: {last}")
        check(last.status.state == TaskState.completed and "slept" in answer_of(last), f"completed: {last}")

        # tasks/get on either instance: the journal's task, strictly valid, the same answer.
        for base in (BASE, OTHER):
            body = {"jsonrpc": "2.0", "id": 5, "method": "tasks/get", "params": {"id": task.id}}
            got = strictly(GetTaskResponse, (await http.post(base + "/a2a", json=body)).text).result
            check(got.status.state == TaskState.completed and answer_of(got) == answer_of(last), f"tasks/get: {got}")
        got = await other.get_task(TaskQueryParams(id=task.id))
        check(got.status.state == TaskState.completed, f"the SDK's tasks/get: {got.status}")

        # Over: nothing more to stream (the SDK's own server answers InvalidParams); unknown: TaskNotFound.
        for task_id, code in [(task.id, -32602), ("no-such-task", -32001)]:
            try:
                async for _ in other.resubscribe(TaskIdParams(id=task_id)):
                    pass
                check(False, f"resubscribing to {task_id} streams nothing")
            except A2AClientJSONRPCError as error:
                check(error.error.code == code, f"resubscribe {task_id}: {error.error}")

        # Raw and strict, on the instance running it, mid-turn.
        wire = message("sleep 2 seconds").model_dump(mode="json", by_alias=True, exclude_none=True)
        params = {"message": wire, "configuration": {"blocking": False}}
        body = {"jsonrpc": "2.0", "id": 7, "method": "message/send", "params": params}
        sent = strictly(SendMessageResponse, (await http.post(BASE + "/a2a", json=body)).text).result
        check(isinstance(sent, Task) and sent.status.state == TaskState.submitted, f"strict submitted: {sent}")
        events = await raw_resubscribe(http, OTHER, sent.id, "again-1")
        check(isinstance(events[0], Task) and events[0].id == sent.id, f"strict: the task first: {events[0]}")
        check(isinstance(events[-1], TaskStatusUpdateEvent) and events[-1].final, f"strict: final last: {events[-1]}")
        check(events[-1].status.state == TaskState.completed, f"strict: completed: {events[-1]}")
        text = "".join(p.root.text for e in events if isinstance(e, TaskArtifactUpdateEvent) for p in e.artifact.parts)
        check("slept" in text, f"strict: the answer: {text!r}")

        # A running background task (the model drips until stopped), cancelled where it does not run.
        [(running, _)] = [event async for event in polling.send_message(message("[fault:drip] count"))]
        cancelled, seen = None, []
        async for current, update in streaming.resubscribe(TaskIdParams(id=running.id)):
            seen.append(update)
            if isinstance(update, TaskArtifactUpdateEvent) and cancelled is None:
                body = {"jsonrpc": "2.0", "id": 9, "method": "tasks/cancel", "params": {"id": running.id}}
                cancelled = strictly(CancelTaskResponse, (await http.post(BASE + "/a2a", json=body)).text).result
        check(cancelled is not None and cancelled.status.state == TaskState.canceled, f"tasks/cancel: {cancelled}")
        check(isinstance(seen[-1], TaskStatusUpdateEvent) and seen[-1].status.state == TaskState.canceled
              and seen[-1].final, f"the resubscribed stream ends canceled: {seen[-1]}")
        got = await other.get_task(TaskQueryParams(id=running.id))
        check(got.status.state == TaskState.canceled, f"tasks/get after the cancel: {got.status}")
        try:
            await other.cancel_task(TaskIdParams(id=running.id))
            check(False, "a finished background task is not cancelable")
        except A2AClientJSONRPCError as error:
            check(error.error.code == -32002, f"cancel again: {error.error}")
    print("a2a 0.3 background: ok")


asyncio.run(main())
