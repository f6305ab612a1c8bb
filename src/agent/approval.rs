//! Which tool calls wait for the user's approval (`TOOL_APPROVAL`), and what a turn does with one.
//!
//! The function acts *as the user* (their WorkloadAccessToken, their OAuth2 tokens), so a deployment can
//! say which tools must not run on the model's word alone. Such a call is not made: the turn reports an
//! [`super::TurnEvent::ApprovalRequested`] and ends; the next invocation in the same session carries the
//! user's answer, and the call runs exactly as it was stored (see `pipeline::approvals`). A face with no
//! one to ask (Chat Completions, events) or a turn without a session to keep the request in gets the call
//! declined instead, and the model is told why, so it can tell the user.

use std::time::Duration;

use crate::llm::ToolCall;

/// How long an approval request may be answered (`TOOL_APPROVAL_TTL_SECS` overrides).
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(15 * 60);
/// Patterns `TOOL_APPROVAL` may list: a bound on per-call matching work.
pub(crate) const MAX_PATTERNS: usize = 64;

/// `TOOL_APPROVAL`: `none` (default), `all`, or comma-separated tool names where `*` matches any run of
/// characters (`delete_*`, `*_send`). Names are the ones the model sees (a name two servers share carries
/// its server's prefix there, and a pattern can name either).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolApproval {
    #[default]
    None,
    All,
    Listed(Vec<String>),
}

impl ToolApproval {
    /// Parses the variable's value; the error says what is wrong (config.rs names the variable).
    pub fn parse(raw: &str) -> Result<ToolApproval, String> {
        match raw.trim() {
            "" | "none" => return Ok(ToolApproval::None),
            "all" | "*" => return Ok(ToolApproval::All),
            _ => {}
        }
        let patterns: Vec<String> =
            raw.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
        if patterns.len() > MAX_PATTERNS {
            return Err(format!("at most {MAX_PATTERNS} tool names or patterns"));
        }
        if let Some(bad) = patterns.iter().find(|p| p.chars().any(|c| c.is_whitespace() || c.is_control())) {
            return Err(format!("{bad:?} is not a tool name or pattern (no spaces)"));
        }
        Ok(ToolApproval::Listed(patterns))
    }

    pub fn is_off(&self) -> bool {
        matches!(self, ToolApproval::None)
    }

    /// Whether a call to `tool` waits for the user.
    pub fn requires(&self, tool: &str) -> bool {
        match self {
            ToolApproval::None => false,
            ToolApproval::All => true,
            ToolApproval::Listed(patterns) => patterns.iter().any(|p| glob(p, tool)),
        }
    }
}

/// A Responses request's `mcp` tool's `require_approval` (OpenAI's `McpRequireApproval`), for the server
/// it names by `server_label`. It can only add to `TOOL_APPROVAL`: a call waits when either says so, so a
/// client cannot loosen what the operator requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequireApproval {
    /// `"always"`, and a tool without `require_approval` (OpenAI asks before any call by default).
    Always,
    /// `"never"`.
    Never,
    /// `{"always": {"tool_names": […]}, "never": {"tool_names": […]}}`: the named tools as listed; a tool
    /// neither list names waits, as by default.
    Filter { always: Vec<String>, never: Vec<String> },
}

impl RequireApproval {
    /// Whether the request asks for approval before `tool` runs.
    pub fn requires(&self, tool: &str) -> bool {
        match self {
            RequireApproval::Always => true,
            RequireApproval::Never => false,
            RequireApproval::Filter { always, never } => {
                always.iter().any(|t| t == tool) || !never.iter().any(|t| t == tool)
            }
        }
    }
}

/// What a turn may do with a call that needs approval.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    pub policy: ToolApproval,
    /// The request's own rules, by server label (Responses `mcp` tools); empty on other faces.
    pub requested: Vec<(String, RequireApproval)>,
    /// The face can show a request and the session can keep it: pause. Otherwise: decline.
    pub can_ask: bool,
    /// Unix seconds until which a request made now may be answered.
    pub expires_at: u64,
    /// Calls the user approved in this invocation: run first, exactly as stored.
    pub approved: Vec<ToolCall>,
}

impl Approvals {
    /// Whether a call to `tool` (the name the model sees) of the server labelled `server` waits for the
    /// user: `TOOL_APPROVAL` says so, or the request's rule for that server does.
    /// `server` is asked only when the request has rules (a turn that needs no approval pays nothing).
    pub fn requires<'a>(&self, tool: &str, server: impl FnOnce() -> Option<&'a str>) -> bool {
        if self.policy.requires(tool) {
            return true;
        }
        if self.requested.is_empty() {
            return false;
        }
        server().is_some_and(|server| self.requested.iter().any(|(label, rule)| label == server && rule.requires(tool)))
    }
}

/// What the model is told when a call needing approval cannot be asked about.
pub fn cannot_ask_output(tool: &str) -> String {
    format!(
        "The call to {tool} was not made: it needs the user's approval, and this conversation cannot ask for it \
         (the client has no way to show an approval request, or there is no session to keep it in). Tell the \
         user what you wanted to do, so they can do it another way."
    )
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut tail) = name.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_reads_none_all_and_patterns() {
        assert_eq!(ToolApproval::parse("none"), Ok(ToolApproval::None));
        assert_eq!(ToolApproval::parse(" all "), Ok(ToolApproval::All));
        let listed = ToolApproval::parse("send_mail, delete_*,*_transfer ,").unwrap();
        assert!(listed.requires("send_mail") && listed.requires("delete_bucket") && listed.requires("bank_transfer"));
        assert!(!listed.requires("send_mail2") && !listed.requires("getutctime") && !listed.requires("delete"));
        assert!(ToolApproval::parse("a b").is_err());
        assert!(ToolApproval::parse(&vec!["x"; MAX_PATTERNS + 1].join(",")).is_err());
        assert!(!ToolApproval::None.requires("x") && ToolApproval::All.requires("x"));
    }

    #[test]
    fn a_request_adds_to_the_operators_policy_and_never_loosens_it() {
        let filter = RequireApproval::Filter { always: vec!["send".into()], never: vec!["read".into(), "send".into()] };
        assert!(filter.requires("send") && !filter.requires("read") && filter.requires("other"));
        assert!(RequireApproval::Always.requires("x") && !RequireApproval::Never.requires("x"));
        let approvals = Approvals {
            policy: ToolApproval::parse("transfer").unwrap(),
            requested: vec![("bank".into(), RequireApproval::Never), ("mail".into(), filter)],
            ..Approvals::default()
        };
        let on = |server: &'static str| move || Some(server);
        assert!(approvals.requires("transfer", on("bank")), "never cannot loosen TOOL_APPROVAL");
        assert!(!approvals.requires("balance", on("bank")));
        assert!(approvals.requires("send", on("mail")) && approvals.requires("other", on("mail")));
        assert!(!approvals.requires("read", on("mail")));
        assert!(!approvals.requires("other", on("time")) && !approvals.requires("other", || None), "other servers");
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("a*c", "abc") && glob("a*c", "ac") && glob("*", "") && glob("a*b*c", "a-b-b-c"));
        assert!(!glob("a*c", "ab") && !glob("a*c", "abcd") && !glob("ab*ba", "aba") && !glob("x", "xx"));
    }
}
