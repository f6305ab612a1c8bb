//! What a turn costs at the MCP boundary (issue 23): the upstream requests of a user's first turn, of a warm
//! tool turn and of a warm turn without a tool call, on a 2025 MCP server and on a 2026-07-28 one; and the
//! delay mode, where every stand-in answers each request after a network delay and a turn's time to first
//! token and wall time are held against the floor (the model's own time plus one `tools/call`).

use std::path::Path;
use std::time::{Duration, Instant};

use devstack::mcp_server::Revisions;
use devstack::{Stack, StackOptions};

use crate::child::Function;
use crate::drive::{Counts, Driver, settle};
use crate::report::{Row, ms, percentile};
use crate::timeline;

/// `ttlMs` the 2026-07-28 stand-ins give their tool lists: long enough that no measured turn re-lists.
const LIST_TTL_MS: u64 = 60_000;

/// How a revision is named in the rows.
pub fn revision_label(revisions: Revisions) -> &'static str {
    match revisions {
        Revisions::Legacy => "MCP 2025",
        Revisions::Modern => "MCP 2026-07-28",
        Revisions::Both => "MCP 2025 + 2026-07-28",
    }
}

/// `legacy`, `modern` or `both` (as `devstack --mcp-revisions`), comma-separated.
pub fn parse_revisions(list: &str) -> Result<Vec<Revisions>, String> {
    list.split(',')
        .map(|name| Revisions::parse(name.trim()).ok_or_else(|| format!("unknown MCP revisions {name:?}")))
        .collect()
}

/// Stand-ins speaking `revisions` (2026-07-28 lists with a [`LIST_TTL_MS`] `ttlMs`), every answer after
/// `delay`.
pub async fn stack(revisions: Revisions, delay: Duration) -> Result<Stack, String> {
    Stack::start_with(StackOptions {
        mcp_revisions: revisions,
        mcp_list_ttl_ms: Some(LIST_TTL_MS),
        delay,
        ..StackOptions::default()
    })
    .await
    .map_err(|e| format!("stand-ins: {e}"))
}

