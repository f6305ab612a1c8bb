"""The official a2a-sdk 0.3 client (what the AgentScope runtime pins) against the function's /a2a.

Run by tests/clients.rs with FUNCTION_URL (the function's base URL), AGENT_NAME, CONSENT_FUNCTION_URL
(the same function whose MCP server takes the user's OAuth2 token: the task goes `auth-required` with the
link, this script "clicks" it, the task goes on) and APPROVAL_FUNCTION_URL (the same function with
TOOL_APPROVAL=helloworld: the task goes `input-required`, the answer continues it) and QUESTION_FUNCTION_URL
(the same function whose MCP server speaks 2026-07-28 and asks the user: `book_table` a form, `sign_terms` a
link; the task goes `input-required` with the question, the answer resumes the call). Exits non-zero, naming
the check, when any behaviour breaks.
"""
import asyncio
import json
import os
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientJSONRPCError
from a2a.types import (
    CancelTaskResponse, DataPart, GetTaskResponse, Message, Part, Role, SendMessageResponse,
    SendStreamingMessageResponse, TaskArtifactUpdateEvent, TaskIdParams, TaskQueryParams, TaskState,
    TaskStatusUpdateEvent, TextPart,
)

from consent import consent  # tests/clients/consent.py: the user's click

BASE = os.environ["FUNCTION_URL"]


def check(condition, what):
    if not condition:
        raise SystemExit(f"a2a 0.3: {what}")


def message(text, context_id=None, user="alice"):
    return Message(role=Role.user, parts=[Part(root=TextPart(text=text))], message_id=uuid.uuid4().hex,
                   context_id=context_id, metadata={"user_id": user})


async def check_consent_flow(http):
    base = os.environ["CONSENT_FUNCTION_URL"]
    card = await A2ACardResolver(http, base).get_agent_card()
    streaming = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
    states, prompts, last_task = [], [], None
    async for task, update in streaming.send_message(message("say hello to Ada", user="a2a03-consent")):
        last_task = task
        if isinstance(update, TaskStatusUpdateEvent):
            states.append(update.status.state)
            if update.status.state == TaskState.auth_required:
                check(not update.final, "auth-required is not final")
                parts = update.status.message.parts
                data = next(p.root.data for p in parts if isinstance(p.root, DataPart))
                text = next(p.root.text for p in parts if isinstance(p.root, TextPart))
                check(data["type"] == "oauth2_authorization" and data["url"] in text, f"the prompt: {parts}")
                prompts.append(data)
                consent(data["url"])
    check(len(prompts) == 1, f"one authorization prompt: {prompts}")
    at = states.index(TaskState.auth_required)
    check(TaskState.working in states[at:], f"working again after the consent: {states}")
    check(states[-1] == TaskState.completed, f"the task completes after the consent: {states}")
    check("Hello, Ada!" in answer_of(last_task), f"consented answer {answer_of(last_task)!r}")


def rpc(method, params):
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def strictly(model, raw):
    """`raw` (JSON text from the wire) as the SDK's `model` in pydantic's strict mode: a state, role or
    kind the SDK does not list fails here, where the client's lenient parsing might coerce it."""
    return model.model_validate_json(raw, strict=True).root


async def check_the_wire_strictly(http):
    """message/send, message/stream, tasks/get and tasks/cancel, completed, failed and canceled, as raw
    JSON-RPC answers validated strictly."""
    wire = lambda text: message(text).model_dump(mode="json", by_alias=True, exclude_none=True)
    for text, state in [("say hello to Ada", TaskState.completed), ("[fault:401] hi", TaskState.failed)]:
        sent = strictly(SendMessageResponse, (await http.post(BASE + "/a2a", json=rpc("message/send", {"message": wire(text)}))).text)
        check(sent.result.status.state == state, f"strict message/send of {text!r}: {sent}")
        got = strictly(GetTaskResponse, (await http.post(BASE + "/a2a", json=rpc("tasks/get", {"id": sent.result.id}))).text)
        check(got.result.status.state == state, f"strict tasks/get: {got}")
        async with http.stream("POST", BASE + "/a2a", json=rpc("message/stream", {"message": wire(text)})) as response:
            events = [strictly(SendStreamingMessageResponse, line[len("data: "):]).result
                      async for line in response.aiter_lines() if line.startswith("data: ")]
        check(events[-1].status.state == state and events[-1].final, f"strict message/stream of {text!r}: {events[-1]}")
    canceled = None
    async with http.stream("POST", BASE + "/a2a", json=rpc("message/stream", {"message": wire("[fault:drip] count")})) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            update = strictly(SendStreamingMessageResponse, line[len("data: "):]).result
            if isinstance(update, TaskArtifactUpdateEvent) and canceled is None:
                cancel = await http.post(BASE + "/a2a", json=rpc("tasks/cancel", {"id": update.task_id}))
                canceled = strictly(CancelTaskResponse, cancel.text)
                check(canceled.result.status.state == TaskState.canceled, f"strict tasks/cancel: {canceled}")
            if isinstance(update, TaskStatusUpdateEvent) and update.final:
                check(update.status.state == TaskState.canceled, f"strict cancelled stream: {update}")
    check(canceled is not None, "strict: the dripping stream was cancelled")


