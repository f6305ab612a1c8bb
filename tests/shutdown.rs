//! A shutdown that outlasts a turn: the turn still ends with a final `failed` event (or JSON answer)
//! before the grace period runs out, instead of being cut mid-stream.

mod common;

use std::time::Duration;

use common::{parse_sse, user_request};
use devstack::Stack;
use fc_identity_agent::app::App;
use fc_runtime::Options;
use tokio::sync::oneshot;

#[tokio::test]
async fn turns_still_running_at_the_end_of_the_grace_period_end_with_a_final_event() {
    let stack = Stack::start().await.unwrap();
    let app = App::new(common::config(&stack, &[]).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = Options { shutdown_grace: Duration::from_secs(2), ..app.run_options() };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(fc_runtime::Runtime::new(app.handler()).options(options).serve(listener, async {
        let _ = stopped.await;
    }));

    let client = common::Function::client();
    // The model never answers: only the shutdown can end these turns.
    let mut streaming = client
        .post(format!("http://{addr}/process"))
        .json(&user_request("what time is it [fault:hang]"))
        .send()
        .await
        .unwrap();
    let mut first = String::from_utf8(streaming.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    let mut blocking_body = user_request("what time is it [fault:hang]");
    blocking_body["stream"] = serde_json::json!(false);
    // Another session: a session runs one turn at a time.
    blocking_body["session_id"] = serde_json::json!("s2");
    let blocking = tokio::spawn(client.post(format!("http://{addr}/process")).json(&blocking_body).send());
    while stack.dashscope.request_count() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stop.send(()).unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(10), streaming.text()).await.expect("stream ended").unwrap();
    first.push_str(&rest);
    let events = parse_sse(&first);
    let last = events.last().unwrap();
    assert_eq!(last["object"], "response");
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["error"]["code"], "deadline_exceeded");
    assert!(last["error"]["message"].as_str().unwrap().contains("shutting down"), "{last}");

    let answer = blocking.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["error"]["code"], "deadline_exceeded");

    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server drained").unwrap().unwrap();
}
