//! The pure planning step: what a face parsed (an [`Ask`]) plus what the platform says about the
//! invocation becomes a [`Plan`] — who the user is, which model, which messages, whether tools are
//! fetched, until when. No I/O: unit tests call it without sockets.

use std::time::Duration;

use tokio::time::Instant;

use super::approvals::ApprovalInput;
use super::caller::UserClaim;
use crate::acs::Credentials;
use crate::agent::{Approvals, ToolApproval, Turn};
use crate::config::Config;
use crate::identity::Subject;
use crate::llm::{ChatMessage, Sampling};
use crate::rejection::Rejection;
use crate::sessions::{Record, check_session_id};
use crate::telemetry::Origin;
use fc_runtime::Drain;

/// What a wire face asks the pipeline for, in no face's vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    /// The conversation the face carried, oldest first, without the system prompt.
    pub(crate) messages: Vec<ChatMessage>,
    /// The model the request names (`None`: the configured one).
    pub(crate) model: Option<String>,
    pub(crate) sampling: Sampling,
    /// Who the caller says it is.
    pub(crate) user: UserClaim,
    /// The conversation this turn belongs to, as the face names it (`session_id`, a Responses
    /// `conversation`, an A2A `contextId`, an AG-UI `threadId`); `None` when the face names none.
    pub(crate) session_id: Option<String>,
    /// The request's new input as a session stores it, each message with its `id` (the client's, or a fresh
    /// one), so memory can skip what is already stored. Empty: the face keeps no ids (`messages` is stored).
    pub(crate) records: Vec<Record>,
    /// Whether the face can show an approval request, and the user's answers it carries.
    pub(crate) approval: ApprovalInput,
    /// The Responses face's stored responses: which one this turn continues, which id it answers as.
    pub(crate) thread: ResponseThread,
}

/// How a turn stands to the Responses API's stored responses (`previous_response_id`); empty on other faces.
/// A response id names the session it was issued in, so the session is known before the store is asked,
/// and the store's response index says whether this user was really issued that id there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResponseThread {
    /// The response id the answer carries: noted in the store's response index when the turn is saved.
    pub(crate) issues: Option<String>,
    /// The `previous_response_id` the request continues (its session is `Ask::session_id`); a response the
    /// index does not hold for this user is refused before the turn (`previous_response_not_found`).
    pub(crate) continues: Option<String>,
    /// The face made the session up because the request named none (OpenAI stores every response unless
    /// `store: false`): kept when the function keeps sessions for this caller, else the turn runs without
    /// one, as a request naming no session always did.
    pub(crate) implicit_session: bool,
}

/// What the platform (Function Compute) says about this invocation that the plan needs: its limits
/// and the function role FC lent it.
#[derive(Debug, Clone)]
pub(crate) struct Platform {
    /// The wire face and the caller's trace context: the parent of the turn's spans.
    pub(crate) origin: Origin,
    /// The function timeout in force.
    pub(crate) timeout: Duration,
    /// When the invocation must have answered.
    pub(crate) deadline: Instant,
    /// The function role's credentials FC sent with this invocation, if any.
    pub(crate) role: Option<Credentials>,
    /// When a shutdown in progress will cut the invocation off.
    pub(crate) drain: Drain,
}

/// A request resolved and validated before anything streams.
pub(crate) struct Plan {
    /// This turn's id (`turn_<uuid>`): what [`Pipeline::cancel`](super::Pipeline::cancel) stops and what
    /// its session's lease holds.
    pub(crate) turn_id: String,
    /// The conversation the turn belongs to (see [`Ask::session_id`]).
    pub(crate) session_id: Option<String>,
    /// See [`Ask::records`]; the session memory takes them.
    pub(crate) records: Vec<Record>,
    /// See [`Ask::approval`]; the session memory settles the answers against its waiting requests.
    pub(crate) approval: ApprovalInput,
    /// See [`Ask::thread`].
    pub(crate) thread: ResponseThread,
    pub(crate) subject: Subject,
    pub(crate) role: Option<Credentials>,
    pub(crate) turn: Turn,
    pub(crate) drain: Drain,
    /// See [`Platform::origin`].
    pub(crate) origin: Origin,
}

