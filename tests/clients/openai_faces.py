"""The official `openai` Python SDK against the function's OpenAI faces (/compatible-mode/v1).

Environment: FUNCTION_URL (the function with the stand-ins, reasoning on), REFUSING_FUNCTION_URL (the same,
with an MCP server that refuses every token), USER_JWT (an end-user JWT the Agent Identity stand-in reads:
the SDK's api_key is the bearer, so an OpenAI client names its user that way), MODEL (the configured model),
CONSENT_FUNCTION_URL (the same function whose MCP server takes the user's OAuth2 token: the link arrives as
a url_citation annotation, this script "clicks" it, the turn goes on), APPROVAL_FUNCTION_URL (the same with
TOOL_APPROVAL=helloworld: a turn stops with an mcp_approval_request, the answer resumes it).
Every check runs; the script exits non-zero naming each check that broke.
"""

import base64
import json
import os
import sys
import traceback
import typing

import urllib.error
import urllib.request

import openai
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.shared import ErrorObject
from openai.types.responses import (
    Response,
    ResponseMcpListToolsCompletedEvent,
    ResponseMcpListToolsInProgressEvent,
    ResponseOutputItemDoneEvent,
    ResponseStreamEvent,
)
from openai.types.responses.response_input_item import McpApprovalResponse
from openai.types.responses.response_output_item import McpApprovalRequest, McpCall, McpListTools

from consent import consent  # tests/clients/consent.py: the user's click

BASE = os.environ["FUNCTION_URL"] + "/compatible-mode/v1"
REFUSING = os.environ["REFUSING_FUNCTION_URL"] + "/compatible-mode/v1"
JWT = os.environ["USER_JWT"]
MODEL = os.environ["MODEL"]

# Every event and body is validated against the SDK's pydantic models, not just constructed; the checks on
# the raw wire (`strictly`) also validate in pydantic's strict mode, so an enum value the SDK does not list
# (an error code, a status, a finish reason) fails the check.
strict = OpenAI(base_url=BASE, api_key=JWT, max_retries=0, _strict_response_validation=True)
refusing = OpenAI(base_url=REFUSING, api_key=JWT, max_retries=0, _strict_response_validation=True)

EVENT_TYPES = typing.get_args(typing.get_args(ResponseStreamEvent)[0])
# The SDK's union carries its discriminator in its own annotation, which pydantic does not read: each
# event is validated as the class its `type` names, so an error names that class's field.
EVENT_CLASS = {typing.get_args(c.model_fields["type"].annotation)[0]: c for c in EVENT_TYPES}
TOOL_QUESTION = "Tell me the time in UTC"


def strictly(model, raw):
    """`raw` (JSON text from the wire) as the SDK's `model`, validated in pydantic's strict mode."""
    return model.model_validate_json(raw, strict=True)


