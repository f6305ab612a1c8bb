"""The AgentScope runtime (1.0.0) and the function on one Redis (issue 13, spec/sessions.md §2): a Python
AgentScope app reads the conversations the function stored, and the function continues one the Python app
stored — through the runtime's own RedisSessionHistoryService, its Message model and its AgentScope memory
adapter, and the DashScope formatter the seed's agent uses.

Run by tests/clients.rs with FUNCTION_URL and REDIS_URL (the function's SESSION_STORE). Exits non-zero,
naming the check, when any of it breaks. tests/clients.rs then checks what the function sent the model for
the Python-written session.
"""
import asyncio
import http.client
import json
import os
import urllib.parse

from agentscope.formatter import DashScopeChatFormatter
from agentscope.message import Msg, TextBlock, ToolResultBlock, ToolUseBlock
from agentscope_runtime.adapters.agentscope.memory import AgentScopeSessionHistoryMemory
from agentscope_runtime.engine.schemas.agent_schemas import (
    AgentContent, AgentResponse, ContentType, DataContent, McpApprovalRequest, Message, MessageType, Role, RunStatus,
)
from pydantic import TypeAdapter
from agentscope_runtime.engine.schemas.session import Session
from agentscope_runtime.engine.services.session_history import RedisSessionHistoryService

URL = urllib.parse.urlparse(os.environ["FUNCTION_URL"])
REDIS_URL = os.environ["REDIS_URL"]
USER = "py-user"
TOOL_TURN = [("message", "user"), ("plugin_call", "assistant"), ("plugin_call_output", "system"),
             ("message", "assistant")]


def check(condition, what):
    if not condition:
        raise SystemExit(f"agentscope sessions: {what}")


def constants(cls):
    return {value for name, value in vars(cls).items() if not name.startswith("_") and isinstance(value, str)}


CONTENT = TypeAdapter(AgentContent)
# The runtime types `status` and a message's `type` as plain strings, with the allowed values as constants
# beside them: those are checked against the constants, the rest by the models in strict mode.
STATUSES, MESSAGE_TYPES = constants(RunStatus), constants(MessageType)


def strict_frame(data):
    """One /process stream object validated as the runtime's own model, strictly."""
    frame = json.loads(data)
    kind = frame.get("object")
    if kind == "response":
        parsed = AgentResponse.model_validate_json(data, strict=True)
    elif kind == "message":
        parsed = Message.model_validate_json(data, strict=True)
        check(parsed.type in MESSAGE_TYPES, f"message type {parsed.type!r} is one of MessageType")
        check(parsed.role in constants(Role), f"message role {parsed.role!r}")
    elif kind == "content":
        parsed = CONTENT.validate_json(data, strict=True)
        check(parsed.type in constants(ContentType), f"content type {parsed.type!r}")
    else:
        check(False, f"unknown stream object {kind!r}: {data}")
    check(parsed.status in STATUSES, f"{kind} status {parsed.status!r} is one of RunStatus")
    return frame


def process(session, text, ending="completed"):
    """One /process turn of USER in `session`; its final response object, which must end as `ending`. Every
    frame is validated against the runtime's models."""
    message = {"role": "user", "type": "message", "content": [{"type": "text", "text": text}]}
    return process_input(session, [message], ending)[-1]