def answer_of(task):
    return "".join(p.root.text for a in task.artifacts or [] for p in a.parts)


async def check_approval(http):
    """TOOL_APPROVAL=helloworld: message/send ends the task `input-required` with the request as a data part
    (nothing run yet); a message in the same task and context whose data part answers it completes that very
    task with the tool's answer; the same answer again is refused. The declined case: the model is told.
    Every answer is the raw JSON-RPC text validated strictly with the SDK's models."""
    url = os.environ["APPROVAL_FUNCTION_URL"] + "/a2a"

    async def send(parts, context_id=None, task_id=None):
        sent = Message(role=Role.user, parts=parts, message_id=uuid.uuid4().hex, context_id=context_id,
                       task_id=task_id, metadata={"user_id": "a2a03-approver"})
        params = {"message": sent.model_dump(mode="json", by_alias=True, exclude_none=True)}
        return strictly(SendMessageResponse, (await http.post(url, json=rpc("message/send", params))).text)

    for approve in [True, False]:
        asked = (await send([Part(root=TextPart(text="Please say hello to Ada"))])).result
        check(asked.status.state == TaskState.input_required, f"input-required: {asked.status}")
        data = [p.root.data for p in asked.status.message.parts if isinstance(p.root, DataPart)]
        check(len(data) == 1 and data[0]["type"] == "mcp_approval_request", f"the request as a data part: {data}")
        check(data[0]["name"].endswith("helloworld") and json.loads(data[0]["arguments"]) == {"name": "Ada"},
              f"the request names the call: {data[0]}")
        check("Hello, Ada!" not in answer_of(asked), "nothing ran before the answer")
        decision = {"approval_request_id": data[0]["id"], "approve": approve}
        if not approve:
            decision["reason"] = "not today"
        answer = [Part(root=DataPart(data=decision))]
        done = (await send(answer, asked.context_id, asked.id)).result
        check(done.id == asked.id and done.status.state == TaskState.completed,
              f"the same task completes: {done.status}")
        if approve:
            check("Hello, Ada!" in answer_of(done), f"the approved call's answer: {answer_of(done)!r}")
        else:
            said = answer_of(done)
            check("declined" in said and "not today" in said and "Hello, Ada!" not in said, f"declined: {said!r}")
        replay = (await send(answer, asked.context_id)).result
        check(replay.status.state == TaskState.failed and replay.metadata["error"]["code"] == "approval_invalid",
              f"a replayed answer is refused: {replay.status} {replay.metadata}")