pub async fn start(binary: &Path, env: Vec<(&'static str, String)>) -> Result<Function, String> {
    let binary = binary.to_owned();
    tokio::task::spawn_blocking(move || Function::start(&binary, &env)).await.map_err(|e| e.to_string())?
}

/// The counts of one instance's turns, in the order they ran.
pub struct Turns {
    /// The instance's first turn, by a new user (no token, no MCP connection, the server's revision
    /// unknown).
    pub first: Counted,
    /// The same user again, a tool turn.
    pub warm: Counted,
    /// The same user again, a turn the model answers without a tool.
    pub warm_plain: Counted,
    /// Another user's first turn on the same instance.
    pub new_user: Counted,
}

pub struct Counted {
    pub counts: Counts,
    /// The MCP methods the turn sent, in order.
    pub methods: Vec<String>,
}

/// Four counted turns on a fresh instance of the function (see [`Turns`]); `after_first` runs between the
/// first and the second (the bench reads the instance's memory there).
pub async fn count_turns<T>(
    stack: &Stack,
    function: &Function,
    prefix: &str,
    after_first: impl FnOnce() -> T,
) -> Result<(Turns, T), String> {
    let tool = Driver::new(function.url("/process"))?;
    let plain = Driver::new(function.url("/process"))?.without_tool();
    let user = format!("{prefix}-first");
    let first = counted(stack, &tool, &user).await?;
    let between = after_first();
    let warm = counted(stack, &tool, &user).await?;
    let warm_plain = counted(stack, &plain, &user).await?;
    let new_user = counted(stack, &tool, &format!("{prefix}-second")).await?;
    Ok((Turns { first, warm, warm_plain, new_user }, between))
}

async fn counted(stack: &Stack, driver: &Driver, user: &str) -> Result<Counted, String> {
    settle(stack).await?;
    let before = Counts::now(stack);
    let outcome = driver.turn(user).await;
    if let Some(error) = outcome.error {
        return Err(format!("a counted turn failed: {error}"));
    }
    settle(stack).await?;
    let counts = Counts::now(stack).since(before);
    let methods = stack.mcp.methods();
    Ok(Counted { counts, methods: methods[methods.len() - counts.mcp..].to_vec() })
}

impl Turns {
    /// The request rows. `label` is empty for the 2025 server the rest of the bench runs against (so its
    /// rows keep the names earlier runs used), else the revision.
    pub fn rows(&self, label: &str) -> Vec<Row> {
        let on = if label.is_empty() { String::new() } else { format!(", {label}") };
        let row = |what: &str, counted: &Counted, target: &str, met: bool| {
            let c = counted.counts;
            Row::new(
                &format!("Upstream requests per {what}: Agent Identity / MCP / model"),
                format!("{} / {} / {}", c.identity, c.mcp, c.model),
                target,
                Some(met),
                "",
            )
        };
        let (first, warm, plain, other) =
            (self.first.counts, self.warm.counts, self.warm_plain.counts, self.new_user.counts);
        let first_label =
            if label.is_empty() { "cold user".to_owned() } else { "first turn on the instance".to_owned() };
        vec![
            // Today = before issue 23: initialize, notifications/initialized, tools/list, tools/call.
            row(
                &format!("tool turn{on}, {first_label}"),
                &self.first,
                "1 / ≤ 4 / 2",
                first.identity == 1 && first.mcp <= 4,
            ),
            row(
                &format!("tool turn{on}, another new user"),
                &self.new_user,
                "1 / ≤ 4 / 2",
                other.identity == 1 && other.mcp <= 4,
            ),
            row(&format!("tool turn{on}, warm user"), &self.warm, "0 / 1 / 2", warm.identity == 0 && warm.mcp == 1),
            row(
                &format!("turn without a tool call{on}, warm user"),
                &self.warm_plain,
                "0 / 0 / 1",
                plain.identity == 0 && plain.mcp == 0,
            ),
        ]
    }

    pub fn note(&self, label: &str) -> String {
        let list = |c: &Counted| if c.methods.is_empty() { "none".to_owned() } else { c.methods.join(", ") };
        format!(
            "MCP methods, {label}: first turn on the instance: {}; warm tool turn: {}; warm turn without a tool \
             call: {}; another new user: {}.",
            list(&self.first),
            list(&self.warm),
            list(&self.warm_plain),
            list(&self.new_user)
        )
    }
}

/// One turn of the delay mode, as the client saw it and as the stand-ins clocked it.
struct Timed {
    /// When the request was sent.
    began: Instant,
    /// Request sent → first text of the answer.
    first_token: Duration,
    /// Request sent → last byte.
    wall: Duration,
    /// The model's two requests (each its delay and its stream) + the `tools/call`, as the stand-ins clocked
    /// them: what the turn cannot be faster than. The floor of the first token too: there is no chunk delay
    /// in this mode, so the second stream ends microseconds after its first chunk.
    floor: Duration,
    counts: Counts,
}

/// The delay mode on one revision: its own stand-ins (every answer after `delay`), its own instance of
/// the function, one unmeasured first turn (the instance's connections and the server's revision), then
/// `turns` first turns of new users and `turns` turns of a returning user, one at a time.
pub async fn delay_rows(
    binary: &Path,
    extra_env: &[(&'static str, String)],
    revisions: Revisions,
    delay: Duration,
    turns: usize,
) -> Result<(Vec<Row>, Vec<String>), String> {
    let stack = stack(revisions, delay).await?;
    let mut env = stack.env();
    env.extend(extra_env.iter().cloned());
    let function = start(binary, env).await?;
    let driver = Driver::new(function.url("/process"))?;
    let returning = "delay-returning";
    timed(&stack, &driver, returning).await?;
    let mut new = Vec::with_capacity(turns);
    for i in 0..turns {
        new.push(timed(&stack, &driver, &format!("delay-new-{i}")).await?);
    }
    let mut again = Vec::with_capacity(turns);
    for _ in 0..turns {
        again.push(timed(&stack, &driver, returning).await?);
    }
    let label = revision_label(revisions);
    let delay_ms = delay.as_millis();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (who, measured) in [("new user", &new), ("returning user", &again)] {
        let returning = who == "returning user";
        let floor = median(measured.iter().map(|t| t.floor));
        let figures: [Figure; 2] = [("time to first token", |t| t.first_token), ("turn time", |t| t.wall)];
        for (figure, of) in figures {
            let measured_median = median(measured.iter().map(of));
            let over = median(measured.iter().map(|t| of(t).saturating_sub(t.floor)));
            let (target, met) =
                if returning { ("≤ floor + 1 ms", Some(over <= Duration::from_millis(1))) } else { ("", None) };
            rows.push(Row::new(
                &format!("Delay {delay_ms} ms per request, {label}, {who}: {figure} (median; floor; over the floor)"),
                format!("{} (floor {}; +{}; n={})", ms(measured_median), ms(floor), ms(over), measured.len()),
                target,
                met,
                "",
            ));
        }
        let c = measured[0].counts;
        // The stand-ins' clock has the MCP and model requests only: for a new user the Agent Identity
        // request would hide in a gap, so only the returning user's turns are laid out.
        let hand_offs = if returning {
            let sends: Vec<(Instant, Duration)> = measured.iter().map(|t| (t.began, t.wall)).collect();
            let line = timeline::describe(&timeline::gaps(&stack, &sends));
            format!(" {}", line.replace("Own time of a sequential turn by hand-off", "Own time by hand-off"))
        } else {
            String::new()
        };
        notes.push(format!(
            "Delay mode, {label}, {who}: {} / {} / {} requests (Agent Identity / MCP / model) per turn; wall p90 {}.{hand_offs}",
            c.identity,
            c.mcp,
            c.model,
            ms(nth(measured.iter().map(|t| t.wall), 90.0)),
        ));
    }
    Ok((rows, notes))
}

/// A figure of the delay mode: its name and how to read it off a turn.
type Figure = (&'static str, fn(&Timed) -> Duration);

async fn timed(stack: &Stack, driver: &Driver, user: &str) -> Result<Timed, String> {
    settle(stack).await?;
    let before = Counts::now(stack);
    let (outcome, first_token) = driver.timed_turn(user).await;
    if let Some(error) = outcome.error {
        return Err(format!("a delay-mode turn failed: {error}"));
    }
    let first_token = first_token.ok_or("a delay-mode turn streamed no answer text")?;
    settle(stack).await?;
    let after = Counts::now(stack);
    let model: Vec<Duration> =
        stack.dashscope.requests()[before.model..after.model].iter().map(|r| r.elapsed.unwrap_or_default()).collect();
    // Sequential turns, settled: this turn's MCP requests are the ones served since `before`.
    let served = stack.mcp.served();
    let calls: Vec<Duration> =
        served[before.mcp..after.mcp].iter().filter(|s| s.method == "tools/call").map(|s| s.elapsed).collect();
    let [model_1, model_2] = model[..] else {
        return Err(format!("a delay-mode tool turn made {} model requests, not 2", model.len()));
    };
    let [call] = calls[..] else {
        return Err(format!("a delay-mode tool turn made {} tools/call requests, not 1", calls.len()));
    };
    Ok(Timed {
        began: outcome.began,
        first_token,
        wall: outcome.wall,
        floor: model_1 + call + model_2,
        counts: after.since(before),
    })
}

fn median(values: impl Iterator<Item = Duration>) -> Duration {
    nth(values, 50.0)
}

fn nth(values: impl Iterator<Item = Duration>, p: f64) -> Duration {
    let mut sorted: Vec<Duration> = values.collect();
    sorted.sort();
    percentile(&sorted, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_by_name() {
        assert_eq!(parse_revisions("legacy, modern"), Ok(vec![Revisions::Legacy, Revisions::Modern]));
        assert!(parse_revisions("2026").is_err());
        assert_eq!(revision_label(Revisions::Modern), "MCP 2026-07-28");
    }
}
