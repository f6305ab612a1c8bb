//! Questions from tools (issue 26, part 2), end to end over real sockets: the dev stack's MCP server speaks
//! 2026-07-28, and its `book_table` answers the first `tools/call` with `input_required` (a form asking for
//! the number of guests) and a `requestState` it checks on the retry; `sign_terms` asks the same in URL
//! mode. The question reaches the user through the face, the invocation ends, the next one carries the
//! answer and the call is repeated with it. A face that cannot show a question gets it declined, and the
//! server sees the decline. The stand-in records every retry (`ask_retries`), so "nothing run" is checked
//! where it happens.

mod common;
mod kit;
#[path = "sessions/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use common::Function;
use devstack::mcp_server::{Revisions, TERMS_URL};
use devstack::{Stack, StackOptions};
use kit::paused::{A2aContext, ag_ui_run, ag_ui_text, answer_text, ask, failure_code, interrupt_of, last};
use serde_json::{Value, json};

async fn modern(overrides: &[(&str, &str)]) -> Function {
    let stack =
        Stack::start_with(StackOptions { mcp_revisions: Revisions::Modern, ..StackOptions::default() }).await.unwrap();
    Function::with_stack(stack, overrides).await
}

/// An `mcp_elicitation_response` message as a `/process` client sends it.
fn answer(session: &str, user: &str, id: &str, action: &str, content: Option<Value>) -> Value {
    let mut data = json!({"elicitation_request_id": id, "action": action});
    if let Some(content) = content {
        data["content"] = content;
    }
    kit::paused::answer("mcp_elicitation_response", session, user, data)
}

/// The question: an assistant `message` whose text asks and whose data part is the machine-readable request.
fn question_of(events: &[Value]) -> Value {
    let message = events
        .iter()
        .find(|e| {
            e["object"] == "message"
                && e["status"] == "completed"
                && e["content"][1]["data"]["type"] == "mcp_elicitation_request"
        })
        .unwrap_or_else(|| panic!("no question in {events:#?}"));
    assert_eq!((message["role"].as_str(), message["type"].as_str()), (Some("assistant"), Some("message")));
    assert_eq!(message["content"][0]["text"], message["content"][1]["data"]["message"], "a person reads the question");
    message["content"][1]["data"].clone()
}

#[tokio::test]
async fn a_2026_servers_question_is_relayed_on_process_answered_once_by_its_user_and_resumed() {
    let f = modern(&[]).await;
    let events = f.process(&ask("Please book a table", Some("q1"), "u1")).await;
    assert_eq!(last(&events)["status"], "completed", "the invocation ends; nothing waits for a human");
    let question = question_of(&events);
    assert_eq!(question["mode"], "form");
    assert_eq!(question["message"], "For how many guests?");
    assert_eq!(question["requested_schema"]["properties"]["guests"]["type"], "integer", "{question}");
    assert!(question["name"].as_str().unwrap().ends_with("book_table"), "{question}");
    assert!(question.get("request_state").is_none(), "the server's state is kept, never shown: {question}");
    let id = question["id"].as_str().unwrap().to_owned();
    assert_eq!(f.stack.mcp.method_count("tools/call"), 1);
    assert!(f.stack.mcp.ask_retries().is_empty());

    // Another user naming the same session has a session of their own: nothing waits there.
    let events = f.process(&answer("q1", "u2", &id, "accept", Some(json!({"guests": 9})))).await;
    assert_eq!(failure_code(&events), "answer_invalid");
    // A form accepted without its content is refused too.
    let events = f.process(&answer("q1", "u1", &id, "accept", None)).await;
    assert_eq!(failure_code(&events), "answer_invalid");
    assert!(f.stack.mcp.ask_retries().is_empty(), "nothing was retried");

    let events = f.process(&answer("q1", "u1", &id, "accept", Some(json!({"guests": 4})))).await;
    assert_eq!(last(&events)["status"], "completed", "{:#?}", last(&events));
    let retries = f.stack.mcp.ask_retries();
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(retries[0].state_valid, "the retry carried the server's own requestState: {retries:?}");
    assert_eq!(
        (retries[0].action.as_deref(), retries[0].content.clone()),
        (Some("accept"), Some(json!({"guests": 4})))
    );
    assert!(answer_text(&events).contains("Booked a table for 4 guests."), "{events:#?}");

    // Answered once: the same answer again is refused and repeats nothing.
    let events = f.process(&answer("q1", "u1", &id, "accept", Some(json!({"guests": 4})))).await;
    assert_eq!(failure_code(&events), "answer_invalid");
    assert_eq!(f.stack.mcp.ask_retries().len(), 1);
}

