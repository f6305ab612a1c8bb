"""AG-UI: every event of POST /ag-ui validated with the official ag-ui-protocol types, in the order the
@ag-ui/client verifier enforces (spec/ag-ui.md, "Ordering rules").

Run by tests/clients.rs with FUNCTION_URL against a function whose model reasons (DASHSCOPE_ENABLE_THINKING),
CONSENT_FUNCTION_URL: the same function whose MCP server takes the user's OAuth2 token (the consent
flow: a CUSTOM event with the link, which this script "clicks"), and APPROVAL_FUNCTION_URL: one with
TOOL_APPROVAL=helloworld (the run pauses with an interrupt; the next run resumes it). Exits non-zero, naming
the check, when any behaviour breaks.
"""
import http.client
import datetime
import json
import os
import sys
import urllib.parse

from pydantic import TypeAdapter
from ag_ui.core import (Event, EventType, ResumeEntry, RunAgentInput, RunFinishedInterruptOutcome,
                        RunFinishedSuccessOutcome, UserMessage)

from consent import consent  # tests/clients/consent.py: the user's click

URL = urllib.parse.urlparse(os.environ["FUNCTION_URL"])
EVENTS = TypeAdapter(Event)


def check(condition, what):
    if not condition:
        raise SystemExit(f"ag-ui: {what}")


KEEP_ALIVES = []


def run(text, thread="thread-1", run_id="run-1", url=URL, user="alice", on_event=None, resume=None):
    """POSTs a RunAgentInput built with the SDK's own model; returns the validated events in order.
    `on_event` sees each event as it arrives (the stream is still open). With `resume` (ResumeEntry list)
    and no text, the run only answers the last run's interrupts."""
    messages = [UserMessage(id="m1", role="user", content=text)] if text else []
    body = RunAgentInput(thread_id=thread, run_id=run_id, state=None, tools=[], context=[],
                         forwarded_props={"user_id": user}, messages=messages, resume=resume)
    wire = body.model_dump_json(by_alias=True, exclude_none=True)
    # What goes out is a RunAgentInput the SDK itself reads back strictly, nothing left over.
    check(not RunAgentInput.model_validate_json(wire, strict=True).model_extra, f"strict input: {wire}")
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("POST", "/ag-ui", wire, {"Content-Type": "application/json", "Accept": "text/event-stream"})
    response = conn.getresponse()
    if response.status != 200:
        check(False, f"status {response.status}: {response.read()!r}")
    check(response.getheader("content-type", "").startswith("text/event-stream"), "content-type")
    events = []
    for line in response:
        line = line.decode().rstrip("\n")
        if line.startswith(":"):
            # An SSE comment: the stream's keep-alive while nothing else is sent (every SSE parser,
            # the AG-UI client's included, skips it).
            check(line == ": keep-alive", f"the keep-alive comment: {line!r}")
            KEEP_ALIVES.append(line)
            continue
        if not line.startswith("data: "):
            check(line == "", f"only data lines and keep-alives: {line!r}")
            continue
        raw = json.loads(line[len("data: "):])
        # Strict: an event type, role or other enum value the SDK does not list fails here.
        event = EVENTS.validate_json(line[len("data: "):], strict=True)
        check(not event.model_extra, f"{raw['type']} carries keys the schema does not know: {event.model_extra}")
        events.append(event)
        if on_event:
            on_event(event)
    conn.close()
    verify(events)
    return events


def verify(events):
    """The @ag-ui/client verifier's rules."""
    check(events and events[0].type == EventType.RUN_STARTED, f"RUN_STARTED first: {events[:1]}")
    check(events[0].protocol_version == "1.0", "the producer declares protocol 1.0")
    texts, tools, reasoning, ended = set(), set(), set(), False
    for e in events[1:]:
        check(not ended, f"nothing after the run ended: {e.type}")
        t = e.type
        if t == EventType.TEXT_MESSAGE_START:
            check(e.message_id not in texts, "text id not open"); texts.add(e.message_id)
        elif t in (EventType.TEXT_MESSAGE_CONTENT, EventType.TEXT_MESSAGE_END):
            check(e.message_id in texts, f"{t} needs an open text")
            if t == EventType.TEXT_MESSAGE_END:
                texts.discard(e.message_id)
        elif t == EventType.TOOL_CALL_START:
            check(e.tool_call_id not in tools, "tool id not open"); tools.add(e.tool_call_id)
        elif t in (EventType.TOOL_CALL_ARGS, EventType.TOOL_CALL_END):
            check(e.tool_call_id in tools, f"{t} needs an open tool call")
            if t == EventType.TOOL_CALL_END:
                tools.discard(e.tool_call_id)
        elif t == EventType.REASONING_START:
            reasoning.add(e.message_id)
        elif t == EventType.REASONING_END:
            check(e.message_id in reasoning, "reasoning end needs a start"); reasoning.discard(e.message_id)
        elif t in (EventType.RUN_FINISHED, EventType.RUN_ERROR):
            check(not (texts or tools or reasoning), f"{t} with something still open")
            ended = True
        elif t == EventType.RUN_STARTED:
            check(False, "RUN_STARTED while a run is active")
    check(ended, "the run ends with RUN_FINISHED or RUN_ERROR")


