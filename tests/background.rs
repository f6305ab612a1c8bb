//! Background turns end to end over real sockets: the real binary queues a turn with FC's async invocation
//! (the devstack stand-in, which verifies the ACS3 signature and delivers to `/invoke` as FC does), the
//! delivery runs it and journals its events, and clients collect it: `GET` until `completed`, a stream
//! resumed mid-turn with `starting_after` / `Last-Event-ID`, cancel. The Redis case runs two instances:
//! started on one, delivered to and collected from the other.

mod common;
mod kit;
#[path = "sessions/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use axum::response::IntoResponse;
use devstack::{Stack, StackOptions};
use kit::binary::Binary;
use kit::venv::{clients_dir, text, venv};
use redis_server::RedisServer;
use serde_json::{Value, json};

/// A liveness bound for waiting on a background turn, not a timing assertion.
const GUARD: Duration = Duration::from_secs(30);

fn client() -> reqwest::Client {
    fc_identity_agent::upstream::client_builder().build().unwrap()
}

/// One SSE frame of a followed stream: its `id:` and its event.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    id: String,
    event: Value,
}

fn frames(text: &str) -> Vec<Frame> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut id = String::new();
            let mut event = Value::Null;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id: ") {
                    id = value.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event = serde_json::from_str(data).unwrap();
                }
            }
            Frame { id, event }
        })
        .collect()
}

async fn queue(binary: &Binary, body: Value) -> Value {
    let response = client().post(binary.url("/compatible-mode/v1/responses")).json(&body).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "queueing answers at once: {answer}");
    answer
}

