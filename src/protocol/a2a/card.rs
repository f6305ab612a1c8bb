//! The agent card (`/.well-known/agent-card.json`, and the legacy `/.well-known/agent.json`): one
//! document for both client lines — the 1.0 card (`supportedInterfaces`, 1.0 first) merged with the 0.3
//! fields (`url`, `preferredTransport`, `protocolVersion`), as the 1.x SDK serves it; the 0.3 SDK ignores
//! the keys it does not know, and the 1.x SDK maps the 0.3 `securitySchemes`/`security` itself.

use http::HeaderMap;
use http::uri::Authority;
use serde_json::{Value, json};

use crate::config::UserSource;
use crate::upstream::Endpoint;

/// What the card says that comes from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct CardSettings {
    pub(crate) name: String,
    /// `A2A_PUBLIC_URL`.
    pub(crate) public_url: Option<Endpoint>,
    /// A bearer security scheme is advertised when the user must come from a JWT.
    pub(crate) user_source: UserSource,
}

/// The card for a request that arrived with `headers`.
pub(crate) fn agent_card(settings: &CardSettings, headers: &HeaderMap) -> Value {
    let url = match &settings.public_url {
        Some(url) => url.as_str().to_owned(),
        None => format!("{}/a2a", origin(headers)),
    };
    let name = &settings.name;
    let mut card = json!({
        "name": name,
        "description": format!(
            "{name}: a DashScope model with the MCP tools its gateway grants the calling user, \
             on Alibaba Cloud Function Compute"
        ),
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0" },
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3" },
        ],
        "url": url,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
        "capabilities": { "streaming": true, "pushNotifications": false, "stateTransitionHistory": false },
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{
            "id": "dialog",
            "name": "dialog",
            "description": "Answers a question in one turn, calling the tools it is allowed to use",
            "tags": ["chat", "tools"],
        }],
    });
    if settings.user_source == UserSource::Jwt {
        card["securitySchemes"] = json!({ "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } });
        card["security"] = json!([{ "bearer": [] }]);
    }
    card
}

/// `scheme://host` as the caller reached us: behind the FC trigger (and most proxies) `X-Forwarded-Proto`
/// and `X-Forwarded-Host`, else `Host`. A value that is not a plain authority or scheme is ignored, so a
/// forged header cannot put a path or a script into the card.
fn origin(headers: &HeaderMap) -> String {
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next()).map(str::trim);
    let host = [header("x-forwarded-host"), header("host")]
        .into_iter()
        .flatten()
        .find(|h| !h.is_empty() && h.parse::<Authority>().is_ok_and(|a| a.as_str() == *h && !h.contains('@')))
        .unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto").map(str::to_ascii_lowercase).as_deref() {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn settings(public_url: Option<&str>, user_source: UserSource) -> CardSettings {
        CardSettings { name: "Friday".into(), public_url: public_url.map(|u| Endpoint::parse(u).unwrap()), user_source }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_url_is_where_the_caller_reached_us() {
        let card = agent_card(&settings(None, UserSource::Auto), &headers(&[("host", "127.0.0.1:9000")]));
        assert_eq!(card["url"], "http://127.0.0.1:9000/a2a");
        assert_eq!(card["supportedInterfaces"][0]["url"], "http://127.0.0.1:9000/a2a");
        let behind_fc =
            headers(&[("host", "10.0.0.1"), ("x-forwarded-host", "a.fcapp.run"), ("x-forwarded-proto", "https")]);
        assert_eq!(agent_card(&settings(None, UserSource::Auto), &behind_fc)["url"], "https://a.fcapp.run/a2a");
        let forged = headers(&[("host", "evil.example/<script>")]);
        assert_eq!(agent_card(&settings(None, UserSource::Auto), &forged)["url"], "http://localhost/a2a");
        let fixed = settings(Some("https://agent.example.com/a2a"), UserSource::Auto);
        assert_eq!(agent_card(&fixed, &behind_fc)["url"], "https://agent.example.com/a2a");
    }

    #[test]
    fn the_card_tells_the_truth_about_streaming_and_auth() {
        let open = agent_card(&settings(None, UserSource::Auto), &HeaderMap::new());
        assert_eq!((open["name"].clone(), open["capabilities"]["streaming"].clone()), (json!("Friday"), json!(true)));
        assert!(open.get("securitySchemes").is_none());
        let jwt = agent_card(&settings(None, UserSource::Jwt), &HeaderMap::new());
        assert_eq!(jwt["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(jwt["security"], json!([{"bearer": []}]));
    }
}