/// The parts of the configuration planning reads, taken once at start.
#[derive(Debug, Clone)]
pub(crate) struct Planner {
    system_prompt: String,
    max_iters: u32,
    allowed_models: Vec<String>,
    /// Without MCP servers no token is fetched, so an anonymous caller is fine.
    has_tools: bool,
    /// `TOOL_APPROVAL` and `TOOL_APPROVAL_TTL_SECS`.
    approval: ToolApproval,
    approval_ttl: Duration,
}

/// Most of a turn's time a turn may use: FC's clock started before the request reached us, and a turn cut at
/// its deadline still has to write its `failed` event, so it ends a little before the invocation must.
const MAX_RESERVE: Duration = Duration::from_secs(1);

impl Planner {
    pub(crate) fn new(config: &Config) -> Planner {
        Planner {
            system_prompt: config.agent.system_prompt.clone(),
            max_iters: config.agent.max_iters,
            allowed_models: config.model.allowed_models.clone(),
            has_tools: !config.mcp.servers.is_empty(),
            approval: config.agent.tool_approval.clone(),
            approval_ttl: config.agent.approval_ttl,
        }
    }

    /// The plan for `ask`, or the 4xx that refuses it.
    pub(crate) fn plan(&self, ask: Ask, invocation: Platform) -> Result<Plan, Rejection> {
        if let Some(session_id) = &ask.session_id {
            check_session_id(session_id).map_err(Rejection::invalid_request)?;
        }
        let subject = self.subject(ask.user)?;
        let model = self.pick_model(ask.model)?;
        let mut messages = Vec::with_capacity(ask.messages.len() + 1);
        messages.push(ChatMessage::System { content: self.system_prompt.clone() });
        messages.extend(ask.messages);
        let turn = Turn {
            messages,
            model,
            sampling: ask.sampling,
            max_iters: self.max_iters,
            deadline: turn_deadline(invocation.timeout, invocation.deadline),
            approvals: Approvals {
                policy: self.approval.clone(),
                requested: ask.approval.requested.clone(),
                // Until the session memory says it can keep a request (see `Pipeline::recall`).
                can_ask: ask.approval.can_ask,
                expires_at: crate::clock::unix_now().saturating_add(self.approval_ttl.as_secs()),
                approved: Vec::new(),
                can_question: ask.approval.can_question,
                resumed: Vec::new(),
            },
        };
        let records = match ask.records.is_empty() {
            false => ask.records,
            true => super::record::from_chat(&turn.messages[1..]),
        };
        Ok(Plan {
            turn_id: format!("turn_{}", crate::ids::uuid().simple()),
            session_id: ask.session_id,
            records,
            approval: ask.approval,
            thread: ask.thread,
            subject,
            role: invocation.role,
            turn,
            drain: invocation.drain,
            origin: invocation.origin,
        })
    }

    /// The user only matters for the WorkloadAccessToken, which is fetched for the MCP servers alone:
    /// without any, a caller who names nobody is served as the agent. A source that demands a credential
    /// (a JWT, a header) still refuses a caller without one.
    pub(crate) fn subject(&self, claim: UserClaim) -> Result<Subject, Rejection> {
        match claim {
            UserClaim::Jwt(jwt) => Ok(Subject::Jwt(jwt)),
            UserClaim::UserId(user) => Ok(Subject::UserId(user)),
            UserClaim::Agent => Ok(Subject::Agent),
            UserClaim::Unnamed { .. } if !self.has_tools => Ok(Subject::Agent),
            UserClaim::Unnamed { reason } => Err(Rejection::invalid_request(reason)),
            UserClaim::Unauthenticated { reason } => Err(Rejection::unauthenticated(reason)),
        }
    }

    /// The request's `model`, if the configuration allows callers to choose one.
    fn pick_model(&self, model: Option<String>) -> Result<Option<String>, Rejection> {
        let allowed = &self.allowed_models;
        match model.filter(|m| !m.is_empty()) {
            None => Ok(None),
            Some(model) if allowed.contains(&model) => Ok(Some(model)),
            Some(_) if allowed.is_empty() => Err(Rejection::invalid_request(
                "model: choosing a model is not enabled (DASHSCOPE_ALLOWED_MODELS is empty)",
            )),
            Some(_) => Err(Rejection::invalid_request(format!("model: must be one of {}", allowed.join(", ")))),
        }
    }
}

