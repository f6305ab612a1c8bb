//! Approval before the tools that act (issue 26, part 1), end to end over real sockets: `TOOL_APPROVAL`
//! names `helloworld`; the model stand-in calls it for "say hello to <name>". The turn stops with an
//! approval request, the next invocation's answer resumes it — on another instance too, with Redis — and
//! whatever is refused runs nothing: the MCP stand-in counts every `tools/call` it served.

mod common;
mod kit;
#[path = "sessions/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use common::Function;
use kit::paused::{A2aContext, ag_ui_run, ag_ui_text, answer_text, failure_code, interrupt_of, last};
use serde_json::{Value, json};

const ASK: &str = "Please say hello to Ada";

fn ask(session: &str, user: &str) -> Value {
    kit::paused::ask(ASK, Some(session), user)
}

/// An `mcp_approval_response` message as an AgentScope client sends it.
fn answer(session: &str, user: &str, request_id: &str, approve: bool) -> Value {
    let data = json!({"approval_request_id": request_id, "approve": approve,
        "reason": if approve { "" } else { "not now" }});
    kit::paused::answer("mcp_approval_response", session, user, data)
}

fn calls(f: &Function) -> usize {
    f.stack.mcp.method_count("tools/call")
}

/// The completed `mcp_approval_request` message's data: `{id, arguments, name, server_label}`.
fn request_of(events: &[Value]) -> Value {
    let message = events
        .iter()
        .find(|e| e["object"] == "message" && e["type"] == "mcp_approval_request" && e["status"] == "completed")
        .unwrap_or_else(|| panic!("no approval request in {events:#?}"));
    assert_eq!(message["role"], "assistant");
    message["content"][0]["data"].clone()
}

#[tokio::test]
async fn a_call_waits_for_the_users_approval_and_runs_as_asked_once() {
    let f = Function::start(&[("TOOL_APPROVAL", "helloworld")]).await;
    let events = f.process(&ask("s1", "u1")).await;
    let request = request_of(&events);
    assert_eq!(last(&events)["status"], "completed", "the invocation ends; no instance waits for a human");
    assert!(request["name"].as_str().unwrap().ends_with("helloworld"), "{request}");
    assert_eq!(serde_json::from_str::<Value>(request["arguments"].as_str().unwrap()).unwrap(), json!({"name": "Ada"}));
    assert!(request["server_label"].as_str().is_some_and(|l| !l.is_empty()), "{request}");
    let id = request["id"].as_str().unwrap().to_owned();
    assert!(
        !events.iter().any(|e| e["type"] == "plugin_call" && e["object"] == "message"),
        "the waiting call is shown as the request, not as a call"
    );
    assert_eq!(calls(&f), 0, "nothing ran before the user answered");

    // Another user naming the same session id has a session of their own: nothing waits there.
    let events = f.process(&answer("s1", "u2", &id, true)).await;
    assert_eq!(failure_code(&events), "approval_invalid");
    assert_eq!(calls(&f), 0);

    let events = f.process(&answer("s1", "u1", &id, true)).await;
    assert_eq!(last(&events)["status"], "completed", "{:#?}", last(&events));
    assert_eq!(calls(&f), 1, "the approved call ran, once");
    let output = events
        .iter()
        .find(|e| e["object"] == "message" && e["type"] == "plugin_call_output")
        .expect("the call's output is shown");
    assert!(output["content"][0]["data"]["output"].as_str().unwrap().contains("Hello, Ada!"), "{output}");
    assert!(answer_text(&events).contains("Hello, Ada!"), "the model went on from the result");

    // Answered once: the same answer again is refused, and runs nothing.
    let events = f.process(&answer("s1", "u1", &id, true)).await;
    assert_eq!(failure_code(&events), "approval_invalid");
    assert_eq!(calls(&f), 1);

    // The conversation the model is sent next holds the call and its result, in order.
    let events = f
        .process(&json!({"input": [{"role": "user", "type": "message",
        "content": [{"type": "text", "text": "no tools: thanks"}]}], "session_id": "s1", "user_id": "u1"}))
        .await;
    assert_eq!(last(&events)["status"], "completed");
    let sent = f.stack.dashscope.requests().last().unwrap().body.clone();
    let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant", "user"], "{sent}");
}

