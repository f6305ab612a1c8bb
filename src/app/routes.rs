//! The route table: the one place a route is written. Dispatch, the `405` with its `Allow` header and the
//! `GET /` index are all read from [`ROUTES`]; a route added here is served, refused with the right
//! `Allow` and listed, or it does not exist.

use http::Method;
use serde_json::{Map, Value};

/// What serves a route: a wire face (its turn through `App::serve`) or a plain handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// An event invocation (FC marks it; its path is FC's, not the caller's).
    Event,
    Process,
    /// `POST /process/task`: a background AgentScope task.
    ProcessTask,
    /// `GET /process/task/{task_id}`: its state, or its stream.
    ProcessTaskStatus,
    A2a,
    AgentCard,
    Agui,
    Responses,
    /// A background response: `GET …/responses/{id}`, `POST …/responses/{id}/cancel`.
    Response,
    Chat,
    Models,
    Session,
    Stop,
    OAuth2Callback,
    OAuth2Complete,
    Health,
    Index,
}

/// The error body a route's refusals take before its face reads anything (a 405).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `{"error":{"code","message"}}`.
    Plain,
    /// OpenAI's `{"error":{"message","type","param","code"}}`: the SDK parses the body of any error status.
    OpenAi,
}

/// One row of the table.
#[derive(Debug)]
pub(super) struct Route {
    /// Its key in the index's `endpoints`.
    pub(super) name: &'static str,
    /// The path without a trailing slash (one is accepted); a last segment `{name}` matches any non-empty
    /// rest of the path, handed to the endpoint.
    pub(super) path: &'static str,
    /// Another path for the same thing (an older spelling clients still ask for).
    pub(super) alias: Option<&'static str>,
    /// The methods served, as `Allow` lists them.
    pub(super) methods: &'static [Method],
    /// `HEAD` is answered as `GET` (only where a `GET` reads nothing but the function's own state).
    pub(super) head: bool,
    pub(super) endpoint: Endpoint,
    pub(super) shape: Shape,
    /// A note after the route in the index.
    pub(super) note: Option<&'static str>,
    /// Reached by FC's event mark, not by method and path (the index still lists it).
    pub(super) event: bool,
}

/// A row is its name (the table test holds names unique).
impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        self.name == other.name
    }
}

impl Eq for Route {}

const fn route(name: &'static str, methods: &'static [Method], path: &'static str, endpoint: Endpoint) -> Route {
    Route { name, path, alias: None, methods, head: false, endpoint, shape: Shape::Plain, note: None, event: false }
}

const POST: &[Method] = &[Method::POST];
const GET: &[Method] = &[Method::GET];

/// Every route of the function. The OpenAI faces live under `/compatible-mode/v1`:
/// `OpenAI(base_url=".../compatible-mode/v1")` appends `/responses` and so on.
pub(super) static ROUTES: &[Route] = &[
    Route {
        note: Some("an event invocation: x-fc-control-path: /invoke"),
        event: true,
        ..route("events", POST, "/invoke", Endpoint::Event)
    },
    route("process", POST, "/process", Endpoint::Process),
    Route {
        note: Some("a background task (AgentScope runtime 1.1): answered at once with its task_id"),
        ..route("process_task", POST, "/process/task", Endpoint::ProcessTask)
    },
    Route {
        note: Some("the task's state; with Accept: text/event-stream or ?stream=true its /process stream"),
        ..route("process_task_status", GET, "/process/task/{task_id}", Endpoint::ProcessTaskStatus)
    },
    route("a2a", POST, "/a2a", Endpoint::A2a),
    Route {
        alias: Some("/.well-known/agent.json"),
        head: true,
        note: Some("A2A agent card; also /.well-known/agent.json"),
        ..route("agent_card", GET, "/.well-known/agent-card.json", Endpoint::AgentCard)
    },
    route("ag-ui", POST, "/ag-ui", Endpoint::Agui),
    Route { shape: Shape::OpenAi, ..route("responses", POST, "/compatible-mode/v1/responses", Endpoint::Responses) },
    Route {
        shape: Shape::OpenAi,
        note: Some("a background response: GET its state or ?stream=true&starting_after=N, POST {id}/cancel"),
        ..route(
            "response",
            &[Method::GET, Method::POST],
            "/compatible-mode/v1/responses/{response_id}",
            Endpoint::Response,
        )
    },
    Route {
        shape: Shape::OpenAi,
        ..route("chat_completions", POST, "/compatible-mode/v1/chat/completions", Endpoint::Chat)
    },
    Route { shape: Shape::OpenAi, head: true, ..route("models", GET, "/compatible-mode/v1/models", Endpoint::Models) },
    route("sessions", &[Method::GET, Method::DELETE], "/sessions/{session_id}", Endpoint::Session),
    Route {
        note: Some("stop the turn running in the caller's session, on whichever instance (AgentScope's interrupt)"),
        ..route("stop", POST, "/stop", Endpoint::Stop)
    },
    Route {
        note: Some("the OAuth2 consent's return URL"),
        ..route("oauth2_callback", GET, crate::config::CALLBACK_PATH, Endpoint::OAuth2Callback)
    },
    Route {
        note: Some("the signed-in user completes their consent: their JWT, session_uri and state"),
        ..route("oauth2_complete", POST, "/oauth2/complete", Endpoint::OAuth2Complete)
    },
    Route { head: true, ..route("health", GET, "/health", Endpoint::Health) },
    Route { head: true, ..route("index", GET, "/", Endpoint::Index) },
];