/// The invocation's deadline less a reserve of 5 % of its timeout (at most [`MAX_RESERVE`]).
fn turn_deadline(timeout: Duration, deadline: Instant) -> Instant {
    let reserve = (timeout / 20).min(MAX_RESERVE);
    deadline.checked_sub(reserve).unwrap_or(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn planner(allowed: &[&str], has_tools: bool) -> Planner {
        Planner {
            system_prompt: "be brief".into(),
            max_iters: 3,
            allowed_models: allowed.iter().map(|m| (*m).to_owned()).collect(),
            has_tools,
            approval: ToolApproval::None,
            approval_ttl: Duration::from_secs(60),
        }
    }

    fn ask(user: UserClaim, model: Option<&str>) -> Ask {
        Ask {
            messages: vec![ChatMessage::User { content: "hi".into() }],
            model: model.map(str::to_owned),
            sampling: Sampling::default(),
            user,
            session_id: None,
            records: Vec::new(),
            approval: ApprovalInput::default(),
            thread: ResponseThread::default(),
        }
    }

    fn invocation(timeout_secs: u64) -> Platform {
        let timeout = Duration::from_secs(timeout_secs);
        Platform {
            origin: Origin::local("process"),
            timeout,
            deadline: Instant::now() + timeout,
            role: None,
            drain: Drain::never(),
        }
    }

    fn unnamed() -> UserClaim {
        UserClaim::Unnamed { reason: "user_id: required".into() }
    }

    #[test]
    fn the_turn_is_the_system_prompt_then_the_conversation() {
        let plan = planner(&[], true).plan(ask(UserClaim::UserId("u1".into()), None), invocation(60)).unwrap();
        assert_eq!(plan.subject, Subject::UserId("u1".into()));
        assert_eq!(
            plan.turn.messages,
            vec![ChatMessage::System { content: "be brief".into() }, ChatMessage::User { content: "hi".into() }]
        );
        assert_eq!((plan.turn.model, plan.turn.max_iters), (None, 3));
    }

    #[test]
    fn the_turn_ends_before_the_invocation_must_answer() {
        let long = invocation(600);
        assert_eq!(long.deadline - turn_deadline(long.timeout, long.deadline), MAX_RESERVE);
        let short = invocation(1);
        assert_eq!(short.deadline - turn_deadline(short.timeout, short.deadline), Duration::from_millis(50));
    }

    #[test]
    fn a_model_is_chosen_only_from_the_allow_list() {
        let open = planner(&["qwen-plus", "qwen-max"], false);
        let plan = open.plan(ask(UserClaim::Agent, Some("qwen-plus")), invocation(60)).unwrap();
        assert_eq!(plan.turn.model.as_deref(), Some("qwen-plus"));
        let refused = open.plan(ask(UserClaim::Agent, Some("gpt-4")), invocation(60)).err().unwrap();
        assert_eq!((refused.status.as_u16(), refused.code), (400, "invalid_request"));
        assert!(refused.message.contains("qwen-plus, qwen-max"), "{}", refused.message);
        let closed = planner(&[], false).plan(ask(UserClaim::Agent, Some("qwen-plus")), invocation(60)).err().unwrap();
        assert!(closed.message.contains("DASHSCOPE_ALLOWED_MODELS"), "{}", closed.message);
        let empty = planner(&[], false).plan(ask(UserClaim::Agent, Some("")), invocation(60)).unwrap();
        assert_eq!(empty.turn.model, None);
    }

    #[test]
    fn an_unnamed_caller_is_the_agent_only_when_no_token_is_needed() {
        let without_tools = planner(&[], false).plan(ask(unnamed(), None), invocation(60)).unwrap();
        assert_eq!(without_tools.subject, Subject::Agent);
        let with_tools = planner(&[], true).plan(ask(unnamed(), None), invocation(60)).err().unwrap();
        assert_eq!((with_tools.status.as_u16(), with_tools.code), (400, "invalid_request"));
    }

    #[test]
    fn a_missing_required_credential_is_refused_with_or_without_tools() {
        for has_tools in [false, true] {
            let claim = UserClaim::Unauthenticated { reason: "Authorization: Bearer required".into() };
            let refused = planner(&[], has_tools).plan(ask(claim, None), invocation(60)).err().unwrap();
            assert_eq!((refused.status.as_u16(), refused.code), (401, "unauthenticated"));
        }
        let jwt = planner(&[], true).plan(ask(UserClaim::Jwt(Secret::new("eyJ")), None), invocation(60)).unwrap();
        assert_eq!(jwt.subject, Subject::Jwt(Secret::new("eyJ")));
    }
}