async def check_question(http):
    """QUESTION_FUNCTION_URL (a 2026-07-28 MCP server that asks the user through input_required): the task
    ends `input-required` with the question as a data part — a form's requested schema, or a link; a message
    in the same task and context whose data part answers it completes that very task with the repeated
    call's result (accepted with the form's content; declined for the link); the same answer again is
    refused with `answer_invalid`. Every answer is the raw JSON-RPC text validated strictly with the SDK's
    models; the form round trip is also streamed, each update parsed strictly."""
    url = os.environ["QUESTION_FUNCTION_URL"] + "/a2a"
    user = {"user_id": "a2a03-asked"}

    def wire(parts, context_id=None, task_id=None):
        sent = Message(role=Role.user, parts=parts, message_id=uuid.uuid4().hex, context_id=context_id,
                       task_id=task_id, metadata=user)
        return {"message": sent.model_dump(mode="json", by_alias=True, exclude_none=True)}

    async def send(parts, context_id=None, task_id=None):
        answer = await http.post(url, json=rpc("message/send", wire(parts, context_id, task_id)))
        return strictly(SendMessageResponse, answer.text).result

    def question_of(task):
        check(task.status.state == TaskState.input_required, f"input-required: {task.status}")
        data = [p.root.data for p in task.status.message.parts if isinstance(p.root, DataPart)]
        check(len(data) == 1 and data[0]["type"] == "mcp_elicitation_request", f"the question as a data part: {data}")
        texts = [p.root.text for p in task.status.message.parts if isinstance(p.root, TextPart)]
        check(texts and data[0]["message"] in texts[0], f"a person reads the question: {texts}")
        check("request_state" not in data[0], f"the server's state is never shown: {data[0]}")
        return data[0]

    # Form mode, streamed: the last update is the final `input-required` status holding the question.
    async with http.stream("POST", url, json=rpc("message/stream", wire([Part(root=TextPart(text="Please book a table"))]))) as response:
        updates = [strictly(SendStreamingMessageResponse, line[len("data: "):]).result
                   async for line in response.aiter_lines() if line.startswith("data: ")]
    last = updates[-1]
    check(isinstance(last, TaskStatusUpdateEvent) and last.final, f"the stream ends on a final status: {last}")
    question = question_of(last)
    check(question["mode"] == "form" and question["message"] == "For how many guests?", f"the form: {question}")
    check(question["requested_schema"]["properties"]["guests"]["type"] == "integer"
          and "guests" in question["requested_schema"].get("required", []), f"the schema: {question}")
    answer = [Part(root=DataPart(data={"elicitation_request_id": question["id"], "action": "accept",
                                       "content": {"guests": 3}}))]
    async with http.stream("POST", url, json=rpc("message/stream", wire(answer, last.context_id, last.task_id))) as response:
        updates = [strictly(SendStreamingMessageResponse, line[len("data: "):]).result
                   async for line in response.aiter_lines() if line.startswith("data: ")]
    done = updates[-1]
    check(isinstance(done, TaskStatusUpdateEvent) and done.final and done.task_id == last.task_id
          and done.status.state == TaskState.completed, f"the same task completes: {done}")
    said = "".join(p.root.text for u in updates if isinstance(u, TaskArtifactUpdateEvent) for p in u.artifact.parts)
    check("Booked a table for 3 guests." in said, f"the repeated call's answer: {said!r}")
    replay = await send(answer, last.context_id)
    check(replay.status.state == TaskState.failed and replay.metadata["error"]["code"] == "answer_invalid",
          f"a replayed answer is refused: {replay.status} {replay.metadata}")

    # URL mode: the link is shown; the user declines, and the server hears it.
    asked = await send([Part(root=TextPart(text="Please sign the terms"))])
    question = question_of(asked)
    check(question["mode"] == "url" and question["url"].startswith("https://"), f"the link: {question}")
    check(any(question["url"] in p.root.text for p in asked.status.message.parts if isinstance(p.root, TextPart)),
          "the link is in the text a person reads")
    decline = [Part(root=DataPart(data={"elicitation_request_id": question["id"], "action": "decline"}))]
    done = await send(decline, asked.context_id, asked.id)
    check(done.id == asked.id and done.status.state == TaskState.completed, f"the same task completes: {done.status}")
    check("declined" in answer_of(done), f"the model heard the decline: {answer_of(done)!r}")


async def stream(client, text):
    """Every (task, update) the client yields."""
    return [event async for event in client.send_message(message(text))]