/// What the table says about a request's method and path.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// Served by `route`; `param` is the path's `{name}` segment, for a route that has one.
    Served { route: &'static Route, param: Option<String> },
    /// The path exists, the method does not: a 405 naming `route.allow()`.
    WrongMethod(&'static Route),
    /// No route has this path: a 404.
    Nowhere,
}

/// The route of an HTTP request (event invocations are routed by FC's mark, before this).
pub(super) fn find(method: &Method, path: &str) -> Found {
    let path = path.trim_end_matches('/');
    for route in ROUTES.iter().filter(|route| !route.event) {
        let Some(param) = route.matches(path) else { continue };
        return match route.serves(method) {
            true => Found::Served { route, param },
            false => Found::WrongMethod(route),
        };
    }
    Found::Nowhere
}

/// The route of an event invocation.
pub(super) fn event_route() -> &'static Route {
    ROUTES.iter().find(|route| route.event).unwrap_or(&ROUTES[0])
}

impl Route {
    /// `Some(param)` when `path` (no trailing slash) is this route's.
    fn matches(&self, path: &str) -> Option<Option<String>> {
        if let Some((prefix, _)) = self.path.split_once('{') {
            return path.strip_prefix(prefix).filter(|rest| !rest.is_empty()).map(|rest| Some(rest.to_owned()));
        }
        let own = |p: &str| p.trim_end_matches('/') == path;
        (own(self.path) || self.alias.is_some_and(own)).then_some(None)
    }

    fn serves(&self, method: &Method) -> bool {
        self.methods.contains(method) || (self.head && method == Method::HEAD)
    }

    /// The `Allow` header of a 405 on this route.
    pub(super) fn allow(&self) -> String {
        self.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }

    /// The route's line in the index: `GET or DELETE /sessions/{session_id}`, and its note.
    fn line(&self) -> String {
        let methods = self.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(" or ");
        match self.note {
            Some(note) => format!("{methods} {} ({note})", self.path),
            None => format!("{methods} {}", self.path),
        }
    }
}

/// `GET /`: the service, the agent and every route of the table.
pub(super) fn index(agent_name: &str) -> String {
    let endpoints: Map<String, Value> =
        ROUTES.iter().map(|route| (route.name.to_owned(), Value::String(route.line()))).collect();
    serde_json::json!({
        "service": env!("CARGO_PKG_NAME"),
        "agent": agent_name,
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": endpoints,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_are_each_written_once() {
        let mut names: Vec<&str> = ROUTES.iter().map(|r| r.name).collect();
        let mut paths: Vec<&str> = ROUTES.iter().flat_map(|r| std::iter::once(r.path).chain(r.alias)).collect();
        let (all_names, all_paths) = (names.len(), paths.len());
        names.sort_unstable();
        names.dedup();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!((names.len(), paths.len()), (all_names, all_paths));
        assert_eq!(ROUTES.iter().filter(|r| r.event).count(), 1);
        assert_eq!(event_route().endpoint, Endpoint::Event);
    }

    #[test]
    fn every_route_is_found_by_its_path_and_refuses_other_methods() {
        for route in ROUTES.iter().filter(|r| !r.event) {
            let path = route.path.replace("{session_id}", "s1");
            for method in route.methods {
                assert!(matches!(find(method, &path), Found::Served { route: r, .. } if std::ptr::eq(r, route)));
                assert!(matches!(find(method, &format!("{path}/")), Found::Served { .. }), "{path}/");
            }
            assert_eq!(find(&Method::PATCH, &path), Found::WrongMethod(route));
        }
        assert_eq!(find(&Method::POST, "/no-such-path"), Found::Nowhere);
        assert_eq!(find(&Method::POST, "/invoke"), Found::Nowhere, "an event is FC's mark, not a path");
        assert_eq!(find(&Method::GET, "/sessions/"), Found::Nowhere);
    }

    #[test]
    fn the_session_route_hands_over_its_id() {
        let Found::Served { route, param } = find(&Method::DELETE, "/sessions/abc") else { panic!() };
        assert_eq!((route.endpoint, param.as_deref()), (Endpoint::Session, Some("abc")));
        assert_eq!(route.allow(), "GET, DELETE");
        assert_eq!(route.line(), "GET or DELETE /sessions/{session_id}");
    }

    #[test]
    fn the_index_lists_every_row_and_nothing_else() {
        let index: Value = serde_json::from_str(&index("Jarvis")).unwrap();
        let listed: Vec<&str> = index["endpoints"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut names: Vec<&str> = ROUTES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        assert_eq!(listed, names);
        assert_eq!(index["endpoints"]["process"], "POST /process");
    }

    #[test]
    fn head_is_answered_only_where_get_reads_nothing_but_state() {
        assert!(matches!(find(&Method::HEAD, "/health"), Found::Served { .. }));
        assert!(matches!(find(&Method::HEAD, "/oauth2/callback"), Found::WrongMethod(_)));
        assert!(matches!(find(&Method::HEAD, "/sessions/s1"), Found::WrongMethod(_)));
    }
}