def post(base, path, body):
    """POSTs `body` as the SDK's user would and returns (status, text), nothing parsed."""
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={
        "Authorization": f"Bearer {JWT}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sse_data(text):
    """The `data:` payloads of an SSE body, without the closing `[DONE]`."""
    lines = (line[len("data: "):] for line in text.splitlines() if line.startswith("data: "))
    return [data for data in lines if data != "[DONE]"]


def strict_response_events(base, body):
    """A streamed Response from the raw wire, every event validated strictly as its own class."""
    status, text = post(base, "/responses", dict(body, stream=True))
    assert status == 200, (status, text)
    return [strictly(EVENT_CLASS[json.loads(data)["type"]], data) for data in sse_data(text)]


def check_stream_consistency(events):
    """sequence_number 0..n; created first; items added in index order, each done once with its id/type;
    content events name their item; exactly one terminal event, last, holding every done item."""
    assert [e.sequence_number for e in events] == list(range(len(events))), "sequence numbers"
    assert events[0].type == "response.created", events[0].type
    assert events[1].type == "response.in_progress", events[1].type
    added = [e for e in events if e.type == "response.output_item.added"]
    done = {e.output_index: e for e in events if e.type == "response.output_item.done"}
    assert [e.output_index for e in added] == list(range(len(added))), "output_index in add order"
    assert sorted(done) == list(range(len(added))), "every added item is done"
    for e in added:
        assert done[e.output_index].item.id == e.item.id, "same id on added and done"
        assert done[e.output_index].item.type == e.item.type, "same type on added and done"
    for e in events:
        if hasattr(e, "item_id") and hasattr(e, "output_index"):
            assert added[e.output_index].item.id == e.item_id, f"{e.type} names item {e.item_id}"
    terminal = [e for e in events if e.type in ("response.completed", "response.failed", "response.incomplete")]
    assert len(terminal) == 1 and terminal[0] is events[-1], "one terminal event, last"
    ids = {e.response.id for e in events if hasattr(e, "response")}
    assert len(ids) == 1, f"one response id: {ids}"
    final = events[-1].response
    assert [item.id for item in final.output] == [e.item.id for e in added], "final output holds every item"
    return final


def test_responses_stream_parses_every_event_into_the_sdk_types():
    stream = strict.responses.create(model=MODEL, input=TOOL_QUESTION, stream=True)
    events = list(stream)
    for e in events:
        assert isinstance(e, EVENT_TYPES), f"{e.type} parsed as {type(e).__name__}"
    final = check_stream_consistency(events)
    assert final.status == "completed", final.status
    assert final.model == MODEL, final.model
    kinds = [item.type for item in final.output]
    assert kinds[:2] == ["mcp_list_tools", "reasoning"] and "mcp_call" in kinds and kinds[-1] == "message", kinds
    listing = final.output[0]
    assert isinstance(listing, McpListTools), type(listing).__name__
    listed = {tool.name: tool for tool in listing.tools}
    assert {"getutctime", "helloworld"} <= set(listed), sorted(listed)
    assert listed["helloworld"].input_schema["properties"]["name"], listed["helloworld"].input_schema
    assert listed["getutctime"].description, listed["getutctime"]
    listing_events = [e for e in events if getattr(e, "item_id", None) == listing.id]
    assert [type(e) for e in listing_events] == [ResponseMcpListToolsInProgressEvent,
                                                 ResponseMcpListToolsCompletedEvent], listing_events
    done = next(e for e in events if isinstance(e, ResponseOutputItemDoneEvent) and e.item.id == listing.id)
    assert isinstance(done.item, McpListTools) and done.item.tools == listing.tools, done
    call = next(item for item in final.output if item.type == "mcp_call")
    assert call.name.endswith("getutctime") and call.status == "completed", call
    assert call.output, "the mcp_call carries the tool's output"
    assert call.server_label == listing.server_label, (call.server_label, listing.server_label)
    reasoning = final.output[1]
    assert reasoning.content and "think" in reasoning.content[0].text, reasoning
    types = [e.type for e in events]
    for needed in ("response.content_part.added", "response.output_text.delta", "response.output_text.done",
                   "response.content_part.done", "response.reasoning_text.delta", "response.mcp_call.completed"):
        assert needed in types, f"{needed} missing"
    text_done = next(e for e in events if e.type == "response.output_text.done")
    assert text_done.text == final.output[-1].content[0].text
    assert call.output in text_done.text, "the answer quotes the tool's output"
    usage = final.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0, usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens, usage


def test_responses_stream_helper_gives_the_final_response():
    with strict.responses.stream(model=MODEL, input=[{"role": "user", "content": "Say hello to Ada"}]) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.status == "completed", final.status
    assert final.output_text == deltas and "Ada" in final.output_text, (final.output_text, deltas)
    call = next(item for item in final.output if item.type == "mcp_call")
    assert call.name.endswith("helloworld") and "Ada" in call.output, call


def test_responses_create_returns_a_response_object():
    response = strict.responses.create(
        model=MODEL, input=TOOL_QUESTION, instructions="Be brief.", conversation="conv-openai-1",
        metadata={"case": "non-stream"}, temperature=0.2, max_output_tokens=200,
    )
    assert isinstance(response, Response) and response.id.startswith("resp_"), response.id
    assert response.status == "completed" and response.model == MODEL
    assert "The tool said" in response.output_text, response.output_text
    assert any(item.type == "mcp_call" and item.output for item in response.output), response.output
    assert response.conversation.id == "conv-openai-1" and response.metadata == {"case": "non-stream"}
    assert response.instructions == "Be brief."
    assert response.usage.total_tokens > 0


def test_responses_replays_a_conversation_of_items():
    first = strict.responses.create(model=MODEL, input=TOOL_QUESTION)
    history = [{"role": "user", "content": TOOL_QUESTION}] + [item.model_dump(exclude_none=True) for item in first.output]
    second = strict.responses.create(model=MODEL, input=history + [{"role": "user", "content": "Thanks, no tools now"}])
    assert second.status == "completed" and "Thanks, no tools now" in second.output_text, second.output_text
    assert not any(item.type == "mcp_call" for item in second.output)


def test_responses_the_wire_validates_strictly():
    events = strict_response_events(BASE, {"model": MODEL, "input": TOOL_QUESTION})
    final = check_stream_consistency(events)
    assert final.status == "completed", final.status
    status, text = post(BASE, "/responses", {"model": MODEL, "input": TOOL_QUESTION})
    assert status == 200 and strictly(Response, text).status == "completed", (status, text)


def test_responses_a_throttled_model_fails_with_rate_limit_exceeded():
    ask = {"model": MODEL, "input": "Tell me the time [fault:429]"}
    events = strict_response_events(BASE, ask)
    final = check_stream_consistency(events)
    assert events[-1].type == "response.failed", events[-1].type
    # The SDK's enum value; our precise failure code leads the message.
    assert final.status == "failed" and final.error.code == "rate_limit_exceeded", final.error
    assert final.error.message.startswith("model_throttled: "), final.error.message
    assert "request_id" in final.error.message, final.error.message
    status, text = post(BASE, "/responses", ask)
    response = strictly(Response, text)
    assert status == 200 and response.status == "failed", (status, text)
    assert response.error.code == "rate_limit_exceeded" and response.error.type == "rate_limit_error", response.error
    sdk = strict.responses.create(**ask)
    assert sdk.status == "failed" and sdk.error.message.startswith("model_throttled: "), sdk.error


def test_responses_an_mcp_401_fails_with_tool_unauthorized_in_the_message():
    events = strict_response_events(REFUSING, {"model": MODEL, "input": TOOL_QUESTION})
    final = check_stream_consistency(events)
    assert final.status == "failed" and final.error.code == "server_error", final.error
    assert final.error.message.startswith("tool_unauthorized: "), final.error.message
    assert JWT not in final.error.message
    streamed = list(refusing.responses.create(model=MODEL, input=TOOL_QUESTION, stream=True))
    assert streamed[-1].type == "response.failed", streamed[-1].type


def test_responses_bad_requests_get_openais_error_body():
    try:
        strict.responses.create(model=MODEL, input=[{"type": "web_search_call", "id": "x"}])
        raise AssertionError("accepted an unsupported item")
    except openai.BadRequestError as e:
        assert e.status_code == 400
        assert e.body["type"] == "invalid_request_error" and e.body["param"] == "input[0].type", e.body
        assert e.code == "invalid_request", e.code
    try:
        strict.responses.create(model="gpt-4o", input="hi")
        raise AssertionError("accepted a model outside the allow-list")
    except openai.BadRequestError as e:
        assert "model" in e.message, e.message
    anonymous = OpenAI(base_url=BASE, api_key="not a bearer", max_retries=0)
    try:
        anonymous.with_options(default_headers={"Authorization": ""}).responses.create(model=MODEL, input="hi")
        raise AssertionError("served a caller who names nobody")
    except openai.BadRequestError as e:
        assert "user" in e.message, e.message


def test_chat_completions_stream_with_reasoning_and_usage():
    stream = strict.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": TOOL_QUESTION}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert "The tool said" in content, content
    assert "think" in reasoning, reasoning
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks), "no client tool calls"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0, chunks[-1]
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].model == MODEL