async fn state(binary: &Binary, id: &str) -> Value {
    let url = binary.url(&format!("/compatible-mode/v1/responses/{id}"));
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Polls `GET` until the response has `status`.
async fn until(binary: &Binary, id: &str, status: &str) -> Value {
    tokio::time::timeout(GUARD, async {
        loop {
            let response = state(binary, id).await;
            if response["status"] == status {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id} never became {status}"))
}

async fn stream(binary: &Binary, id: &str, query: &str) -> Vec<Frame> {
    let url = binary.url(&format!("/compatible-mode/v1/responses/{id}?stream=true{query}"));
    let response = tokio::time::timeout(GUARD, client().get(url).send()).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    frames(&tokio::time::timeout(GUARD, response.text()).await.unwrap().unwrap())
}

/// Waits until the model stand-in has had `count` requests (the turn reached the model).
async fn model_called(stack: &Stack, count: usize) {
    tokio::time::timeout(GUARD, async {
        while stack.dashscope.requests().len() < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the turn reached the model");
}

fn sequence(frames: &[Frame]) -> Vec<u64> {
    frames.iter().map(|f| f.event["sequence_number"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_background_response_is_queued_delivered_through_fc_and_collected() {
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[]).await;
    stack.fc.deliver_to(&binary.url(""));
    let queued = queue(
        &binary,
        json!({"model": "qwen-max", "input": "Tell me the time in UTC", "background": true, "user": "alice"}),
    )
    .await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["background"], true);
    let id = queued["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("resp_") && id.len() == 37, "{id}");

    let done = until(&binary, &id, "completed").await;
    assert_eq!(done["id"], id.as_str());
    let text: String = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| {
            item["content"].as_array().unwrap().iter().map(|part| part["text"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(text.starts_with("The tool said: "), "the tool's answer came back: {done}");

    // The event went through FC's API once, signed, and was delivered to /invoke once.
    let deliveries = stack.fc.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!((deliveries[0].attempts, deliveries[0].succeeded), (1, Some(true)));
    assert_eq!(serde_json::from_slice::<Value>(&deliveries[0].event).unwrap(), json!({"background_turn": id}));

    // The whole stream, numbered 0..n with its ids, ends with the completed Response.
    let all = stream(&binary, &id, "").await;
    assert_eq!(sequence(&all), (0..all.len() as u64).collect::<Vec<_>>());
    assert_eq!(all[0].event["type"], "response.created");
    assert_eq!(all.last().unwrap().event["type"], "response.completed");
    assert!(all.iter().enumerate().all(|(n, f)| f.id == format!("{id}/{n}")));
    // starting_after=N: exactly the events after N.
    assert_eq!(stream(&binary, &id, "&starting_after=4").await, all[5..]);

    // A second delivery of the same event (FC delivers at least once) runs nothing.
    let again = client()
        .post(binary.url("/invoke"))
        .header("x-fc-control-path", "/invoke")
        .body(json!({"background_turn": id}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "not_queued");
    assert_eq!(stack.dashscope.requests().len(), 2, "one turn, two model calls");
}

#[tokio::test]
async fn a_stream_dropped_mid_turn_resumes_with_exactly_the_missing_events() {
    let options = StackOptions { model_chunk_delay: Duration::from_millis(40), ..StackOptions::default() };
    let stack = Stack::start_with(options).await.unwrap();
    let binary = Binary::start(&stack, &[]).await;
    stack.fc.deliver_to(&binary.url(""));
    let body = json!({"input": "Write a short poem", "background": true, "stream": true, "user": "alice"});
    let mut response = client().post(binary.url("/compatible-mode/v1/responses")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Read until a few events arrived, then drop the connection mid-turn.
    let mut seen = String::new();
    while frames(&seen).len() < 4 || !seen.ends_with("\n\n") {
        let chunk = tokio::time::timeout(GUARD, response.chunk()).await.unwrap().unwrap().expect("more events");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    drop(response);
    let seen = frames(&seen);
    let last = seen.last().unwrap().clone();
    let id = last.id.split_once('/').unwrap().0.to_owned();
    assert_ne!(seen.last().unwrap().event["type"], "response.completed", "dropped before the end");

    // Resume by Last-Event-ID on the same POST (the browser EventSource way) and by starting_after.
    let resumed = client()
        .post(binary.url("/compatible-mode/v1/responses"))
        .header("last-event-id", &last.id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let resumed = frames(&resumed.text().await.unwrap());
    let n = last.event["sequence_number"].as_u64().unwrap();
    let after = stream(&binary, &id, &format!("&starting_after={n}")).await;
    assert_eq!(resumed, after);
    let whole: Vec<Frame> = seen.iter().cloned().chain(after).collect();
    assert_eq!(sequence(&whole), (0..whole.len() as u64).collect::<Vec<_>>(), "nothing missing, nothing twice");
    assert_eq!(whole.last().unwrap().event["type"], "response.completed", "the turn ran on without its client");
    assert_eq!(whole, stream(&binary, &id, "").await);
}

#[tokio::test]
async fn cancel_stops_a_queued_turn_before_it_runs_and_a_running_one_upstream() {
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[]).await;
    // Nothing is delivered yet: the turn stays queued.
    let queued = queue(&binary, json!({"input": "hello", "background": true, "user": "bob"})).await;
    let id = queued["id"].as_str().unwrap();
    let url = binary.url(&format!("/compatible-mode/v1/responses/{id}/cancel"));
    let cancelled: Value = client().post(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    stack.fc.deliver_to(&binary.url(""));
    tokio::time::timeout(GUARD, async {
        while stack.fc.deliveries()[0].succeeded.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(state(&binary, id).await["status"], "cancelled");
    assert!(stack.dashscope.requests().is_empty(), "a cancelled turn never reached the model");

    // A running turn (a model that never finishes) stops, upstream too.
    let running = queue(&binary, json!({"input": "[fault:drip] go", "background": true, "user": "bob"})).await;
    let id = running["id"].as_str().unwrap();
    until(&binary, id, "in_progress").await;
    model_called(&stack, 1).await;
    let url = binary.url(&format!("/compatible-mode/v1/responses/{id}/cancel"));
    assert_eq!(client().post(&url).send().await.unwrap().status(), 200);
    let ended = until(&binary, id, "cancelled").await;
    assert!(ended["error"].is_null());
    assert!(stack.dashscope.wait_cancelled(1, GUARD).await, "the model's stream was dropped");
    let unknown = client().get(binary.url("/compatible-mode/v1/responses/resp_nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_fc_stand_in_refuses_a_bad_signature_and_the_caller_hears_why() {
    let stack = Stack::start().await.unwrap();
    let url = format!("{}/2023-03-30/functions/{}/invocations", stack.fc.url(), devstack::FUNCTION_NAME);
    let forged = client()
        .post(&url)
        .header("x-fc-invocation-type", "Async")
        .header("authorization", "ACS3-HMAC-SHA256 Credential=STS.x,SignedHeaders=host,Signature=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404, "an unknown key is InvalidAccessKeyId.NotFound");
    // The function signing with a wrong secret: FC refuses, the caller gets a 502 naming the code, and
    // nothing is left queued.
    let binary = Binary::start(&stack, &[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")]).await;
    stack.fc.deliver_to(&binary.url(""));
    let response = client()
        .post(binary.url("/compatible-mode/v1/responses"))
        .json(&json!({"input": "hello", "background": true, "user": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let error = response.json::<Value>().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("SignatureDoesNotMatch"), "{error}");
    let refused: Vec<String> = stack.fc.refused().into_iter().map(|(_, code)| code).collect();
    assert_eq!(refused, ["InvalidAccessKeyId.NotFound", "SignatureDoesNotMatch"]);
    assert!(stack.fc.deliveries().is_empty());
}

#[tokio::test]
async fn background_is_refused_where_it_cannot_be_kept_or_queued() {
    let stack = Stack::start().await.unwrap();
    let refusal = |binary: &Binary| {
        let url = binary.url("/compatible-mode/v1/responses");
        async move {
            let response = client()
                .post(url)
                .json(&json!({"input": "hello", "background": true, "user": "dan"}))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap()["error"]["message"].clone())
        }
    };
    let no_store = Binary::start(&stack, &[("SESSION_STORE", "none")]).await;
    let (status, message) = refusal(&no_store).await;
    assert_eq!(status, 400);
    assert!(message.as_str().unwrap().contains("SESSION_STORE"), "{message}");
    let no_fc = Binary::start(&stack, &[("BACKGROUND_FC_ENDPOINT", ""), ("BACKGROUND_FUNCTION_NAME", "")]).await;
    let (status, message) = refusal(&no_fc).await;
    assert_eq!(status, 400);
    assert!(message.as_str().unwrap().contains("BACKGROUND_FC_ENDPOINT"), "{message}");
    // A2A's non-blocking send is the caller's preference, not a demand: where nothing could keep the task,
    // the answer is the finished task (which A2A allows), not a refusal.
    for binary in [&no_store, &no_fc] {
        let message = json!({"kind": "message", "role": "user", "messageId": "m1",
            "parts": [{"kind": "text", "text": "hello"}], "metadata": {"user_id": "dan"}});
        let params = json!({"message": message, "configuration": {"blocking": false}});
        let answer: Value = a2a_post(binary, a2a("message/send", params)).await.json().await.unwrap();
        assert_eq!(answer["result"]["status"]["state"], "completed", "{answer}");
    }
    assert!(stack.fc.deliveries().is_empty(), "nothing was queued");
}

#[tokio::test]
async fn with_redis_a_turn_started_on_one_instance_is_run_and_collected_on_the_other() {
    let redis = RedisServer::start().await;
    let store = format!("redis://127.0.0.1:{}/0", redis.port);
    let options = StackOptions { model_chunk_delay: Duration::from_millis(20), ..StackOptions::default() };
    let stack = Stack::start_with(options).await.unwrap();
    let first = Binary::start(&stack, &[("SESSION_STORE", &store)]).await;
    let second = Binary::start(&stack, &[("SESSION_STORE", &store)]).await;
    // FC delivers to whichever instance it picks: here, not the one that queued it.
    stack.fc.deliver_to(&second.url(""));
    let queued = queue(&first, json!({"input": "Tell me the time in UTC", "background": true, "user": "erin"})).await;
    let id = queued["id"].as_str().unwrap();
    // Followed on the first instance while the second runs it: the live events arrive through Redis.
    let followed = stream(&first, id, "").await;
    assert_eq!(followed.last().unwrap().event["type"], "response.completed");
    assert_eq!(state(&first, id).await, state(&second, id).await);
    assert_eq!(until(&first, id, "completed").await["id"], id);
    assert_eq!(stream(&second, id, "&starting_after=2").await, followed[3..]);

    // Cancel on one instance stops the turn running on the other.
    let calls = stack.dashscope.requests().len();
    let running = queue(&first, json!({"input": "[fault:drip] go", "background": true, "user": "erin"})).await;
    let id = running["id"].as_str().unwrap();
    until(&first, id, "in_progress").await;
    model_called(&stack, calls + 1).await;
    let url = first.url(&format!("/compatible-mode/v1/responses/{id}/cancel"));
    assert_eq!(client().post(&url).send().await.unwrap().status(), 200);
    until(&second, id, "cancelled").await;
    assert!(stack.dashscope.wait_cancelled(1, GUARD).await, "the other instance dropped the model's stream");
}

/// The openai SDK's own calls: `create(background=True)` → `queued`, `retrieve` until `completed`,
/// `retrieve(stream=True, starting_after=N)`, `cancel` — with strict response validation.
#[tokio::test]
async fn the_openai_sdk_runs_a_background_response() {
    let python = tokio::task::spawn_blocking(|| venv("openai")).await.unwrap();
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[]).await;
    stack.fc.deliver_to(&binary.url(""));
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg(clients_dir().join("openai_background.py"))
            .env("FUNCTION_URL", binary.url(""))
            .env("USER_JWT", user_jwt("background-user"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the script hung")
    .unwrap();
    assert!(output.status.success(), "openai_background.py failed:\n{}", text(&output));
}

/// An end-user JWT the Agent Identity stand-in reads (it does not check the signature).
fn user_jwt(sub: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(json!({"alg": "RS256", "typ": "JWT"}));
    let claims = b64(json!({"sub": sub, "iss": "https://idp.example", "aud": "agent", "exp": 4_102_444_800u64}));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

/// The AgentScope runtime 1.1's task endpoints: `POST /process/task` answers `submitted` with a task id,
/// `GET /process/task/{id}` reports `pending`/`running`/`finished` with the final response object, and the
/// task's `/process` stream (`Accept: text/event-stream`) resumes with `Last-Event-ID`, also on `POST /process`.
#[tokio::test]
async fn an_agentscope_task_runs_in_the_background_and_its_process_stream_resumes() {
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[]).await;
    stack.fc.deliver_to(&binary.url(""));
    let request = json!({
        "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": "Tell me the time in UTC"}]}],
        "session_id": "task-session",
        "user_id": "frank",
    });
    let submitted: Value =
        client().post(binary.url("/process/task")).json(&request).send().await.unwrap().json().await.unwrap();
    assert_eq!(submitted["status"], "submitted");
    let task = submitted["task_id"].as_str().unwrap().to_owned();
    let finished = tokio::time::timeout(GUARD, async {
        loop {
            let state: Value =
                client().get(binary.url(&format!("/process/task/{task}"))).send().await.unwrap().json().await.unwrap();
            assert!(["pending", "running", "finished"].contains(&state["status"].as_str().unwrap()), "{state}");
            if state["status"] == "finished" {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(finished["result"]["object"], "response");
    assert_eq!(finished["result"]["status"], "completed");
    assert_eq!(finished["result"]["id"], task.as_str());

    let sse = |request: reqwest::RequestBuilder| async move {
        let response = request.header("accept", "text/event-stream").send().await.unwrap();
        assert_eq!(response.status(), 200);
        frames(&response.text().await.unwrap())
    };
    let all = sse(client().get(binary.url(&format!("/process/task/{task}")))).await;
    assert_eq!(all.last().unwrap().event["status"], "completed");
    assert!(all.iter().enumerate().all(|(n, f)| f.id == format!("{task}/{n}")));
    let last_seen = format!("{task}/3");
    let resumed =
        sse(client().get(binary.url(&format!("/process/task/{task}"))).header("last-event-id", &last_seen)).await;
    assert_eq!(resumed, all[4..]);
    // The browser's EventSource reconnects to the URL it used, with the body it sent: POST /process.
    let reposted = sse(client().post(binary.url("/process")).header("last-event-id", &last_seen).json(&request)).await;
    assert_eq!(reposted, all[4..]);
    // A Last-Event-ID naming no journaled turn is a clear 404, not a new turn.
    let stale = client()
        .post(binary.url("/process"))
        .header("last-event-id", "task_gone/3")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 404);
    assert_eq!(stack.dashscope.requests().len(), 2, "only the task's own turn reached the model");
}

/// A background turn is a turn of its session: delivered while a foreground turn holds the session's
/// lease, it waits (its stream carrying keep-alives meanwhile) and runs once the session is free, on the
/// conversation the foreground turn left.
#[tokio::test]
async fn a_background_turn_waits_for_its_busy_session_and_runs_after_the_foreground_turn() {
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[("STREAM_HEARTBEAT_SECS", "1")]).await;
    stack.fc.deliver_to(&binary.url(""));
    let body = json!({"input": "sleep 3 seconds", "stream": true, "conversation": "s", "user": "bob"});
    let foreground = client().post(binary.url("/compatible-mode/v1/responses")).json(&body).send();
    let foreground = tokio::spawn(async move { foreground.await.unwrap().text().await.unwrap() });
    model_called(&stack, 1).await;

    let queued =
        queue(&binary, json!({"input": "after", "background": true, "conversation": "s", "user": "bob"})).await;
    let id = queued["id"].as_str().unwrap();
    until(&binary, id, "in_progress").await;
    // Taken and waiting for the lease: its journal-served stream is quiet but kept alive.
    let url = binary.url(&format!("/compatible-mode/v1/responses/{id}?stream=true"));
    let waiting = tokio::time::timeout(GUARD, client().get(url).send()).await.unwrap().unwrap();
    let text = tokio::time::timeout(GUARD, waiting.text()).await.unwrap().unwrap();
    assert!(text.contains(": keep-alive\n\n"), "{text}");

    let foreground = tokio::time::timeout(GUARD, foreground).await.unwrap().unwrap();
    assert!(foreground.contains("response.completed"), "the foreground turn was not disturbed: {foreground}");
    let done = until(&binary, id, "completed").await;
    assert!(done["error"].is_null(), "{done}");
    // The background turn's model request came last and carried the foreground turn's conversation.
    let requests = stack.dashscope.requests();
    let last = requests.last().unwrap().body.to_string();
    assert!(last.contains("sleep 3 seconds") && last.contains("after"), "{last}");
}

fn a2a(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": "r1", "method": method, "params": params})
}

async fn a2a_post(binary: &Binary, body: Value) -> reqwest::Response {
    client().post(binary.url("/a2a")).json(&body).send().await.unwrap()
}

/// A non-blocking A2A task that stops for the user's approval ends its turn `input-required`, which the
/// journal keeps; the answer (a message naming the task) goes on in that very task, here in the foreground.
/// A task that ran in the foreground was never recorded: resubscribing to it is refused, not a new stream.
#[tokio::test]
async fn an_a2a_background_task_waiting_for_approval_is_continued_in_the_same_task() {
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[("TOOL_APPROVAL", "helloworld")]).await;
    stack.fc.deliver_to(&binary.url(""));
    let message = |parts: Value, task: Option<&str>| {
        let mut message = json!({"kind": "message", "role": "user", "messageId": format!("m{}", parts.to_string().len()),
            "contextId": "ctx-bg", "parts": parts, "metadata": {"user_id": "gina"}});
        if let Some(task) = task {
            message["taskId"] = json!(task);
        }
        message
    };
    let ask = message(json!([{"kind": "text", "text": "Please say hello to Ada"}]), None);
    let params = json!({"message": ask, "configuration": {"blocking": false}});
    let sent: Value = a2a_post(&binary, a2a("message/send", params)).await.json().await.unwrap();
    assert_eq!(sent["result"]["status"]["state"], "submitted", "{sent}");
    let task_id = sent["result"]["id"].as_str().unwrap().to_owned();
    assert!(task_id.starts_with("a2a_") && task_id.len() == "a2a_".len() + 32, "an unguessable ticket: {task_id}");

    // Resubscribed: the steps until the turn ends waiting for the user (input-required is the stream's end).
    let response = a2a_post(&binary, a2a("tasks/resubscribe", json!({"id": task_id}))).await;
    let events = frames(&tokio::time::timeout(GUARD, response.text()).await.unwrap().unwrap());
    assert_eq!(events[0].event["result"]["kind"], "task", "{events:?}");
    let last = &events.last().unwrap().event["result"];
    assert_eq!((last["status"]["state"].as_str(), last["final"].as_bool()), (Some("input-required"), Some(true)));
    let request = last["status"]["message"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "data")
        .expect("the request as a data part")["data"]
        .clone();
    let got: Value = a2a_post(&binary, a2a("tasks/get", json!({"id": task_id}))).await.json().await.unwrap();
    assert_eq!(got["result"]["status"]["state"], "input-required", "{got}");

    let answer = message(
        json!([{"kind": "data", "data": {"approval_request_id": request["id"], "approve": true}}]),
        Some(&task_id),
    );
    let done: Value = a2a_post(&binary, a2a("message/send", json!({"message": answer}))).await.json().await.unwrap();
    assert_eq!(done["result"]["id"], task_id.as_str(), "the answer went on in the same task: {done}");
    assert_eq!(done["result"]["status"]["state"], "completed", "{done}");
    assert!(done["result"]["artifacts"][0]["parts"][0]["text"].as_str().unwrap().contains("Hello, Ada!"), "{done}");
    assert_eq!(stack.mcp.method_count("tools/call"), 1);

    // Over now (its continuation ran in the foreground): nothing more to stream, in 0.3's SSE error shape.
    let refused = a2a_post(&binary, a2a("tasks/resubscribe", json!({"id": task_id}))).await;
    assert!(refused.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let refused = frames(&refused.text().await.unwrap());
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event["error"]["code"], -32602, "a finished task: {:?}", refused[0]);
    let stream = json!({"message": message(json!([{"kind": "text", "text": "[fault:drip] go"}]), None)});
    let mut running = a2a_post(&binary, a2a("message/stream", stream)).await;
    let first = tokio::time::timeout(GUARD, running.chunk()).await.unwrap().unwrap().unwrap();
    let opening = frames(std::str::from_utf8(&first).unwrap());
    let foreground = opening[0].event["result"]["id"].as_str().unwrap().to_owned();
    let v10 = json!({"jsonrpc": "2.0", "id": 3, "method": "SubscribeToTask", "params": {"id": foreground}});
    let refused = client().post(binary.url("/a2a")).header("A2A-Version", "1.0").json(&v10).send().await.unwrap();
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], -32004, "a foreground task is not recorded: {refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("foreground"), "{refused}");
    drop(running);
}

/// The turn registry alone stops a running background turn: `POST /stop` on its session, sent to the
/// instance that does not run it, reaches the running one through the store's stop channel. Nothing flags
/// the journal here (no Responses cancel is called), so the journal's fallback look has nothing to find:
/// should the registry or the stop channel break, the slow tool runs its 20 seconds and the turn ends
/// `completed`, failing this test. It ends while the MCP stand-in's tool still sleeps, which the function
/// tells the server (`notifications/cancelled`).
#[tokio::test]
async fn a_running_background_turn_is_stopped_by_the_turn_registry_alone() {
    let redis = RedisServer::start().await;
    let store = format!("redis://127.0.0.1:{}/0", redis.port);
    let stack = Stack::start().await.unwrap();
    let first = Binary::start(&stack, &[("SESSION_STORE", &store)]).await;
    let second = Binary::start(&stack, &[("SESSION_STORE", &store)]).await;
    stack.fc.deliver_to(&second.url(""));
    let body = json!({"input": "sleep 20 seconds", "background": true, "conversation": "bg-stop", "user": "hana"});
    let queued = queue(&first, body).await;
    let id = queued["id"].as_str().unwrap().to_owned();
    tokio::time::timeout(GUARD, async {
        while stack.mcp.method_count("tools/call") == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the slow tool was called");

    let stop = json!({"session_id": "bg-stop", "user_id": "hana", "input": []});
    let stopped = client().post(first.url("/stop")).json(&stop).send().await.unwrap();
    let stopped: Value = stopped.json().await.unwrap();
    assert_eq!(stopped["stopped"], true, "the session's running turn is the background one: {stopped}");
    let ended = tokio::time::timeout(GUARD, async {
        loop {
            let response = state(&first, &id).await;
            if !matches!(response["status"].as_str(), Some("queued" | "in_progress")) {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the turn ended");
    assert_eq!(ended["status"], "cancelled", "stopped, not run to its end: {ended}");
    let record: Value = serde_json::from_str(&redis.get(&format!("turn:{id}")).await.expect("journaled")).unwrap();
    assert_eq!(record["cancel"], false, "the journal was never flagged: only the registry could stop it");
    // The call was dropped while the tool worked: the function told the MCP server so.
    assert!(stack.mcp.method_count("notifications/cancelled") >= 1, "{:?}", stack.mcp.served());
}

/// FC retries an async invocation whose delivery failed: here the instance it first reached answered 503
/// (an instance going down). The retry, `x-fc-retry-count: 1`, runs the turn; it completes once, with one
/// turn's model calls.
#[tokio::test]
async fn a_background_turn_survives_a_failed_first_delivery_and_runs_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[]).await;
    // In front of the function: the first delivery is refused as an instance that is going down answers; the
    // rest are passed through, headers and body as FC sent them.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let arrivals = Arc::new(AtomicUsize::new(0));
    let target = binary.url("/invoke");
    let front = {
        let (seen, arrivals) = (seen.clone(), arrivals.clone());
        axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (seen, arrivals, target) = (seen.clone(), arrivals.clone(), target.clone());
            async move {
                let (parts, body) = request.into_parts();
                let retry = parts.headers.get("x-fc-retry-count").and_then(|v| v.to_str().ok()).unwrap_or("-");
                seen.lock().unwrap().push(retry.to_owned());
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                if arrivals.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (http::StatusCode::SERVICE_UNAVAILABLE, "instance going down").into_response();
                }
                let mut forward = client().post(&target).body(body);
                for (name, value) in &parts.headers {
                    if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                        forward = forward.header(name, value);
                    }
                }
                let answer = forward.send().await.unwrap();
                let status = answer.status();
                (status, answer.bytes().await.unwrap()).into_response()
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, front).await.unwrap() });
    stack.fc.deliver_to(&front_url);

    let queued = queue(&binary, json!({"input": "Tell me the time in UTC", "background": true, "user": "ivan"})).await;
    let id = queued["id"].as_str().unwrap();
    let done = until(&binary, id, "completed").await;
    assert!(done["error"].is_null(), "{done}");
    tokio::time::timeout(GUARD, async {
        while stack.fc.deliveries()[0].succeeded.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let deliveries = stack.fc.deliveries();
    assert_eq!((deliveries[0].attempts, deliveries[0].succeeded), (2, Some(true)), "{deliveries:?}");
    assert_eq!(*seen.lock().unwrap(), ["0", "1"], "FC's retry count on each delivery");
    assert_eq!(stack.dashscope.requests().len(), 2, "one turn ran (a tool call and the answer), not two");
    let all = stream(&binary, id, "").await;
    assert_eq!(all.iter().filter(|f| f.event["type"] == "response.completed").count(), 1, "completed once");
}