#[tokio::test]
async fn an_expired_question_is_refused_and_an_unanswered_one_told_to_the_model() {
    let f = modern(&[("TOOL_APPROVAL_TTL_SECS", "1")]).await;
    let id =
        question_of(&f.process(&ask("Please book a table", Some("e"), "u1")).await)["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let events = f.process(&answer("e", "u1", &id, "decline", None)).await;
    assert_eq!(failure_code(&events), "answer_invalid");
    assert!(last(&events)["error"]["message"].as_str().unwrap().contains("expired"));

    // The user goes on: the call is not repeated, and the model hears it was not answered.
    let events = f.process(&ask("no tools: never mind", Some("e"), "u1")).await;
    assert_eq!(last(&events)["status"], "completed", "{:#?}", last(&events));
    let sent = f.stack.dashscope.requests().last().unwrap().body.clone();
    let tool = sent["messages"].as_array().unwrap().iter().find(|m| m["role"] == "tool").expect("the call's output");
    assert!(tool["content"].as_str().unwrap().contains("without answering"), "{tool}");
    assert!(f.stack.mcp.ask_retries().is_empty(), "nothing was retried");
}

/// AG-UI: the question is the run's interrupt (a form's schema as `responseSchema`, a link in `metadata`);
/// the next run's `resume` answers it.
#[tokio::test]
async fn an_ag_ui_run_pauses_with_the_question_and_a_resume_answers_it() {
    let f = modern(&[]).await;
    let run = |thread, run_id, messages, resume| ag_ui_run(&f, thread, run_id, messages, resume);

    let events = run("t1", "r1", json!([{"id": "m1", "role": "user", "content": "book a table"}]), json!([])).await;
    let interrupt = interrupt_of(&events);
    assert_eq!(
        (interrupt["reason"].as_str(), interrupt["message"].as_str()),
        (Some("mcp_elicitation"), Some("For how many guests?"))
    );
    assert_eq!(interrupt["responseSchema"]["properties"]["guests"]["type"], "integer", "{interrupt}");
    assert!(interrupt["toolCallId"].as_str().is_some_and(|id| !id.is_empty()) && interrupt["expiresAt"].is_string());
    let resume = json!([{"interruptId": interrupt["id"], "status": "resolved", "payload": {"guests": 2}}]);
    let events = run("t1", "r2", json!([]), resume).await;
    assert_eq!(events.last().unwrap()["outcome"]["type"], "success", "{events:#?}");
    assert!(ag_ui_text(&events).contains("Booked a table for 2 guests."), "{events:#?}");
    let retries = f.stack.mcp.ask_retries();
    assert!(retries.len() == 1 && retries[0].state_valid, "{retries:?}");

    // URL mode: the link is shown; the user declines, and the server hears the decline.
    let events = run("t2", "r1", json!([{"id": "m1", "role": "user", "content": "sign the terms"}]), json!([])).await;
    let interrupt = interrupt_of(&events);
    assert_eq!(
        (interrupt["metadata"]["mode"].as_str(), interrupt["metadata"]["url"].as_str()),
        (Some("url"), Some(TERMS_URL))
    );
    assert!(interrupt.get("responseSchema").is_none());
    let resume = json!([{"interruptId": interrupt["id"], "status": "cancelled", "payload": {"action": "decline"}}]);
    let events = run("t2", "r2", json!([]), resume.clone()).await;
    assert_eq!(events.last().unwrap()["outcome"]["type"], "success", "{events:#?}");
    assert!(ag_ui_text(&events).contains("declined"), "{events:#?}");
    let retries = f.stack.mcp.ask_retries();
    assert_eq!((retries.len(), retries[1].action.as_deref(), retries[1].state_valid), (2, Some("decline"), true));

    // Answered once: the same resume again is a RUN_ERROR, and nothing is retried.
    let events = run("t2", "r3", json!([]), resume).await;
    let error = events.last().unwrap();
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("RUN_ERROR"), Some("answer_invalid")),
        "{events:#?}"
    );
    assert_eq!(f.stack.mcp.ask_retries().len(), 2);
}