async def main():
    async with httpx.AsyncClient(timeout=30) as http:
        for path in ["/.well-known/agent-card.json", "/.well-known/agent.json"]:
            card = await A2ACardResolver(http, BASE, agent_card_path=path).get_agent_card()
            check(card.name == os.environ["AGENT_NAME"], f"card name {card.name!r}")
            check(card.capabilities.streaming is True, "card says streaming")
            check(card.url == BASE + "/a2a", f"card url {card.url!r} is where we reached it")
        send = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        streaming = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)

        # message/send: a completed task, the answer (after a tool call) as its artifact.
        events = await stream(send, "say hello to Ada")
        check(len(events) == 1, f"message/send yields one result, got {len(events)}")
        task, _ = events[0]
        check(task.status.state == TaskState.completed, f"send state {task.status.state}")
        check("Hello, Ada!" in answer_of(task), f"send answer {answer_of(task)!r}")
        check(task.context_id, "a generated contextId is returned")
        got = await send.get_task(TaskQueryParams(id=task.id))
        check(got.status.state == TaskState.completed and answer_of(got) == answer_of(task), "tasks/get")

        # A caller naming no user runs as the agent (the agent-only token), tools included.
        anonymous = Message(role=Role.user, parts=[Part(root=TextPart(text="say hello to Bo"))],
                            message_id=uuid.uuid4().hex)
        task, _ = [e async for e in send.send_message(anonymous)][0]
        check(task.status.state == TaskState.completed and "Hello, Bo!" in answer_of(task), f"no user: {task}")

        # message/stream: status and artifact updates as they happen, then the final status.
        events = await stream(streaming, "say hello to Grace")
        updates = [u for _, u in events if u is not None]
        chunks = [u for u in updates if isinstance(u, TaskArtifactUpdateEvent)]
        statuses = [u for u in updates if isinstance(u, TaskStatusUpdateEvent)]
        check(len(chunks) >= 2, f"more than one streamed chunk, got {len(chunks)}")
        tool_notes = [s.status.message.parts[0].root.text for s in statuses if s.status.message]
        check(any("helloworld" in n for n in tool_notes), f"tool use shows as a status message: {tool_notes}")
        check(statuses[-1].final and statuses[-1].status.state == TaskState.completed, "stream ends completed")
        check(updates[-1] is statuses[-1], "the final status is the last event")
        check(all(not s.final for s in statuses[:-1]), "only the last status is final")
        final_task = events[-1][0]
        check("Hello, Grace!" in answer_of(final_task), f"streamed answer {answer_of(final_task)!r}")

        # tasks/cancel on a running turn (the stand-in model drips forever): the stream ends canceled.
        seen, cancelled = [], None
        async for task, update in streaming.send_message(message("[fault:drip] count slowly")):
            seen.append(update)
            if isinstance(update, TaskArtifactUpdateEvent) and cancelled is None:
                cancelled = await send.cancel_task(TaskIdParams(id=task.id))
        check(cancelled is not None and cancelled.status.state == TaskState.canceled, "tasks/cancel answers canceled")
        last = seen[-1]
        check(isinstance(last, TaskStatusUpdateEvent) and last.final and last.status.state == TaskState.canceled,
              f"the cancelled stream ends canceled: {last}")
        again = await send.get_task(TaskQueryParams(id=cancelled.id))
        check(again.status.state == TaskState.canceled, "tasks/get after cancel")
        try:
            await send.cancel_task(TaskIdParams(id=cancelled.id))
            check(False, "a finished task is not cancelable")
        except A2AClientJSONRPCError as e:
            check(e.error.code == -32002, f"cancel twice: {e.error.code}")

        # A tool that works for more than three keep-alive intervals (STREAM_HEARTBEAT_SECS=1): the SSE
        # comments on the quiet stream are skipped by the client, the task completes with the tool's answer.
        events = await stream(streaming, "sleep 3.5 seconds")
        last = [u for _, u in events if u is not None][-1]
        check(last.final and last.status.state == TaskState.completed, f"a quiet stream ends completed: {last}")
        check("slept" in answer_of(events[-1][0]), f"the slow tool's answer: {answer_of(events[-1][0])!r}")
        quiet = {"kind": "message", "messageId": uuid.uuid4().hex, "role": "user",
                 "parts": [{"kind": "text", "text": "sleep 3.5 seconds"}]}
        wire = (await http.post(BASE + "/a2a", json=rpc("message/stream", {"message": quiet}))).text
        check(wire.count(": keep-alive\n\n") >= 3, f"keep-alives on the wire: {wire!r}")

        # A failing model: the task fails with our failure code, after the partial answer streamed.
        events = await stream(streaming, "[fault:midstream-error] explain")
        last = [u for _, u in events if u is not None][-1]
        check(last.status.state == TaskState.failed and last.final, f"failing model ends failed: {last}")
        check(last.metadata["error"]["code"] == "model_error", f"failure code {last.metadata}")
        task, _ = (await stream(send, "[fault:401] hi"))[0]
        check(task.status.state == TaskState.failed, "message/send with a failing model")

        # JSON-RPC errors the spec names.
        try:
            await send.get_task(TaskQueryParams(id="no-such-task"))
            check(False, "unknown task")
        except A2AClientJSONRPCError as e:
            check(e.error.code == -32001, f"unknown task: {e.error.code}")
        raw = await http.post(BASE + "/a2a", json={"jsonrpc": "2.0", "id": 9, "method": "tasks/nothing", "params": {}})
        check(raw.json()["error"]["code"] == -32601 and raw.json()["id"] == 9, f"unknown method: {raw.text}")
        raw = await http.post(BASE + "/a2a", json={"jsonrpc": "2.0", "id": 9, "method": "message/send",
                                                   "params": {"message": {"role": "user", "parts": []}}})
        check(raw.json()["error"]["code"] == -32602, f"bad params: {raw.text}")
        await check_consent_flow(http)
        await check_the_wire_strictly(http)
        await check_approval(http)
        await check_question(http)
    print("a2a 0.3: ok")


asyncio.run(main())
