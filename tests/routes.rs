//! The route table from outside, over a socket: the index lists exactly the function's routes, every route
//! answers its own methods and refuses every other with a 405 whose `Allow` names them (in the route's
//! error shape: OpenAI's under `/compatible-mode/v1`), and a path no route has is a 404.

mod common;

use common::Function;
use serde_json::Value;

/// No MCP server: no token is needed, so nothing here reaches Agent Identity.
const NO_MCP: (&str, &str) = ("AI_GATEWAY_MCP_SERVER", "");

/// Every route of the function as `GET /` lists it. A route added to the table is added here, so that a
/// route lost from the table (or listed without being served) fails this file.
const ROUTES: &[(&str, &str)] = &[
    ("events", "POST /invoke (an event invocation: x-fc-control-path: /invoke)"),
    ("process", "POST /process"),
    (
        "process_task",
        "POST /process/task (a background task (AgentScope runtime 1.1): answered at once with its task_id)",
    ),
    (
        "process_task_status",
        "GET /process/task/{task_id} (the task's state; with Accept: text/event-stream or ?stream=true its /process stream)",
    ),
    ("a2a", "POST /a2a"),
    ("agent_card", "GET /.well-known/agent-card.json (A2A agent card; also /.well-known/agent.json)"),
    ("ag-ui", "POST /ag-ui"),
    ("responses", "POST /compatible-mode/v1/responses"),
    (
        "response",
        "GET or POST /compatible-mode/v1/responses/{response_id} (a background response: GET its state or ?stream=true&starting_after=N, POST {id}/cancel)",
    ),
    ("chat_completions", "POST /compatible-mode/v1/chat/completions"),
    ("models", "GET /compatible-mode/v1/models"),
    ("sessions", "GET or DELETE /sessions/{session_id}"),
    (
        "stop",
        "POST /stop (stop the turn running in the caller's session, on whichever instance (AgentScope's interrupt))",
    ),
    ("oauth2_callback", "GET /oauth2/callback (the OAuth2 consent's return URL)"),
    (
        "oauth2_complete",
        "POST /oauth2/complete (the signed-in user completes their consent: their JWT, session_uri and state)",
    ),
    ("health", "GET /health"),
    ("index", "GET /"),
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// `GET or DELETE /sessions/{session_id} (…)` → (["GET", "DELETE"], "/sessions/s1").
fn methods_and_path(line: &str) -> (Vec<&str>, String) {
    let line = line.split(" (").next().unwrap();
    let (methods, path) = line.rsplit_once(' ').unwrap();
    let path = path.replace("{session_id}", "s1").replace("{task_id}", "task_1").replace("{response_id}", "resp_1");
    (methods.split(" or ").collect(), path)
}

#[tokio::test]
async fn the_index_lists_exactly_the_routes() {
    let f = Function::start(&[NO_MCP, ("AGENT_NAME", "Jarvis")]).await;
    let index = f.send("GET", "/", &[], "").await.json();
    let listed: Vec<(String, String)> = index["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, line)| (name.clone(), line.as_str().unwrap().to_owned()))
        .collect();
    let mut expected: Vec<(String, String)> = ROUTES.iter().map(|(n, l)| ((*n).to_owned(), (*l).to_owned())).collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    expected.sort();
    assert_eq!(listed_sorted, expected);
    assert_eq!((index["agent"].as_str(), index["service"].as_str()), (Some("Jarvis"), Some("fc-identity-agent")));
}

#[tokio::test]
async fn every_other_method_is_a_405_naming_the_routes_methods() {
    let f = Function::start(&[NO_MCP]).await;
    for (name, line) in ROUTES.iter().filter(|(name, _)| *name != "events") {
        let (allowed, path) = methods_and_path(line);
        for method in METHODS {
            let get_like = *method == "HEAD" && allowed.contains(&"GET");
            if allowed.contains(method) || get_like {
                continue;
            }
            let answer = f.send(method, &path, &[], "").await;
            assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text);
            assert_eq!(answer.header("allow"), Some(allowed.join(", ").as_str()), "{method} {path}");
            if *method == "HEAD" {
                continue; // no body to read
            }
            assert_eq!(answer.error_code(), "method_not_allowed", "{method} {path}");
            let openai = path.starts_with("/compatible-mode/v1/");
            let kind = answer.json()["error"]["type"].clone();
            assert_eq!(kind.is_string(), openai, "{name}: OpenAI's error shape exactly under /compatible-mode/v1");
        }
    }
}

#[tokio::test]
async fn every_route_answers_its_own_methods_with_or_without_a_trailing_slash() {
    let f = Function::start(&[NO_MCP]).await;
    for (name, line) in ROUTES.iter().filter(|(name, _)| *name != "events") {
        let (allowed, path) = methods_and_path(line);
        for method in &allowed {
            for path in [path.clone(), format!("{path}/")] {
                let answer = f.send(method, &path, &[], "").await;
                assert_ne!(answer.status, 405, "{method} {path}: {}", answer.text);
                // The consent routes and the sessions work only when configured, a background turn only
                // when there is one; else their 404 says why.
                if answer.status == 404 {
                    assert!(
                        matches!(
                            *name,
                            "oauth2_callback" | "oauth2_complete" | "sessions" | "response" | "process_task_status"
                        ),
                        "{method} {path}: {}",
                        answer.text
                    );
                    let message = answer.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
                    assert!(!message.contains("no route"), "{method} {path}: {message}");
                }
            }
        }
    }
    let alias = f.send("GET", "/.well-known/agent.json", &[], "").await;
    assert_eq!(alias.status, 200, "{}", alias.text);
    assert_eq!(alias.json(), f.send("GET", "/.well-known/agent-card.json", &[], "").await.json());
}

#[tokio::test]
async fn a_path_no_route_has_is_a_404_naming_it() {
    let f = Function::start(&[NO_MCP]).await;
    for path in ["/nope", "/process/more", "/sessions", "/sessions/", "/compatible-mode/v1", "/invoke", "/a2a2"] {
        for method in ["GET", "POST"] {
            let answer = f.send(method, path, &[], "").await;
            assert_eq!((answer.status, answer.error_code()), (404, "not_found".to_owned()), "{method} {path}");
            let message: Value = answer.json()["error"]["message"].clone();
            assert!(message.as_str().unwrap().contains(path.trim_end_matches('/')), "{method} {path}: {message}");
        }
    }
}

/// Every face refuses a body nested past the reader's bound, and a wrong type deep inside, before any turn
/// and in its own error shape, naming the path.
#[tokio::test]
async fn every_face_refuses_deep_bodies_in_its_own_shape_naming_the_path() {
    let f = Function::start(&[NO_MCP]).await;
    let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
    // (path, extra headers, a body whose deep field has the wrong type, that field's path)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], String, &'a str);
    let faces: &[Case] = &[
        (
            "/process",
            &[],
            r#"{"input":[{"role":"user","content":[{"type":"text","text":5}]}]}"#.into(),
            "input[0].content[0].text",
        ),
        (
            "/ag-ui",
            &[],
            // A text part of another type is skipped (AG-UI's parts are read leniently); a tool call is not.
            r#"{"threadId":"t","runId":"r","messages":[{"id":"u","role":"user","content":"hi"},{"id":"a","role":"assistant","toolCalls":[{"id":"c","type":"function","function":{"name":5,"arguments":"{}"}}]}]}"#.into(),
            "messages[1].toolCalls[0].function.name",
        ),
        (
            "/compatible-mode/v1/responses",
            &[],
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":5}]}]}"#.into(),
            "input[0].content[0].text",
        ),
        (
            "/compatible-mode/v1/chat/completions",
            &[],
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}"#.into(),
            "messages[0].content[0].text",
        ),
        (
            "/a2a",
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","parts":[{"kind":"text","text":5}]}}}"#.into(),
            "params.message.parts",
        ),
        (
            "/a2a",
            &[("a2a-version", "1.0")],
            r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"role":"ROLE_USER","parts":[{"text":5}]}}}"#.into(),
            "params.message.parts",
        ),
    ];
    for (path, headers, wrong_type, field) in faces {
        let too_deep = wrong_type.replacen(":5", &format!(":{deep}"), 1);
        for (body, names) in [(wrong_type.clone(), *field), (too_deep, "body")] {
            let answer = f.send("POST", path, headers, body).await;
            let json = answer.json();
            let message = if *path == "/a2a" {
                // JSON-RPC: HTTP 200, the error in the body, the request's id echoed.
                assert_eq!(answer.status, 200, "{path}: {}", answer.text);
                assert!(json["error"]["code"].as_i64().unwrap() <= -32600, "{path}: {json}");
                json["error"]["message"].as_str().unwrap().to_owned()
            } else {
                assert_eq!((answer.status, answer.error_code()), (400, "invalid_request".into()), "{path}");
                if path.starts_with("/compatible-mode") {
                    assert_eq!(json["error"]["type"], "invalid_request_error", "{path}: OpenAI's shape");
                }
                json["error"]["message"].as_str().unwrap().to_owned()
            };
            assert!(message.starts_with(&format!("{names}: ")), "{path}: {message:?} should name {names}");
        }
    }
    assert_eq!(f.stack.dashscope.request_count(), 0, "no turn ran");
}