def check_consent_flow():
    consent_url = urllib.parse.urlparse(os.environ["CONSENT_FUNCTION_URL"])
    prompts = []

    def on_event(event):
        if event.type == EventType.CUSTOM and event.name == "oauth2_authorization":
            prompts.append(event.value)
            consent(event.value["url"])

    events = run("say hello to Ada", thread="thread-consent", run_id="run-consent", url=consent_url,
                 user="agui-consent", on_event=on_event)
    check(len(prompts) == 1 and prompts[0]["provider"], f"one authorization prompt: {prompts}")
    types = [e.type for e in events]
    check(types[-1] == EventType.RUN_FINISHED, f"the run finishes after the consent: {types}")
    texts = [e.delta for e in events if e.type == EventType.TEXT_MESSAGE_CONTENT]
    check(prompts[0]["url"] in texts[0], f"the prompt is also a text message: {texts[:1]}")
    check(EventType.TOOL_CALL_RESULT in types and "Hello, Ada!" in "".join(texts), f"the tool ran: {types}")


def check_approval():
    """The run stops for the user's approval: RUN_FINISHED's outcome is an interrupt (validated strictly
    with the SDK's models, nothing extra in it); the next run in the thread resumes it and the call runs."""
    url = urllib.parse.urlparse(os.environ["APPROVAL_FUNCTION_URL"])
    asked = run("say hello to Ada", thread="thread-approval", run_id="run-ask", url=url)
    finished = asked[-1]
    check(finished.type == EventType.RUN_FINISHED, f"the paused run finishes: {finished}")
    outcome = finished.outcome
    check(isinstance(outcome, RunFinishedInterruptOutcome) and not outcome.model_extra, f"interrupt: {outcome}")
    check(len(outcome.interrupts) == 1, f"one interrupt: {outcome.interrupts}")
    interrupt = outcome.interrupts[0]
    check(not interrupt.model_extra and interrupt.reason == "tool_approval", f"interrupt: {interrupt}")
    check(interrupt.tool_call_id and "helloworld" in interrupt.message, f"names the call: {interrupt}")
    check(json.loads(interrupt.metadata["arguments"]) == {"name": "Ada"}, f"arguments: {interrupt.metadata}")
    expires = datetime.datetime.fromisoformat(interrupt.expires_at)
    check(expires > datetime.datetime.now(datetime.timezone.utc), f"expires later: {interrupt.expires_at}")
    check(EventType.TOOL_CALL_START not in [e.type for e in asked], "the held call is not shown as a call")

    resume = [ResumeEntry(interrupt_id=interrupt.id, status="resolved", payload={"approve": True})]
    done = run(None, thread="thread-approval", run_id="run-resume", url=url, resume=resume)
    check(isinstance(done[-1].outcome, RunFinishedSuccessOutcome), f"the resumed run succeeds: {done[-1]}")
    result = next((e for e in done if e.type == EventType.TOOL_CALL_RESULT), None)
    check(result is not None and "Hello, Ada!" in result.content, f"the approved call ran: {result}")


def main():
    events = run("say hello to Ada")
    types = [e.type for e in events]
    check(types[-1] == EventType.RUN_FINISHED and events[-1].thread_id == "thread-1", f"finished: {types}")
    for needed in [EventType.REASONING_MESSAGE_CONTENT, EventType.TOOL_CALL_START, EventType.TOOL_CALL_ARGS,
                   EventType.TOOL_CALL_END, EventType.TOOL_CALL_RESULT, EventType.TEXT_MESSAGE_CONTENT]:
        check(needed in types, f"{needed} in {types}")
    check(types.index(EventType.TOOL_CALL_RESULT) < len(types) - 1 - types[::-1].index(EventType.TEXT_MESSAGE_CONTENT),
          "the answer follows the tool result")
    result = next(e for e in events if e.type == EventType.TOOL_CALL_RESULT)
    start = next(e for e in events if e.type == EventType.TOOL_CALL_START)
    check(result.tool_call_id == start.tool_call_id and "Hello, Ada!" in result.content, f"tool result {result}")
    answer = "".join(e.delta for e in events if e.type == EventType.TEXT_MESSAGE_CONTENT)
    check("Hello, Ada!" in answer, f"answer {answer!r}")
    args = "".join(e.delta for e in events if e.type == EventType.TOOL_CALL_ARGS)
    check(json.loads(args) == {"name": "Ada"}, f"tool arguments {args!r}")

    failed = run("[fault:midstream-error] explain", run_id="run-2")
    check(failed[-1].type == EventType.RUN_ERROR and failed[-1].code == "model_error", f"failing model: {failed[-1]}")

    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
    conn.request("POST", "/ag-ui", json.dumps({"runId": "r", "messages": []}), {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = json.loads(response.read())
    check(response.status == 400 and "threadId" in body["error"]["message"], f"bad input: {body}")
    # A tool that works for more than three keep-alive intervals (STREAM_HEARTBEAT_SECS=1): keep-alives,
    # then the run finishes with the tool's answer, every event still valid.
    KEEP_ALIVES.clear()
    quiet = run("sleep 3.5 seconds", thread="thread-quiet", run_id="run-quiet")
    check(quiet[-1].type == EventType.RUN_FINISHED, f"a quiet run finishes: {quiet[-1]}")
    check(any(e.type == EventType.TOOL_CALL_RESULT and "slept" in e.content for e in quiet), "the slow tool's answer")
    check(len(KEEP_ALIVES) >= 3, f"keep-alives on the quiet stream: {len(KEEP_ALIVES)}")
    check_consent_flow()
    check_approval()
    print("ag-ui: ok")


main()