def process_input(session, messages, ending="completed"):
    """A /process turn with `messages` as its input; every frame, validated, the last ending as `ending`."""
    body = {"input": messages, "session_id": session, "user_id": USER}
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)
    conn.request("POST", "/process", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read().decode()
    check(response.status == 200, f"/process status {response.status}: {data}")
    frames = [strict_frame(line[5:].strip()) for line in data.split("\n") if line.startswith("data:")]
    check(frames and frames[-1].get("status") == ending, f"/process did not end {ending}: {frames[-1:]}")
    return frames


async def raw(service, session):
    return await service._redis.get(f"session:{USER}:{session}")


async def python_reads_ours(service):
    process("ours", "Tell me the time in UTC")
    process("ours", "Tell me the time in UTC again")
    text = await raw(service, "ours")
    check(text is not None, "the function stored session:py-user:ours")
    # Strict, with the runtime's own models: every field the function wrote is one the runtime knows.
    Session.model_validate_json(text, strict=False)
    for message in json.loads(text)["messages"]:
        Message.model_validate(message)
    session = await service.get_session(USER, "ours")
    check(session.id == "ours" and session.user_id == USER, f"session ids: {session.id} {session.user_id}")
    kinds = [(m.type, m.role) for m in session.messages]
    check(kinds == TOOL_TURN * 2, f"stored messages as the runtime stores a tool turn: {kinds}")
    check(all(m.status == "completed" for m in session.messages), "every message completed")

    # The agent's view: the runtime's memory adapter regroups the messages into AgentScope Msgs.
    msgs = await AgentScopeSessionHistoryMemory(service, USER, "ours").get_memory()
    shapes = [(m.role, [b["type"] for b in m.get_content_blocks()]) for m in msgs]
    one_turn = [("user", ["text"]), ("assistant", ["tool_use"]), ("system", ["tool_result"]),
                ("assistant", ["text"])]
    check(shapes == one_turn * 2, f"AgentScope Msgs: {shapes}")
    use, result = msgs[1].get_content_blocks()[0], msgs[2].get_content_blocks()[0]
    check(use["id"] == result["id"] and use["name"] == "getutctime", f"call and result pair: {use} {result}")
    check(msgs[0].get_text_content() == "Tell me the time in UTC", f"first user text: {msgs[0]}")

    # What the seed's agent would send DashScope from them.
    formatted = await DashScopeChatFormatter().format(msgs)
    roles = [m["role"] for m in formatted]
    check(roles == ["user", "assistant", "tool", "assistant"] * 2, f"formatted roles: {roles}")
    check(formatted[2]["tool_call_id"] == formatted[1]["tool_calls"][0]["id"], f"formatted pair: {formatted[:3]}")
    check("20" in str(formatted[2]["content"]), f"the tool's text: {formatted[2]}")


async def ours_continues_python(service):
    """The seed's ReActAgent stores a tool turn this way: one memory.add per Msg, in order."""
    memory = AgentScopeSessionHistoryMemory(service, USER, "theirs")
    for msg in [
        Msg("user", "Tell me the time in UTC", "user"),
        Msg("Friday", [ToolUseBlock(type="tool_use", id="call_py_1", name="getutctime", input={})], "assistant"),
        Msg("system", [ToolResultBlock(type="tool_result", id="call_py_1", name="getutctime",
                                       output=[TextBlock(type="text", text="2026-01-01T00:00:00Z")])], "system"),
        Msg("Friday", "The current UTC time is 2026-01-01T00:00:00Z.", "assistant"),
    ]:
        await memory.add(msg)
    written = await raw(service, "theirs")
    process("theirs", "And once more, please")
    after = await raw(service, "theirs")
    # The function appends after what the runtime wrote, leaving that text as it was.
    check(after.startswith(written[:-2]), "the Python-written messages are kept byte for byte")
    session = await service.get_session(USER, "theirs")
    kinds = [(m.type, m.role) for m in session.messages]
    check(kinds == TOOL_TURN * 2, f"theirs, then ours: {kinds}")
    msgs = await AgentScopeSessionHistoryMemory(service, USER, "theirs").get_memory()
    formatted = await DashScopeChatFormatter().format(msgs)
    roles = [m["role"] for m in formatted]
    check(roles == ["user", "assistant", "tool", "assistant"] * 2, f"the continued session formats: {roles}")
    check(formatted[4]["content"] == "And once more, please"
          or formatted[4]["content"] == [{"text": "And once more, please"}], f"our input: {formatted[4]}")


async def approval_round_trip(service):
    """TOOL_APPROVAL=helloworld (issue 26): the request is the runtime's McpApprovalRequest, the answer an
    mcp_approval_response Message built with the runtime's own model, and what the session keeps reads
    back through its models."""
    frames = process_input("approval", [{"role": "user", "type": "message",
                                         "content": [{"type": "text", "text": "Please say hello to Ada"}]}])
    asked = [f for f in frames if f.get("object") == "message" and f.get("type") == MessageType.MCP_APPROVAL_REQUEST
             and f.get("status") == "completed"]
    check(len(asked) == 1, f"one approval request: {frames}")
    request = McpApprovalRequest.model_validate(asked[0]["content"][0]["data"], strict=True)
    check(json.loads(request.arguments) == {"name": "Ada"} and request.name.endswith("helloworld"), f"{request}")
    answer = Message(type=MessageType.MCP_APPROVAL_RESPONSE, role=Role.USER,
                     content=[DataContent(data={"approval_request_id": request.id, "approve": True})])
    frames = process_input("approval", [answer.model_dump(mode="json", exclude_none=True)])
    outputs = [f for f in frames if f.get("object") == "message" and f.get("type") == "plugin_call_output"]
    check(outputs and "Hello, Ada!" in outputs[0]["content"][0]["data"]["output"], f"the approved call ran: {frames}")
    session = await service.get_session(USER, "approval")
    kinds = [m.type for m in session.messages]
    check(MessageType.MCP_APPROVAL_REQUEST in kinds and MessageType.MCP_APPROVAL_RESPONSE in kinds, f"{kinds}")


async def main():
    service = RedisSessionHistoryService(redis_url=REDIS_URL)
    await service.start()
    try:
        await python_reads_ours(service)
        await ours_continues_python(service)
        await approval_round_trip(service)
        # A tool that works for more than three keep-alive intervals (STREAM_HEARTBEAT_SECS=1): the stream
        # carries the runtime's own `heartbeat` messages, each valid as its Message model, none stored.
        frames = process_input("quiet", [{"role": "user", "type": "message",
                                          "content": [{"type": "text", "text": "sleep 3.5 seconds"}]}])
        beats = [f for f in frames if f.get("type") == MessageType.HEARTBEAT]
        check(len(beats) >= 3, f"heartbeats on the quiet stream: {len(beats)}")
        check([f["sequence_number"] for f in frames] == list(range(len(frames))), "contiguous sequence numbers")
        stored = json.loads(await raw(service, "quiet"))
        check(all(m["type"] != MessageType.HEARTBEAT for m in stored["messages"]), "no heartbeat is stored")
        failed = process("failing", "Tell me the time [fault:429]", ending="failed")
        check(failed["error"]["code"] == "model_throttled", f"the failure's code: {failed['error']}")
    finally:
        await service.stop()


asyncio.run(main())
