"""The official a2a-sdk 1.x client (the current line, A2A 1.0) against the function's /a2a.

Run by tests/clients.rs with FUNCTION_URL (the function's base URL) and AGENT_NAME. Exits non-zero, naming
the check, when any behaviour breaks. A second part drives the same endpoint through the SDK's 0.3-compat
transport (a card that lists only a 0.3 interface), as a 1.x client talking to an older agent would.
"""
import asyncio
import os
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest, GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskNotCancelableError,
    TaskNotFoundError, TaskState,
)

BASE = os.environ["FUNCTION_URL"]
COMPLETED, FAILED, CANCELED = TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED


def check(condition, what):
    if not condition:
        raise SystemExit(f"a2a 1.x: {what}")


def request(text):
    msg = Message(role=Role.ROLE_USER, parts=[Part(text=text)], message_id=uuid.uuid4().hex)
    msg.metadata.update({"user_id": "alice"})
    return SendMessageRequest(message=msg)


def answer_of(task):
    return "".join(p.text for a in task.artifacts for p in a.parts)


async def events(client, text):
    return [e async for e in client.send_message(request(text))]


async def main():
    async with httpx.AsyncClient(timeout=30) as http:
        card = await A2ACardResolver(http, BASE).get_agent_card()
        check(card.name == os.environ["AGENT_NAME"], f"card name {card.name!r}")
        check(card.capabilities.streaming, "card says streaming")
        first = card.supported_interfaces[0]
        check((first.url, first.protocol_version) == (BASE + "/a2a", "1.0"), f"preferred interface {first}")
        send = ClientFactory(ClientConfig(streaming=False)).create(card)
        streaming = ClientFactory(ClientConfig(streaming=True)).create(card)

        # SendMessage: the completed task, the answer as its artifact.
        [result] = await events(send, "say hello to Ada")
        check(result.HasField("task"), f"SendMessage answers a task: {result}")
        task = result.task
        check(task.status.state == COMPLETED and "Hello, Ada!" in answer_of(task), f"send: {task}")
        check(task.context_id, "a generated contextId is returned")
        got = await send.get_task(GetTaskRequest(id=task.id))
        check(got.status.state == COMPLETED and answer_of(got) == answer_of(task), "GetTask")

        # SendStreamingMessage: task, status and artifact updates as they come, the terminal status last.
        stream = await events(streaming, "say hello to Grace")
        kinds = [e.WhichOneof("payload") for e in stream]
        check(kinds[0] == "task", f"the stream starts with the task: {kinds}")
        chunks = [e.artifact_update for e in stream if e.HasField("artifact_update")]
        check(len(chunks) >= 2, f"more than one streamed chunk: {kinds}")
        check("Hello, Grace!" in "".join(p.text for c in chunks for p in c.artifact.parts), "streamed answer")
        notes = [e.status_update.status.message.parts[0].text for e in stream
                 if e.HasField("status_update") and e.status_update.status.HasField("message")]
        check(any("helloworld" in n for n in notes), f"tool use shows as a status message: {notes}")
        check(kinds[-1] == "status_update" and stream[-1].status_update.status.state == COMPLETED, "ends completed")

        # CancelTask on a running turn (the stand-in model drips forever).
        seen, cancelled = [], None
        async for event in streaming.send_message(request("[fault:drip] count slowly")):
            seen.append(event)
            if event.HasField("artifact_update") and cancelled is None:
                cancelled = await send.cancel_task(CancelTaskRequest(id=event.artifact_update.task_id))
        check(cancelled is not None and cancelled.status.state == CANCELED, f"CancelTask: {cancelled}")
        check(seen[-1].HasField("status_update") and seen[-1].status_update.status.state == CANCELED,
              f"the cancelled stream ends canceled: {seen[-1]}")
        try:
            await send.cancel_task(CancelTaskRequest(id=cancelled.id))
            check(False, "a finished task is not cancelable")
        except TaskNotCancelableError:
            pass

        # A failing model: failed, with our failure code.
        stream = await events(streaming, "[fault:midstream-error] explain")
        last = stream[-1].status_update
        check(last.status.state == FAILED, f"failing model: {stream[-1]}")
        check(last.metadata["error"]["code"] == "model_error", f"failure code: {last.metadata}")

        try:
            await send.get_task(GetTaskRequest(id="no-such-task"))
            check(False, "unknown task")
        except TaskNotFoundError:
            pass

        # The 1.x SDK's 0.3-compat transport against the same URL (a card offering only 0.3).
        raw = (await http.get(BASE + "/.well-known/agent-card.json")).json()
        for key in ["supportedInterfaces"]:
            raw.pop(key)
        from a2a.client.card_resolver import parse_agent_card
        legacy = ClientFactory(ClientConfig(streaming=True)).create(parse_agent_card(raw))
        stream = await events(legacy, "say hello to Lin")
        check(stream[-1].status_update.status.state == COMPLETED, f"0.3-compat stream: {stream[-1]}")
        check(sum(e.HasField("artifact_update") for e in stream) >= 2, "0.3-compat chunks")
    print("a2a 1.x: ok")


asyncio.run(main())