def test_chat_completions_the_wire_validates_strictly():
    ask = {"model": MODEL, "messages": [{"role": "user", "content": TOOL_QUESTION}]}
    status, text = post(BASE, "/chat/completions", dict(ask, stream=True, stream_options={"include_usage": True}))
    chunks = [strictly(ChatCompletionChunk, data) for data in sse_data(text)]
    assert status == 200 and chunks[-2].choices[0].finish_reason == "stop", (status, text)
    status, text = post(BASE, "/chat/completions", ask)
    assert status == 200 and strictly(ChatCompletion, text).choices[0].finish_reason == "stop", (status, text)
    failing = {"model": MODEL, "messages": [{"role": "user", "content": "x [fault:429]"}]}
    status, text = post(BASE, "/chat/completions", dict(failing, stream=True))
    *before, last = sse_data(text)
    assert status == 200 and all(strictly(ChatCompletionChunk, data) for data in before), (status, text)
    error = strictly(ErrorObject, json.dumps(json.loads(last)["error"]))
    assert error.code == "model_throttled" and error.type == "rate_limit_error", error
    status, text = post(BASE, "/chat/completions", failing)
    error = strictly(ErrorObject, json.dumps(json.loads(text)["error"]))
    assert status == 429 and error.code == "model_throttled", (status, text)


