//! The function served on a loopback port against the stand-in stack, for integration tests.
#![allow(dead_code)]

pub mod json_order;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use devstack::agent_identity::StandInOptions as IdentityKeys;
use devstack::{Stack, WORKLOAD_IDENTITY};
use fc_identity_agent::acs::Credentials;
use fc_identity_agent::app::App;
use fc_identity_agent::config::{Config, ConfigError};
use serde_json::Value;
use tokio::sync::oneshot;

/// The configuration the function reads from the stack's environment with `overrides` on top (an empty
/// value unsets a variable): what the binary would see, without a process.
pub fn config(stack: &Stack, overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = stack.env_with(overrides);
    Config::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

/// The Agent Identity stand-in's default long-term AccessKey, as the function's credentials.
pub fn stand_in_access_key() -> Credentials {
    Credentials::access_key(IdentityKeys::AK_ID, IdentityKeys::AK_SECRET)
}

/// The Agent Identity stand-in's default STS triple, as the function's credentials.
pub fn stand_in_sts() -> Credentials {
    Credentials::sts(IdentityKeys::STS_ID, IdentityKeys::STS_SECRET, IdentityKeys::STS_TOKEN)
}

pub struct Function {
    pub stack: Stack,
    pub app: Arc<App>,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Function {
    /// The stack plus the function configured for it (`overrides` on top of the stack's environment).
    pub async fn start(overrides: &[(&str, &str)]) -> Function {
        let stack = Stack::start().await.expect("stand-ins start");
        Function::with_stack(stack, overrides).await
    }

    pub async fn with_stack(stack: Stack, overrides: &[(&str, &str)]) -> Function {
        // Bound first, so the function knows its own URL (`AGENT_PUBLIC_URL`: the OAuth2 return URL's base).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let public_url = format!("http://{addr}");
        let mut overrides = overrides.to_vec();
        if !overrides.iter().any(|(name, _)| *name == "AGENT_PUBLIC_URL") {
            overrides.push(("AGENT_PUBLIC_URL", &public_url));
        }
        let config = config(&stack, &overrides).expect("valid config");
        let app = App::new(config).expect("app builds");
        let (stop, stopped) = oneshot::channel::<()>();
        let options = app.run_options();
        let handler = app.handler();
        tokio::spawn(async move {
            let _ = fc_runtime::Runtime::new(handler)
                .options(options)
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Function { stack, app, addr, stop: Some(stop) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn client() -> reqwest::Client {
        fc_identity_agent::upstream::client_builder().build().unwrap()
    }

    /// POST /process and collect every SSE event as JSON.
    pub async fn process(&self, body: &Value) -> Vec<Value> {
        let response = Function::client().post(self.url("/process")).json(body).send().await.unwrap();
        assert_eq!(response.status(), 200, "process answered {}", response.status());
        let text = response.text().await.unwrap();
        parse_sse(&text)
    }
}

/// One HTTP answer, read to its end.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn events(&self) -> Vec<Value> {
        parse_sse(&self.text)
    }

    /// The `{"error":{code,message}}` body's code, after checking the body has that shape.
    pub fn error_code(&self) -> String {
        let body = self.json();
        assert!(body["error"]["message"].is_string(), "no error message in {body}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.text);
        body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}")).to_owned()
    }
}

impl Function {
    /// A request with exactly these headers (no Content-Type unless given) and body.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = Function::client().request(method, self.url(path)).body(body.into());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer { status, headers, text }
    }

    /// POST /process with `body` as JSON text and the given headers.
    pub async fn post_process(&self, headers: &[(&str, &str)], body: &Value) -> Answer {
        self.send("POST", "/process", headers, body.to_string()).await
    }

    /// An event invocation as FC sends it: `POST /invoke`, `x-fc-control-path: /invoke`, the request id.
    pub async fn invoke(&self, request_id: &str, payload: impl Into<Vec<u8>>) -> Answer {
        let headers = [("x-fc-control-path", "/invoke"), ("x-fc-request-id", request_id)];
        self.send("POST", "/invoke", &headers, payload).await
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Splits `data: <json>\n\n` frames.
pub fn parse_sse(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let data = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("not an SSE data frame: {frame:?}"));
            serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data}"))
        })
        .collect()
}

/// The sample's request body with one user text.
pub fn user_request(text: &str) -> Value {
    serde_json::json!({
        "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": text}]}],
        "session_id": "s1",
        "user_id": "u1",
    })
}

/// `(action, params)` of every Agent Identity request, with the signature-related parameters left out.
pub fn identity_calls(f: &Function) -> Vec<(String, BTreeMap<String, String>)> {
    f.stack
        .identity
        .requests()
        .into_iter()
        .map(|r| {
            let params = r
                .params
                .into_iter()
                .filter(|(k, _)| ["WorkloadIdentityName", "UserId", "UserToken"].contains(&k.as_str()))
                .collect();
            (r.action, params)
        })
        .collect()
}

/// Expected identity parameters: `pairs` plus the stack's workload identity.
pub fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    all.insert("WorkloadIdentityName".into(), WORKLOAD_IDENTITY.into());
    all
}