#[tokio::test]
async fn declined_expired_changed_and_unanswered_requests_run_nothing() {
    let f = Function::start(&[("TOOL_APPROVAL", "hello*")]).await;
    // Only the expiry needs a short TTL: a request answered at once on a loaded machine may take longer.
    let expiring = Function::start(&[("TOOL_APPROVAL", "hello*"), ("TOOL_APPROVAL_TTL_SECS", "1")]).await;

    // Declined: the model hears it, with the user's reason.
    let id = request_of(&f.process(&ask("d", "u1")).await)["id"].as_str().unwrap().to_owned();
    let events = f.process(&answer("d", "u1", &id, false)).await;
    assert_eq!(last(&events)["status"], "completed");
    let told = answer_text(&events);
    assert!(told.contains("declined") && told.contains("not now"), "{told}");

    // Expired: refused, nothing run.
    let id = request_of(&expiring.process(&ask("e", "u1")).await)["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let events = expiring.process(&answer("e", "u1", &id, true)).await;
    assert_eq!(failure_code(&events), "approval_invalid");
    assert!(last(&events)["error"]["message"].as_str().unwrap().contains("expired"));

    // Sent back with other arguments: refused, nothing run.
    let request = request_of(&f.process(&ask("c", "u1")).await);
    let id = request["id"].as_str().unwrap().to_owned();
    let mut changed = answer("c", "u1", &id, true);
    let resent = json!({"role": "assistant", "type": "mcp_approval_request", "content": [{"type": "data",
        "data": {"id": id, "name": request["name"], "server_label": request["server_label"],
            "arguments": "{\"name\":\"Mallory\"}"}}]});
    changed["input"].as_array_mut().unwrap().insert(0, resent);
    let events = f.process(&changed).await;
    assert_eq!(failure_code(&events), "approval_invalid");
    assert!(last(&events)["error"]["message"].as_str().unwrap().contains("other arguments"));

    // Unanswered: the user goes on; the call is declined and the conversation stays one the model takes.
    let events = f
        .process(&json!({"input": [{"role": "user", "type": "message",
        "content": [{"type": "text", "text": "no tools: never mind"}]}], "session_id": "c", "user_id": "u1"}))
        .await;
    assert_eq!(last(&events)["status"], "completed", "{:#?}", last(&events));
    let sent = f.stack.dashscope.requests().last().unwrap().body.clone();
    let tool = sent["messages"].as_array().unwrap().iter().find(|m| m["role"] == "tool").expect("the call's output");
    assert!(tool["content"].as_str().unwrap().contains("without answering"), "{tool}");

    assert_eq!(calls(&f) + calls(&expiring), 0, "no refused or declined call ever ran");
}

#[tokio::test]
async fn without_anyone_to_ask_the_call_is_declined_and_the_model_told() {
    let f = Function::start(&[("TOOL_APPROVAL", "all")]).await;
    let body = json!({"model": "qwen-max", "user": "u1", "messages": [{"role": "user", "content": ASK}]});
    let answer =
        Function::client().post(f.url("/compatible-mode/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let completion: Value = answer.json().await.unwrap();
    let content = completion["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("needs the user's approval"), "{content}");

    // No session named: nowhere to keep a request, so /process declines too.
    let events = f
        .process(&json!({"input": [{"role": "user", "type": "message",
        "content": [{"type": "text", "text": ASK}]}], "user_id": "u1"}))
        .await;
    assert_eq!(last(&events)["status"], "completed");
    assert!(answer_text(&events).contains("needs the user's approval"));
    assert_eq!(calls(&f), 0);
}

#[tokio::test]
async fn a_request_made_on_one_instance_is_answered_on_another_through_redis() {
    let redis = redis_server::RedisServer::start().await;
    let url = redis.url();
    let env = [("TOOL_APPROVAL", "helloworld"), ("SESSION_STORE", url.as_str()), ("SESSION_KEY_PREFIX", "ap:")];
    let first = Function::start(&env).await;
    let second = Function::with_stack(devstack::Stack::start().await.unwrap(), &env).await;
    let id = request_of(&first.process(&ask("r1", "u1")).await)["id"].as_str().unwrap().to_owned();
    let events = second.process(&answer("r1", "u1", &id, true)).await;
    assert_eq!(last(&events)["status"], "completed", "{:#?}", last(&events));
    assert_eq!((calls(&first), calls(&second)), (0, 1), "the instance that was answered ran it");
    assert!(answer_text(&events).contains("Hello, Ada!"));
    let replay = first.process(&answer("r1", "u1", &id, true)).await;
    assert_eq!(failure_code(&replay), "approval_invalid", "answered on one instance is answered on all");
    assert_eq!(calls(&first), 0);
}

/// A2A 0.3 (raw JSON-RPC; the SDK checks are in tests/clients): the task ends `input-required` with the
/// request as a data part; a message in the same task answering it goes on in that task.
#[tokio::test]
async fn an_a2a_task_waits_input_required_and_the_answer_continues_it() {
    let f = Function::start(&[("TOOL_APPROVAL", "helloworld")]).await;
    let a2a = A2aContext { f: &f, context: "ctx-1" };
    let asked = a2a.send(json!([{"kind": "text", "text": ASK}]), None).await;
    let task = &asked["result"];
    assert_eq!(task["status"]["state"], "input-required", "{asked}");
    let parts = task["status"]["message"]["parts"].as_array().unwrap();
    let request = parts.iter().find(|p| p["kind"] == "data").expect("the request as a data part")["data"].clone();
    assert_eq!(request["type"], "mcp_approval_request");
    let (task_id, id) = (task["id"].as_str().unwrap().to_owned(), request["id"].as_str().unwrap().to_owned());
    assert_eq!(calls(&f), 0);

    let answer = json!([{"kind": "data", "data": {"approval_request_id": id, "approve": true}}]);
    let done = a2a.send(answer.clone(), Some(&task_id)).await;
    let task = &done["result"];
    assert_eq!((task["status"]["state"].as_str(), task["id"].as_str()), (Some("completed"), Some(task_id.as_str())));
    assert!(task["artifacts"][0]["parts"][0]["text"].as_str().unwrap().contains("Hello, Ada!"), "{done}");
    assert_eq!(calls(&f), 1);

    let replay = a2a.send(answer, Some(&task_id)).await;
    assert_eq!(replay["result"]["status"]["state"], "failed", "{replay}");
    assert_eq!(replay["result"]["metadata"]["error"]["code"], "approval_invalid");
    assert_eq!(calls(&f), 1);
}

/// A2A callers send no affinity header: the answer to an `input-required` task may reach another instance
/// (Redis shared). It goes on in that very task — its id, its context — and both instances then read it
/// `completed`; the call ran once, where the answer arrived.
#[tokio::test]
async fn an_a2a_task_asked_on_one_instance_is_continued_on_another_through_redis() {
    let redis = redis_server::RedisServer::start().await;
    let url = redis.url();
    let env = [("TOOL_APPROVAL", "helloworld"), ("SESSION_STORE", url.as_str())];
    let first = Function::start(&env).await;
    let second = Function::with_stack(devstack::Stack::start().await.unwrap(), &env).await;
    let send = |parts: Value, task: Option<&str>| {
        let mut message = json!({"kind": "message", "role": "user", "messageId": format!("m{}", parts.to_string().len()),
            "contextId": "ctx-x", "parts": parts, "metadata": {"user_id": "u1"}});
        if let Some(task) = task {
            message["taskId"] = json!(task);
        }
        json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}})
    };
    let post = |f: &Function, body: Value| {
        let url = f.url("/a2a");
        async move { Function::client().post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let asked = post(&first, send(json!([{"kind": "text", "text": ASK}]), None)).await;
    assert_eq!(asked["result"]["status"]["state"], "input-required", "{asked}");
    let task_id = asked["result"]["id"].as_str().unwrap().to_owned();
    let parts = asked["result"]["status"]["message"]["parts"].as_array().unwrap();
    let request = parts.iter().find(|p| p["kind"] == "data").expect("the request as a data part")["data"].clone();

    let answer = json!([{"kind": "data", "data": {"approval_request_id": request["id"], "approve": true}}]);
    let done = post(&second, send(answer, Some(&task_id))).await;
    let task = &done["result"];
    assert_eq!(task["id"], task_id.as_str(), "the answer went on in the same task: {done}");
    assert_eq!((task["status"]["state"].as_str(), task["contextId"].as_str()), (Some("completed"), Some("ctx-x")));
    assert!(task["artifacts"][0]["parts"][0]["text"].as_str().unwrap().contains("Hello, Ada!"), "{done}");
    assert_eq!((calls(&first), calls(&second)), (0, 1), "the instance that was answered ran it");
    let get = json!({"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task_id}});
    let got = post(&second, get.clone()).await;
    assert_eq!(got["result"]["status"]["state"], "completed", "{got}");
    // The instance that asked reads the task as the other left it (its mirror, written a moment after the
    // answer), not its own input-required record.
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let got = post(&first, get.clone()).await;
            if got["result"]["status"]["state"] != "working" && got["result"]["status"]["state"] != "submitted" {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let got = read.await.expect("the first instance reads the task's ending");
    assert_eq!(got["result"]["status"]["state"], "completed", "{got}");
}

/// AG-UI (raw; the SDK checks are in tests/clients): the run finishes with the `interrupt` outcome, one
/// interrupt per request; the next run in the same `threadId` answers it with `resume` (and no new message).
#[tokio::test]
async fn an_ag_ui_run_pauses_with_an_interrupt_and_a_resume_answers_it() {
    let f = Function::start(&[("TOOL_APPROVAL", "helloworld")]).await;
    let run = |thread, run_id, messages, resume| ag_ui_run(&f, thread, run_id, messages, resume);
    let ask = json!([{"id": "m1", "role": "user", "content": ASK}]);
    let events = run("t1", "r1", ask.clone(), json!([])).await;
    let interrupt = interrupt_of(&events);
    assert_eq!(interrupt["reason"], "tool_approval");
    assert!(interrupt["metadata"]["name"].as_str().unwrap().ends_with("helloworld"), "{interrupt}");
    assert_eq!(
        serde_json::from_str::<Value>(interrupt["metadata"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"name": "Ada"})
    );
    assert!(interrupt["toolCallId"].as_str().is_some_and(|id| !id.is_empty()) && interrupt["expiresAt"].is_string());
    assert!(!events.iter().any(|e| e["type"] == "TOOL_CALL_START"), "the held call is asked, not shown as a call");
    assert_eq!(calls(&f), 0, "nothing ran before the user answered");
    let id = interrupt["id"].as_str().unwrap().to_owned();

    let resume = json!([{"interruptId": id, "status": "resolved"}]);
    let events = run("t1", "r2", json!([]), resume.clone()).await;
    let finished = events.last().unwrap();
    assert_eq!(
        (finished["type"].as_str(), finished["outcome"]["type"].as_str()),
        (Some("RUN_FINISHED"), Some("success")),
        "{events:#?}"
    );
    assert_eq!(calls(&f), 1, "the approved call ran, once");
    let result = events.iter().find(|e| e["type"] == "TOOL_CALL_RESULT").expect("the call's result is shown");
    assert!(result["content"].as_str().unwrap().contains("Hello, Ada!"), "{result}");
    assert!(ag_ui_text(&events).contains("Hello, Ada!"), "the model went on from the result");

    // Answered once: the same resume again is a RUN_ERROR, and runs nothing.
    let events = run("t1", "r3", json!([]), resume).await;
    let error = events.last().unwrap();
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("RUN_ERROR"), Some("approval_invalid")),
        "{events:#?}"
    );
    assert_eq!(calls(&f), 1);

    // Cancelled: a decline the model is told, with the user's reason.
    let id = interrupt_of(&run("t2", "r1", ask, json!([])).await)["id"].as_str().unwrap().to_owned();
    let cancel = json!([{"interruptId": id, "status": "cancelled", "payload": {"reason": "not now"}}]);
    let events = run("t2", "r2", json!([]), cancel).await;
    assert_eq!(events.last().unwrap()["outcome"]["type"], "success", "{events:#?}");
    let told = ag_ui_text(&events);
    assert!(told.contains("declined") && told.contains("not now"), "{told}");
    assert_eq!(calls(&f), 1, "the cancelled call never ran");
}

/// A Responses request on `f` as JSON (not streamed), with the status.
async fn responses(f: &Function, body: Value) -> (u16, Value) {
    let answer = f
        .send("POST", "/compatible-mode/v1/responses", &[("content-type", "application/json")], body.to_string())
        .await;
    (answer.status, answer.json())
}

fn approval_item(response: &Value) -> Value {
    let output = response["output"].as_array().unwrap();
    let requests: Vec<&Value> = output.iter().filter(|item| item["type"] == "mcp_approval_request").collect();
    assert_eq!(requests.len(), 1, "{response:#}");
    requests[0].clone()
}

/// OpenAI's documented round trip, with nothing but response ids: a request naming no conversation stops
/// for approval; the answer is an `mcp_approval_response` item with `previous_response_id`, sent to
/// **another instance** sharing the Redis store, and the call runs there. The id is this user's only, for
/// the store's TTL, and a replay through it finds the request answered.
#[tokio::test]
async fn a_responses_approval_is_answered_by_previous_response_id_on_another_instance_through_redis() {
    let redis = redis_server::RedisServer::start().await;
    let url = redis.url();
    let env = [("TOOL_APPROVAL", "helloworld"), ("SESSION_STORE", url.as_str()), ("SESSION_KEY_PREFIX", "ap:")];
    let first = Function::start(&env).await;
    let second = Function::with_stack(devstack::Stack::start().await.unwrap(), &env).await;
    let (status, asked) = responses(&first, json!({"model": "qwen-max", "input": ASK, "user": "u1"})).await;
    assert_eq!((status, asked["status"].as_str()), (200, Some("completed")), "{asked:#}");
    let request = approval_item(&asked);
    let id = asked["id"].as_str().unwrap();
    assert_eq!(asked["store"], true);
    // The response index entry: the user's, in the store, expiring with the session TTL.
    let index_key = format!("ap:response_session:u1:{id}");
    let ttl: i64 = redis.query(redis::cmd("TTL").arg(&index_key)).await;
    assert!(ttl > 0 && ttl <= 86_400, "the index entry expires (TTL {ttl})");

    let answer = |approve: bool| {
        json!({"model": "qwen-max", "user": "u1", "previous_response_id": id, "input": [
            {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": approve}]})
    };
    // Another user's answer through the same id: not found for them, nothing run.
    let mut stranger = answer(true);
    stranger["user"] = json!("u2");
    let (status, refused) = responses(&second, stranger).await;
    assert_eq!(status, 400, "{refused:#}");
    assert_eq!(refused["error"]["code"], "previous_response_not_found");
    assert_eq!(refused["error"]["param"], "previous_response_id");
    assert_eq!(refused["error"]["type"], "invalid_request_error");
    // An id this function never issued: the same.
    let mut made_up = answer(true);
    made_up["previous_response_id"] = json!("resp_0123456789abcdef0123456789abcdefY29udi0x");
    assert_eq!(responses(&second, made_up).await.0, 400);
    assert_eq!(calls(&first) + calls(&second), 0, "nothing ran for a refused answer");

    let (status, done) = responses(&second, answer(true)).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("completed")), "{done:#}");
    assert_eq!(done["previous_response_id"], id);
    let ran: Vec<&Value> = done["output"].as_array().unwrap().iter().filter(|i| i["type"] == "mcp_call").collect();
    assert_eq!(ran.len(), 1, "{done:#}");
    assert!(ran[0]["output"].as_str().unwrap().contains("Hello, Ada!"));
    assert_eq!((calls(&first), calls(&second)), (0, 1), "the instance that was answered ran it, once");
    // The conversation goes on from the new response, on either instance.
    let next = done["id"].as_str().unwrap();
    assert_ne!(next, id);
    let (status, more) = responses(
        &first,
        json!({"model": "qwen-max", "user": "u1", "previous_response_id": next, "input": "no tools: thanks"}),
    )
    .await;
    assert_eq!((status, more["status"].as_str()), (200, Some("completed")), "{more:#}");
    // A replay through the first id: the request is answered already.
    let (status, replay) = responses(&first, answer(true)).await;
    assert_eq!((status, replay["status"].as_str()), (200, Some("failed")), "{replay:#}");
    assert!(replay["error"]["message"].as_str().unwrap().starts_with("approval_invalid"), "{replay:#}");
    // Expired (the index entry gone, as its TTL makes it): not found, though the session lives on.
    let _: i64 = redis.query(redis::cmd("DEL").arg(&index_key)).await;
    assert_eq!(responses(&second, answer(true)).await.0, 400);
    assert_eq!(calls(&first) + calls(&second), 1, "the call ran once in all");
}

/// A request's own `mcp` tool asks for approval where `TOOL_APPROVAL` asks for none (`"always"`, or a
/// filter naming the tool), and its `"never"` cannot waive what `TOOL_APPROVAL` requires. Declined through
/// `previous_response_id`: the model is told, nothing runs.
#[tokio::test]
async fn require_approval_on_a_requests_mcp_tool_adds_to_the_policy_and_never_loosens_it() {
    let open = Function::start(&[]).await;
    let mcp = |require: Value| json!([{"type": "mcp", "server_label": "mcp", "server_url": "https://ignored", "require_approval": require}]);
    for require in [
        json!("always"),
        Value::Null,
        json!({"always": {"tool_names": ["helloworld"]}}),
        json!({"never": {"tool_names": ["other"]}}),
    ] {
        let (status, asked) =
            responses(&open, json!({"model": "qwen-max", "input": ASK, "user": "u1", "tools": mcp(require.clone())}))
                .await;
        assert_eq!(status, 200, "{asked:#}");
        assert_eq!(approval_item(&asked)["name"], "helloworld", "{require}");
    }
    for require in [json!("never"), json!({"never": {"tool_names": ["helloworld"]}})] {
        let (_, ran) =
            responses(&open, json!({"model": "qwen-max", "input": ASK, "user": "u1", "tools": mcp(require)})).await;
        assert!(ran["output"].as_array().unwrap().iter().any(|i| i["type"] == "mcp_call"), "{ran:#}");
    }
    assert_eq!(calls(&open), 2, "only the calls nobody had to approve ran");
    let (status, refused) = responses(
        &open,
        json!({"model": "qwen-max", "input": ASK, "tools": [{"type": "mcp", "server_label": "bank"}]}),
    )
    .await;
    assert_eq!((status, refused["error"]["param"].as_str()), (400, Some("tools[0].server_label")), "{refused:#}");

    let strict = Function::start(&[("TOOL_APPROVAL", "helloworld")]).await;
    let (_, asked) =
        responses(&strict, json!({"model": "qwen-max", "input": ASK, "user": "u1", "tools": mcp(json!("never"))}))
            .await;
    let request = approval_item(&asked);
    let declined = json!({"model": "qwen-max", "user": "u1", "previous_response_id": asked["id"], "input": [
        {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": false, "reason": "not now"}]});
    let (status, told) = responses(&strict, declined).await;
    assert_eq!((status, told["status"].as_str()), (200, Some("completed")), "{told:#}");
    let text: String = told["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .filter_map(|i| i["content"][0]["text"].as_str())
        .collect();
    assert!(text.contains("declined") && text.contains("not now"), "{text}");
    assert_eq!(calls(&strict), 0);
    // `store: false`: nothing kept, so nobody can be asked (the call is declined) and nothing continues it.
    let (_, unkept) =
        responses(&strict, json!({"model": "qwen-max", "input": ASK, "user": "u1", "store": false})).await;
    assert_eq!(unkept["store"], false);
    assert!(unkept["output"].as_array().unwrap().iter().all(|i| i["type"] != "mcp_approval_request"), "{unkept:#}");
    let (status, _) = responses(
        &strict,
        json!({"model": "qwen-max", "user": "u1", "previous_response_id": unkept["id"], "input": "hi"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(calls(&strict), 0);
}