def test_a_quiet_stream_keeps_alive_and_parses():
    """A tool working for more than three keep-alive intervals (STREAM_HEARTBEAT_SECS=1): SSE comments on
    the wire, which the SDK's decoder skips — both faces still parse into the SDK's types."""
    events = list(strict.responses.create(model=MODEL, input="sleep 3.5 seconds", stream=True))
    final = check_stream_consistency(events)
    assert final.status == "completed", final
    assert "slept" in final.output_text, final.output_text
    chunks = list(strict.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "sleep 3.5 seconds"}], stream=True))
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "slept" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    status, text = post(BASE, "/responses", {"model": MODEL, "input": "sleep 3.5 seconds", "stream": True})
    assert status == 200 and text.count(": keep-alive\n\n") >= 3, text


def test_chat_completions_create():
    completion = strict.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to Grace"}],
    )
    message = completion.choices[0].message
    assert message.role == "assistant" and "Grace" in message.content, message
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.total_tokens > 0


def test_chat_completions_failures_raise_with_the_cause():
    try:
        list(strict.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x [fault:429]"}], stream=True))
        raise AssertionError("a failed stream ended quietly")
    except openai.APIError as e:
        assert "Throttl" in e.message or "rate" in e.message, e.message
    try:
        strict.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x [fault:429]"}])
        raise AssertionError("a failed answer was a completion")
    except openai.RateLimitError as e:
        assert e.code == "model_throttled", e.body
    try:
        refusing.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": TOOL_QUESTION}])
        raise AssertionError("an MCP 401 was a completion")
    except openai.APIStatusError as e:
        assert e.status_code == 502 and e.code == "tool_unauthorized", e.body
    try:
        strict.chat.completions.create(model=MODEL, messages=[])
        raise AssertionError("accepted no messages")
    except openai.BadRequestError as e:
        assert e.body["param"] == "messages", e.body


def consent_client(user):
    """A strict client of the consent function for a user of its own (each needs its own consent)."""
    b64 = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    jwt = ".".join([b64({"alg": "RS256", "typ": "JWT"}),
                    b64({"sub": user, "iss": "https://idp.example", "aud": "agent", "exp": 4102444800}), "c2ln"])
    base = os.environ["CONSENT_FUNCTION_URL"] + "/compatible-mode/v1"
    return OpenAI(base_url=base, api_key=jwt, max_retries=0, _strict_response_validation=True)


def test_responses_consent_link_is_a_url_citation_and_the_turn_goes_on():
    events, prompts = [], []
    for e in consent_client("openai-consent-responses").responses.create(model=MODEL, input=TOOL_QUESTION, stream=True):
        assert isinstance(e, EVENT_TYPES), f"{e.type} parsed as {type(e).__name__}"
        events.append(e)
        if e.type == "response.output_text.annotation.added":
            annotation = e.annotation if isinstance(e.annotation, dict) else e.annotation.model_dump()
            prompts.append(annotation)
            consent(annotation["url"])
    final = check_stream_consistency(events)
    assert len(prompts) == 1 and prompts[0]["type"] == "url_citation", prompts
    assert final.status == "completed", final.status
    prompt = final.output[0]
    assert prompt.type == "message" and prompt.content[0].annotations[0].url == prompts[0]["url"], prompt
    text, citation = prompt.content[0].text, prompt.content[0].annotations[0]
    assert text[citation.start_index:citation.end_index] == citation.url, (text, citation)
    assert any(item.type == "mcp_call" and item.output for item in final.output), final.output


def test_chat_completions_consent_link_in_the_content_and_the_turn_goes_on():
    chunks, prompts = [], []
    stream = consent_client("openai-consent-chat").chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": TOOL_QUESTION}], stream=True)
    for chunk in stream:
        chunks.append(chunk)
        delta = chunk.choices[0].delta if chunk.choices else None
        annotations = (delta.model_extra or {}).get("annotations") if delta else None
        if annotations:
            prompts.append(annotations[0])
            consent(annotations[0]["url_citation"]["url"])
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(prompts) == 1 and prompts[0]["type"] == "url_citation", prompts
    citation = prompts[0]["url_citation"]
    assert content[citation["start_index"]:citation["end_index"]] == citation["url"], (content, citation)
    assert "The tool said" in content, content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes


APPROVING = os.environ["APPROVAL_FUNCTION_URL"] + "/compatible-mode/v1"
approving = OpenAI(base_url=APPROVING, api_key=JWT, max_retries=0, _strict_response_validation=True)
APPROVAL_QUESTION = "Please say hello to Ada"


def approval_request_of(conversation):
    """A streamed turn that stops for approval, validated strictly event by event; its request item."""
    events = strict_response_events(
        APPROVING, {"model": MODEL, "input": APPROVAL_QUESTION, "conversation": conversation})
    final = check_stream_consistency(events)
    assert final.status == "completed", final.status
    requests = [item for item in final.output if isinstance(item, McpApprovalRequest)]
    assert len(requests) == 1, [item.type for item in final.output]
    assert requests[0].name.endswith("helloworld") and requests[0].server_label, requests[0]
    assert json.loads(requests[0].arguments) == {"name": "Ada"}, requests[0].arguments
    assert not [item for item in final.output if item.type == "mcp_call"], "the call waits: no mcp_call yet"
    return requests[0]


def test_responses_approval_approved_runs_the_call_as_asked():
    request = approval_request_of("conv-approval-yes")
    answer = McpApprovalResponse(type="mcp_approval_response", approval_request_id=request.id, approve=True)
    response = approving.responses.create(
        model=MODEL, conversation="conv-approval-yes", input=[answer.model_dump(exclude_none=True)])
    assert response.status == "completed", response
    calls = [item for item in response.output if isinstance(item, McpCall)]
    assert len(calls) == 1 and "Hello, Ada!" in (calls[0].output or ""), response.output
    assert "Hello, Ada!" in response.output_text, response.output_text


def test_responses_approval_declined_is_told_and_a_replay_refused():
    request = approval_request_of("conv-approval-no")
    answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False,
              "reason": "not today"}
    response = approving.responses.create(model=MODEL, conversation="conv-approval-no", input=[answer])
    assert response.status == "completed", response
    assert not [item for item in response.output if item.type == "mcp_call"], response.output
    assert "declined" in response.output_text and "not today" in response.output_text, response.output_text
    status, text = post(APPROVING, "/responses", {"model": MODEL, "conversation": "conv-approval-no",
                                                  "input": [answer], "stream": False})
    replay = strictly(Response, text) if status == 200 else None
    assert replay is not None and replay.status == "failed", (status, text)
    assert replay.error.code == "invalid_prompt" and "approval_invalid" in replay.error.message, replay.error


