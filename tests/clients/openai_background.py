"""The official `openai` Python SDK on background responses, strictly validated.

Environment: FUNCTION_URL (the function with the stand-ins; FC's async invocation stand-in delivers to it),
USER_JWT (the end user's JWT: the SDK's api_key is the bearer, kept with the queued turn until it runs).
Checks: create(background=True) answers `queued` at once; retrieve() until `completed`, whose output holds
the tool's answer; retrieve(stream=True, starting_after=N) gives the events after N, each parsed into the
SDK's event types; cancel() of a turn that never ends gives `cancelled`. Exits non-zero naming each check
that broke.
"""

import os
import sys
import time
import traceback

from openai import OpenAI
from openai.types.responses import Response

BASE = os.environ["FUNCTION_URL"] + "/compatible-mode/v1"
client = OpenAI(base_url=BASE, api_key=os.environ["USER_JWT"], max_retries=0, _strict_response_validation=True)
failures = []


def check(name):
    def wrap(function):
        try:
            function()
            print(f"ok   {name}")
        except Exception:  # noqa: BLE001 - every check runs and reports
            failures.append(name)
            print(f"FAIL {name}\n{traceback.format_exc()}")
        return function

    return wrap


def wait_for(response_id, status, limit=30.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        response = client.responses.retrieve(response_id)
        assert isinstance(response, Response)
        if response.status == status:
            return response
        time.sleep(0.05)
    raise AssertionError(f"{response_id} never became {status} (last: {response.status})")


@check("create(background=True) is queued, then completed, then resumable")
def background_round_trip():
    queued = client.responses.create(model="qwen-max", input="Tell me the time in UTC", background=True)
    assert isinstance(queued, Response), type(queued)
    assert queued.status == "queued", queued.status
    assert queued.background is True
    done = wait_for(queued.id, "completed")
    assert done.id == queued.id
    assert done.output_text.startswith("The tool said: "), done.output_text
    assert done.usage is not None and done.usage.total_tokens > 0
    every = list(client.responses.retrieve(queued.id, stream=True))
    assert [e.sequence_number for e in every] == list(range(len(every)))
    assert every[0].type == "response.created" and every[-1].type == "response.completed"
    after = list(client.responses.retrieve(queued.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in after] == list(range(4, len(every))), [e.sequence_number for e in after]
    assert [e.type for e in after] == [e.type for e in every[4:]]


@check("cancel() stops a background response that is running")
def cancel_running():
    queued = client.responses.create(model="qwen-max", input="[fault:drip] go", background=True)
    wait_for(queued.id, "in_progress")
    cancelled = client.responses.cancel(queued.id)
    assert isinstance(cancelled, Response)
    assert wait_for(queued.id, "cancelled").error is None


if failures:
    print("failed: " + ", ".join(failures))
    sys.exit(1)
