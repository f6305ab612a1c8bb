"""The official a2a-sdk 1.x client (the current line, A2A 1.0) against the function's /a2a.

Run by tests/clients.rs with FUNCTION_URL (the function's base URL), AGENT_NAME, and CONSENT_FUNCTION_URL
(the same function whose MCP server takes the user's OAuth2 token: TASK_STATE_AUTH_REQUIRED with the link,
which this script "clicks"). Exits non-zero, naming the check, when any behaviour breaks. A second part drives the same endpoint through the SDK's 0.3-compat
transport (a card that lists only a 0.3 interface), as a 1.x client talking to an older agent would.
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
    StreamResponse, Task, TaskNotCancelableError, TaskNotFoundError, TaskState,
)

from consent import consent  # tests/clients/consent.py: the user's click

BASE = os.environ["FUNCTION_URL"]
COMPLETED, FAILED, CANCELED = TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED


def check(condition, what):
    if not condition:
        raise SystemExit(f"a2a 1.x: {what}")


def request(text, user="alice"):
    msg = Message(role=Role.ROLE_USER, parts=[Part(text=text)], message_id=uuid.uuid4().hex)
    msg.metadata.update({"user_id": user})
    return SendMessageRequest(message=msg)


async def check_consent_flow(http):
    card = await A2ACardResolver(http, os.environ["CONSENT_FUNCTION_URL"]).get_agent_card()
    streaming = ClientFactory(ClientConfig(streaming=True)).create(card)
    states, prompts, chunks = [], [], []
    async for event in streaming.send_message(request("say hello to Ada", user="a2a1-consent")):
        if event.HasField("artifact_update"):
            chunks.extend(p.text for p in event.artifact_update.artifact.parts)
        if not event.HasField("status_update"):
            continue
        status = event.status_update.status
        states.append(status.state)
        if status.state == TaskState.TASK_STATE_AUTH_REQUIRED:
            parts = status.message.parts
            data = MessageToDict(next(p.data for p in parts if p.HasField("data")))
            text = next(p.text for p in parts if p.HasField("text"))
            url = data["url"]
            check(data["type"] == "oauth2_authorization" and url in text, f"the prompt: {parts}")
            prompts.append(url)
            consent(url)
    check(len(prompts) == 1, f"one authorization prompt: {prompts}")
    at = states.index(TaskState.TASK_STATE_AUTH_REQUIRED)
    check(TaskState.TASK_STATE_WORKING in states[at:], f"working again after the consent: {states}")
    check(states[-1] == COMPLETED, f"the task completes after the consent: {states}")
    check("Hello, Ada!" in "".join(chunks), f"consented answer {chunks!r}")


async def rpc(http, method, params):
    """A raw 1.0 JSON-RPC call; its `result` as a dict."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    answer = (await http.post(BASE + "/a2a", json=body, headers={"A2A-Version": "1.0"})).json()
    check("result" in answer, f"{method}: {answer}")
    return answer["result"]


def strictly(message_type, value):
    """`value` as the SDK's protobuf message, rejecting unknown fields and enum values (the SDK's own
    parsing ignores them, so a wrong state name would pass it as the default)."""
    return ParseDict(value, message_type(), ignore_unknown_fields=False)


async def check_the_wire_strictly(http):
    """SendMessage, SendStreamingMessage, GetTask and CancelTask, completed, failed and canceled, as raw
    answers parsed strictly."""
    wire = lambda text: MessageToDict(request(text))
    for text, state in [("say hello to Ada", COMPLETED), ("[fault:401] hi", FAILED)]:
        sent = strictly(SendMessageResponse, await rpc(http, "SendMessage", wire(text)))
        check(sent.task.status.state == state, f"strict SendMessage of {text!r}: {sent}")
        got = strictly(Task, await rpc(http, "GetTask", {"id": sent.task.id}))
        check(got.status.state == state, f"strict GetTask: {got}")
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": wire(text)}
        async with http.stream("POST", BASE + "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
            stream = [strictly(StreamResponse, json.loads(line[len("data: "):])["result"])
                      async for line in response.aiter_lines() if line.startswith("data: ")]
        check(stream[-1].status_update.status.state == state, f"strict stream of {text!r}: {stream[-1]}")
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": wire("[fault:drip] count")}
    canceled = None
    async with http.stream("POST", BASE + "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = strictly(StreamResponse, json.loads(line[len("data: "):])["result"])
            if event.HasField("artifact_update") and canceled is None:
                canceled = strictly(Task, await rpc(http, "CancelTask", {"id": event.artifact_update.task_id}))
                check(canceled.status.state == CANCELED, f"strict CancelTask: {canceled}")
            if event.HasField("status_update") and event.status_update.status.state != TaskState.TASK_STATE_WORKING:
                check(event.status_update.status.state == CANCELED, f"strict cancelled stream: {event}")
    check(canceled is not None, "strict: the dripping stream was cancelled")


async def check_approval(http):
    """TOOL_APPROVAL=helloworld (APPROVAL_FUNCTION_URL): the task stops TASK_STATE_INPUT_REQUIRED with the
    request as a data part; a message in the same task answering it completes that task. Parsed strictly."""
    url = os.environ["APPROVAL_FUNCTION_URL"] + "/a2a"

    async def send(params):
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
        answer = (await http.post(url, json=body, headers={"A2A-Version": "1.0"})).json()
        check("result" in answer, f"approval SendMessage: {answer}")
        return strictly(SendMessageResponse, answer["result"]).task

    asked = await send(MessageToDict(request("Please say hello to Ada")))
    check(asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, f"input-required: {asked.status}")
    data = [MessageToDict(p)["data"] for p in asked.status.message.parts if p.HasField("data")]
    check(len(data) == 1 and data[0]["type"] == "mcp_approval_request", f"the request as a data part: {data}")
    check(json.loads(data[0]["arguments"]) == {"name": "Ada"}, f"arguments: {data[0]}")
    answer = {"message": {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "contextId": asked.context_id,
                          "taskId": asked.id, "metadata": {"user_id": "alice"},
                          "parts": [{"data": {"approval_request_id": data[0]["id"], "approve": True}}]}}
    done = await send(answer)
    check(done.id == asked.id and done.status.state == COMPLETED, f"the same task completes: {done.status}")
    check("Hello, Ada!" in answer_of(done), f"the approved call's answer: {answer_of(done)!r}")


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

        # A tool that works for more than three keep-alive intervals (STREAM_HEARTBEAT_SECS=1): the SSE
        # comments on the quiet stream are skipped by the client, the task completes with the tool's answer.
        stream = await events(streaming, "sleep 3.5 seconds")
        check(stream[-1].status_update.status.state == COMPLETED, f"a quiet stream ends completed: {stream[-1]}")
        chunks = [e.artifact_update for e in stream if e.HasField("artifact_update")]
        check("slept" in "".join(p.text for c in chunks for p in c.artifact.parts), "the slow tool's answer")

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
        await check_consent_flow(http)
        await check_the_wire_strictly(http)
        await check_approval(http)
    print("a2a 1.x: ok")


asyncio.run(main())