def asked_for_approval(final):
    """The one McpApprovalRequest of a completed Response, after checking nothing ran yet."""
    assert final.status == "completed", final.status
    requests = [item for item in final.output if isinstance(item, McpApprovalRequest)]
    assert len(requests) == 1, [item.type for item in final.output]
    assert requests[0].name.endswith("helloworld") and requests[0].server_label == "mcp", requests[0]
    assert json.loads(requests[0].arguments) == {"name": "Ada"}, requests[0].arguments
    assert not [item for item in final.output if item.type == "mcp_call"], "the call waits: no mcp_call yet"
    return requests[0]


def test_responses_approval_through_previous_response_id_as_openai_documents_it():
    """No conversation: the answer is an mcp_approval_response item with previous_response_id, the SDK's
    own call; the Response is validated strictly as the SDK's model and chains to the one it continues."""
    asked = approving.responses.create(model=MODEL, input=APPROVAL_QUESTION)
    request = asked_for_approval(strictly(Response, asked.model_dump_json()))
    assert asked.store is True and asked.conversation is None, (asked.store, asked.conversation)
    answer = McpApprovalResponse(type="mcp_approval_response", approval_request_id=request.id, approve=True)
    done = approving.responses.create(model=MODEL, previous_response_id=asked.id,
                                      input=[answer.model_dump(exclude_none=True)])
    strictly(Response, done.model_dump_json())
    assert done.status == "completed" and done.previous_response_id == asked.id, (done.status, done.previous_response_id)
    calls = [item for item in done.output if isinstance(item, McpCall)]
    assert len(calls) == 1 and "Hello, Ada!" in (calls[0].output or ""), done.output
    assert "Hello, Ada!" in done.output_text, done.output_text
    # The same answer again, through the same id: the request is answered already.
    again = approving.responses.create(model=MODEL, previous_response_id=asked.id,
                                       input=[answer.model_dump(exclude_none=True)])
    assert again.status == "failed" and again.error.code == "invalid_prompt", again.error
    assert "approval_invalid" in again.error.message, again.error