/// Chat Completions has nobody to show a question to, and `/process` without a session nowhere to keep
/// it: the question is declined as MCP says (a retry with `action: "decline"` and the server's state),
/// and the model is told.
#[tokio::test]
async fn a_face_that_cannot_relay_declines_the_question_and_the_model_is_told() {
    let f = modern(&[]).await;
    let body = json!({"model": "qwen-max", "user": "u1", "messages": [{"role": "user", "content": "book a table"}]});
    let answer =
        Function::client().post(f.url("/compatible-mode/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let completion: Value = answer.json().await.unwrap();
    let content = completion["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("declined") && content.contains("For how many guests?"), "{content}");
    let retries = f.stack.mcp.ask_retries();
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(retries[0].state_valid && retries[0].action.as_deref() == Some("decline"), "{retries:?}");

    let events = f.process(&ask("Please book a table", None, "u1")).await;
    assert_eq!(last(&events)["status"], "completed");
    assert!(
        !events.iter().any(|e| e["content"][1]["data"]["type"] == "mcp_elicitation_request"),
        "nothing is asked without a session"
    );
    assert!(answer_text(&events).contains("declined"));
    assert_eq!(f.stack.mcp.ask_retries().len(), 2);
}

/// A2A 0.3 (raw JSON-RPC; the 1.x SDK's strict check is in tests/clients): the task ends `input-required`
/// with the question as a data part; a message in the same task answering it completes that task.
#[tokio::test]
async fn an_a2a_task_waits_input_required_with_the_question_and_the_answer_completes_it() {
    let f = modern(&[]).await;
    let a2a = A2aContext { f: &f, context: "ctx-q" };
    let asked = a2a.send(json!([{"kind": "text", "text": "book a table"}]), None).await;
    let task = &asked["result"];
    assert_eq!(task["status"]["state"], "input-required", "{asked}");
    let parts = task["status"]["message"]["parts"].as_array().unwrap();
    assert!(parts[0]["text"].as_str().unwrap().contains("For how many guests?"), "{asked}");
    let question = parts.iter().find(|p| p["kind"] == "data").expect("the question as a data part")["data"].clone();
    assert_eq!((question["type"].as_str(), question["mode"].as_str()), (Some("mcp_elicitation_request"), Some("form")));
    assert_eq!(question["requested_schema"]["properties"]["guests"]["type"], "integer");
    let (task_id, id) = (task["id"].as_str().unwrap().to_owned(), question["id"].as_str().unwrap().to_owned());

    let answer =
        json!([{"kind": "data", "data": {"elicitation_request_id": id, "action": "accept", "content": {"guests": 6}}}]);
    let done = a2a.send(answer.clone(), Some(&task_id)).await;
    let task = &done["result"];
    assert_eq!((task["status"]["state"].as_str(), task["id"].as_str()), (Some("completed"), Some(task_id.as_str())));
    assert!(
        task["artifacts"][0]["parts"][0]["text"].as_str().unwrap().contains("Booked a table for 6 guests."),
        "{done}"
    );
    let retries = f.stack.mcp.ask_retries();
    assert!(retries.len() == 1 && retries[0].state_valid, "{retries:?}");

    let replay = a2a.send(answer, Some(&task_id)).await;
    assert_eq!(replay["result"]["status"]["state"], "failed", "{replay}");
    assert_eq!(replay["result"]["metadata"]["error"]["code"], "answer_invalid");
    assert_eq!(f.stack.mcp.ask_retries().len(), 1);
}

/// On a 2025 revision a question would be an `elicitation/create` request inside the open `tools/call`,
/// which the user cannot answer before the invocation ends: the client does not declare `elicitation`
/// there, so the server does not ask (the stand-in's tool says it cannot), and nothing is shown.
#[tokio::test]
async fn a_2025_connection_does_not_offer_elicitation() {
    let f = Function::start(&[]).await;
    let events = f.process(&ask("Please book a table", Some("l1"), "u1")).await;
    assert_eq!(last(&events)["status"], "completed");
    assert!(!events.iter().any(|e| e["content"][1]["data"]["type"] == "mcp_elicitation_request"));
    assert!(answer_text(&events).contains("no elicitation capability"), "{events:#?}");
    assert!(f.stack.mcp.protocol_versions().iter().all(|v| v.starts_with("2025")), "a 2025 server");
}

/// A question asked on one instance is answered on another through Redis, and the server's state still
/// checks out: nothing about the question lives in the instance that asked.
#[tokio::test]
async fn a_question_asked_on_one_instance_is_answered_on_another_through_redis() {
    let redis = redis_server::RedisServer::start().await;
    let url = redis.url();
    let env = [("SESSION_STORE", url.as_str()), ("SESSION_KEY_PREFIX", "qs:")];
    let first = modern(&env).await;
    let stack =
        Stack::start_with(StackOptions { mcp_revisions: Revisions::Modern, ..StackOptions::default() }).await.unwrap();
    // The second instance reaches the same MCP server (which issued the requestState) with tokens from the
    // same Agent Identity, as two instances of one function do.
    let (mcp, identity) = (first.stack.mcp.url().to_owned(), first.stack.identity.url());
    let shared = [("AI_GATEWAY_MCP_SERVER", mcp.as_str()), ("AGENT_IDENTITY_DATA_ENDPOINT", identity.as_str())];
    let second = Function::with_stack(stack, &[env[0], env[1], shared[0], shared[1]]).await;
    let id = question_of(&first.process(&ask("Please book a table", Some("r1"), "u1")).await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = second.process(&answer("r1", "u1", &id, "accept", Some(json!({"guests": 8})))).await;
    assert_eq!(last(&events)["status"], "completed", "{:#?}", last(&events));
    assert!(answer_text(&events).contains("Booked a table for 8 guests."), "{events:#?}");
    let retries = first.stack.mcp.ask_retries();
    assert!(retries.len() == 1 && retries[0].state_valid, "{retries:?}");
    let replay = first.process(&answer("r1", "u1", &id, "accept", Some(json!({"guests": 8})))).await;
    assert_eq!(failure_code(&replay), "answer_invalid", "answered on one instance is answered on all");
    assert_eq!(first.stack.mcp.ask_retries().len(), 1);
}

/// A2A 1.0 across instances (Redis shared, no affinity header): the task asked its question on one
/// instance; the answer, a message in the same task, reaches another, which goes on in that very task.
#[tokio::test]
async fn an_a2a_question_asked_on_one_instance_is_answered_in_the_same_task_on_another() {
    let redis = redis_server::RedisServer::start().await;
    let url = redis.url();
    let first = modern(&[("SESSION_STORE", url.as_str())]).await;
    let stack =
        Stack::start_with(StackOptions { mcp_revisions: Revisions::Modern, ..StackOptions::default() }).await.unwrap();
    // One MCP server (which issued the requestState) and one Agent Identity, as for two instances of a function.
    let (mcp, identity) = (first.stack.mcp.url().to_owned(), first.stack.identity.url());
    let env = [
        ("SESSION_STORE", url.as_str()),
        ("AI_GATEWAY_MCP_SERVER", mcp.as_str()),
        ("AGENT_IDENTITY_DATA_ENDPOINT", identity.as_str()),
    ];
    let second = Function::with_stack(stack, &env).await;
    let send = |parts: Value, task: Option<&str>| {
        let mut message = json!({"role": "ROLE_USER", "messageId": format!("m{}", parts.to_string().len()),
            "contextId": "ctx-q2", "parts": parts, "metadata": {"user_id": "u1"}});
        if let Some(task) = task {
            message["taskId"] = json!(task);
        }
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}})
    };
    let post = |f: &Function, body: Value| {
        let url = f.url("/a2a");
        async move {
            let request = Function::client().post(url).header("A2A-Version", "1.0").json(&body);
            request.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let asked = post(&first, send(json!([{"text": "book a table"}]), None)).await;
    let task = &asked["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{asked}");
    let parts = task["status"]["message"]["parts"].as_array().unwrap();
    let question = parts.iter().find(|p| p.get("data").is_some()).expect("the question as a data part")["data"].clone();
    let task_id = task["id"].as_str().unwrap().to_owned();

    let answer =
        json!([{"data": {"elicitation_request_id": question["id"], "action": "accept", "content": {"guests": 3}}}]);
    let done = post(&second, send(answer, Some(&task_id))).await;
    let task = &done["result"]["task"];
    assert_eq!(task["id"], task_id.as_str(), "the answer went on in the same task: {done}");
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{done}");
    assert!(
        task["artifacts"][0]["parts"][0]["text"].as_str().unwrap().contains("Booked a table for 3 guests."),
        "{done}"
    );
    let retries = first.stack.mcp.ask_retries();
    assert!(retries.len() == 1 && retries[0].state_valid, "{retries:?}");
}