def test_responses_approval_declined_through_previous_response_id_streamed():
    events = list(approving.responses.create(model=MODEL, input=APPROVAL_QUESTION, stream=True))
    asked = check_stream_consistency(events)
    request = asked_for_approval(asked)
    answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False,
              "reason": "not today"}
    events = strict_response_events(APPROVING, {"model": MODEL, "previous_response_id": asked.id, "input": [answer]})
    told = check_stream_consistency(events)
    assert told.status == "completed" and told.previous_response_id == asked.id, told
    assert not [item for item in told.output if item.type == "mcp_call"], told.output
    assert "declined" in told.output_text and "not today" in told.output_text, told.output_text


def test_an_unknown_previous_response_id_is_openais_not_found_error():
    for unknown in ["resp_nothing", "resp_0123456789abcdef0123456789abcdefY29udi1ub25l"]:
        try:
            approving.responses.create(model=MODEL, previous_response_id=unknown, input="hi")
            raise AssertionError(f"{unknown} was continued")
        except openai.BadRequestError as error:
            assert error.status_code == 400 and error.code == "previous_response_not_found", error
            assert error.param == "previous_response_id", error.param
            strictly(ErrorObject, json.dumps(error.body))
    status, text = post(APPROVING, "/responses", {"model": MODEL, "input": "hi", "conversation": "c",
                                                  "previous_response_id": "resp_x"})
    assert status == 400 and json.loads(text)["error"]["param"] == "previous_response_id", (status, text)


def test_require_approval_on_a_requests_mcp_tool_as_openai_documents_it():
    """On the function without TOOL_APPROVAL: the request's own mcp tool asks for approval ("always", the
    default, a filter naming the tool) or lets it run ("never", a filter waiving it)."""
    def mcp(require_approval=None):
        tool = {"type": "mcp", "server_label": "mcp", "server_url": "https://example.invalid/mcp"}
        if require_approval is not None:
            tool["require_approval"] = require_approval
        return [tool]

    for waits in [mcp("always"), mcp(), mcp({"always": {"tool_names": ["helloworld"]}}),
                  mcp({"never": {"tool_names": ["getutctime"]}})]:
        response = strict.responses.create(model=MODEL, input=APPROVAL_QUESTION, tools=waits)
        asked_for_approval(strictly(Response, response.model_dump_json()))
    for runs in [mcp("never"), mcp({"never": {"tool_names": ["helloworld"]}})]:
        response = strict.responses.create(model=MODEL, input=APPROVAL_QUESTION, tools=runs)
        calls = [item for item in response.output if isinstance(item, McpCall)]
        assert len(calls) == 1 and "Hello, Ada!" in (calls[0].output or ""), response.output
    try:
        strict.responses.create(model=MODEL, input=APPROVAL_QUESTION,
                                tools=[{"type": "mcp", "server_label": "bank", "server_url": "https://example.invalid"}])
        raise AssertionError("an mcp tool naming no server of the function was accepted")
    except openai.BadRequestError as error:
        assert error.param == "tools[0].server_label", error.param


def test_models_lists_the_configured_model():
    ids = [model.id for model in strict.models.list()]
    assert ids[0] == MODEL, ids


def main():
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    failed = []
    for name, fn in tests:
        try:
            fn()
            print(f"ok   {name}")
        except Exception:  # noqa: BLE001 - every failure is reported, then the script fails
            failed.append(name)
            print(f"FAIL {name}\n{traceback.format_exc()}")
    print(f"openai {openai.__version__}: {len(tests) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
