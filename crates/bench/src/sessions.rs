//! Session memory's rows (issue 13): what a store adds to a warm tool turn (`memory` and Redis against
//! `none`, on instances of their own, in alternating rounds so all see the same machine load), how many
//! commands Redis receives per turn (its own `INFO commandstats`, before and after), and what the
//! in-memory store costs in RSS — with 1,000 live sessions of 20 messages, and filled to its byte budget.
//! Every stored message got there through a real tool turn over HTTP.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use devstack::Stack;

use crate::child::{Function, Memory};
use crate::drive::{Driver, stored_messages};
use crate::report::{Row, mib, ms, percentile};
use crate::{StandInTimes, expect_ok, sequential_turns};

/// Rounds of the memory / none / Redis comparison; each round runs a batch on every instance in turn.
const ROUNDS: usize = 5;
/// Issue 13: `memory` within 0.1 ms of `none`.
const MEMORY_ALLOWED: Duration = Duration::from_micros(100);
/// Turns whose Redis commands are counted.
const COUNTED_TURNS: usize = 50;
/// Issue 13: at most two Redis round trips per turn.
const REDIS_CALLS_ALLOWED: f64 = 2.0;
/// The live-sessions figure: 1,000 sessions of 5 tool turns, each turn storing 4 messages (the user's,
/// the tool call, its output, the answer) — 20 messages per session.
const LIVE_SESSIONS: usize = 1_000;
const TURNS_PER_SESSION: usize = 5;
const MESSAGES_PER_TURN: usize = 4;
/// `SESSION_MAX_BYTES` of the live-sessions instance: far above what 1,000 × 20 messages cost.
const LIVE_BUDGET: usize = 256 * 1024 * 1024;
/// Sessions filled at once; each is a conversation, so its turns are sequential.
const FILL_CONCURRENCY: usize = 10;
/// The store's figure the FC-sized budget gives it (issue 17: a full store plus 200 streams under half of
/// 128 MB).
const FULL_STORE_ALLOWED_KIB: u64 = 24 * 1024;
/// How long a liveness wait for redis-server may take before the harness gives up on it.
const REDIS_START_LIMIT: Duration = Duration::from_secs(10);

/// A `redis-server` on a free loopback port with no persistence, killed when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// `None` when no `redis-server` is on `PATH` (the rows say so).
    pub fn start() -> Result<Option<RedisServer>, String> {
        let Some(binary) = on_path("redis-server") else { return Ok(None) };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let server = RedisServer { child, port };
        let began = Instant::now();
        while server.request(b"PING\r\n").map(|r| r.starts_with(b"+PONG")) != Ok(true) {
            if began.elapsed() > REDIS_START_LIMIT {
                return Err(format!("redis-server did not answer PING on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(server))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts counting the commands clients send (`MONITOR`). Not during timed turns: a monitor slows
    /// the server down.
    pub fn monitor(&self) -> Result<Monitor, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
        stream.write_all(b"MONITOR\r\n").map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).map_err(|e| e.to_string())?;
        if !ok.starts_with("+OK") {
            return Err(format!("MONITOR answered {ok:?}"));
        }
        Ok(Monitor { reader })
    }

    /// One inline command on a fresh connection; the whole reply (a bulk string's header included).
    fn request(&self, command: &[u8]) -> Result<Vec<u8>, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
        stream.write_all(command).map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("redis-server closed the connection".into());
            }
            reply.extend_from_slice(&chunk[..n]);
            if complete(&reply) {
                return Ok(reply);
            }
        }
    }
}

/// A `MONITOR` connection: every command the server runs, one line each, the source in brackets —
/// `[0 127.0.0.1:port]` for a client's, `[0 lua]` for one a script ran.
pub struct Monitor {
    reader: BufReader<TcpStream>,
}

const END_MARKER: &str = "bench-monitor-end";

impl Monitor {
    /// The commands clients sent since [`RedisServer::monitor`], by name: a marker is sent through another
    /// connection and the stream read up to it. Commands a script ran are not round trips, so not counted.
    pub fn finish(mut self, server: &RedisServer) -> Result<BTreeMap<String, u64>, String> {
        server.request(format!("ECHO {END_MARKER}\r\n").as_bytes())?;
        let mut calls = BTreeMap::new();
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).map_err(|e| format!("MONITOR: {e}"))? == 0 {
                return Err("MONITOR ended before the marker".into());
            }
            if line.contains(END_MARKER) {
                return Ok(calls);
            }
            if let Some(name) = client_command(&line) {
                *calls.entry(name).or_insert(0) += 1;
            }
        }
    }
}

/// `+1764763200.123456 [0 127.0.0.1:5000] "EVALSHA" "ab…" …` → `EVALSHA`; `None` for a script's command.
fn client_command(line: &str) -> Option<String> {
    let (source, rest) = line.split_once('[')?.1.split_once(']')?;
    if source.split_whitespace().nth(1) == Some("lua") {
        return None;
    }
    Some(rest.trim_start().strip_prefix('"')?.split('"').next()?.to_uppercase())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simple-string reply ends at its CRLF; a bulk string (`$len\r\n…\r\n`) after `len` bytes.
fn complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else { return false };
    if reply.first() != Some(&b'$') {
        return true;
    }
    let len: usize = std::str::from_utf8(&reply[1..end]).ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    reply.len() >= end + 2 + len + 2
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn per_turn(calls: &BTreeMap<String, u64>, turns: usize) -> (f64, String) {
    let turns = turns.max(1) as f64;
    let total = calls.values().sum::<u64>() as f64 / turns;
    let each: Vec<String> = calls.iter().map(|(name, n)| format!("{name} {:.2}", *n as f64 / turns)).collect();
    (total, each.join(", "))
}

async fn start(binary: &Path, env: &[(&'static str, String)], store: &str) -> Result<Function, String> {
    start_with(binary, env, &[("SESSION_STORE", store.to_owned())]).await
}

/// The function with `env`, `set` overriding it.
async fn start_with(
    binary: &Path,
    env: &[(&'static str, String)],
    set: &[(&'static str, String)],
) -> Result<Function, String> {
    let mut env: Vec<(&'static str, String)> =
        env.iter().filter(|(k, _)| set.iter().all(|(s, _)| s != k)).cloned().collect();
    env.extend(set.iter().cloned());
    let binary = binary.to_owned();
    tokio::task::spawn_blocking(move || Function::start(&binary, &env)).await.map_err(|e| e.to_string())?
}

struct Arm {
    function: Function,
    driver: Driver,
    overheads: Vec<Duration>,
    cpu: Duration,
    turns: usize,
}

/// Own overhead of a warm tool turn (a fresh session each, so nothing to replay) with `memory`, `none` and,
/// when `redis` is given, Redis; and Redis's commands per turn.
pub async fn store_rows(
    stack: &Stack,
    binary: &Path,
    env: &[(&'static str, String)],
    turns: usize,
    redis: Option<&RedisServer>,
) -> Result<(Vec<Row>, Vec<String>), String> {
    let mut stores = vec!["memory".to_owned(), "none".to_owned()];
    stores.extend(redis.map(RedisServer::url));
    let mut arms = Vec::new();
    for store in &stores {
        let function = start(binary, env, store).await?;
        let driver = Driver::new(function.url("/process"))?;
        arms.push(Arm { function, driver, overheads: Vec::new(), cpu: Duration::ZERO, turns: 0 });
    }
    for arm in &arms {
        sequential_turns(stack, &arm.driver, 0, 20).await?;
    }
    let per_round = (turns / ROUNDS).max(1);
    for _ in 0..ROUNDS {
        for arm in &mut arms {
            let cpu_before = arm.function.cpu_time()?;
            let marks = sequential_turns(stack, &arm.driver, per_round, 0).await?;
            arm.cpu += arm.function.cpu_time()?.saturating_sub(cpu_before);
            arm.turns += marks.len();
            let times = StandInTimes::read(stack);
            arm.overheads
                .extend(marks.iter().map(|(from, to, wall, _)| wall.saturating_sub(times.between(*from, *to))));
        }
    }
    for arm in &mut arms {
        arm.overheads.sort();
    }
    let median = |arm: &Arm| percentile(&arm.overheads, 50.0);
    let cpu = |arm: &Arm| arm.cpu / arm.turns.max(1) as u32;
    let (memory, none) = (&arms[0], &arms[1]);
    let added = median(memory).as_secs_f64() - median(none).as_secs_f64();
    let mut rows = vec![Row::new(
        "Own overhead per warm tool turn, SESSION_STORE=memory vs none (median; CPU per turn)",
        format!(
            "{} vs {} ({:+.3} ms; CPU {} vs {}; n={} each)",
            ms(median(memory)),
            ms(median(none)),
            added * 1e3,
            ms(cpu(memory)),
            ms(cpu(none)),
            memory.turns
        ),
        "≤ none + 0.1 ms",
        Some(added <= MEMORY_ALLOWED.as_secs_f64()),
        "",
    )];
    let mut notes = vec![format!(
        "Store comparison: {} instances (memory, none{}) started side by side, 20 warm-up turns each, then {ROUNDS} \
         rounds of {per_round} sequential tool turns on each in turn, every turn in a session of its own (nothing \
         to replay; the store's load, append and record are what differ). p99: memory {}, none {}.",
        arms.len(),
        if redis.is_some() { ", Redis" } else { "" },
        ms(percentile(&memory.overheads, 99.0)),
        ms(percentile(&none.overheads, 99.0)),
    )];
    match (arms.get(2), redis) {
        (Some(redis_arm), Some(server)) => {
            // Counted after the timed rounds, on turns of their own: MONITOR slows the server.
            let monitor = server.monitor()?;
            sequential_turns(stack, &redis_arm.driver, COUNTED_TURNS, 0).await?;
            let redis_calls = monitor.finish(server)?;
            rows.push(Row::new(
                "Own overhead per warm tool turn, SESSION_STORE=redis:// (local redis-server; median / p99; CPU)",
                format!(
                    "{} / {} (none {}; CPU {}; n={})",
                    ms(median(redis_arm)),
                    ms(percentile(&redis_arm.overheads, 99.0)),
                    ms(median(none)),
                    ms(cpu(redis_arm)),
                    redis_arm.turns
                ),
                "",
                None,
                "",
            ));
            let (total, each) = per_turn(&redis_calls, COUNTED_TURNS);
            rows.push(Row::new(
                &format!(
                    "Redis round trips per warm tool turn (commands clients sent, MONITOR, over {COUNTED_TURNS} \
                     turns; none pipelined)"
                ),
                format!("{total:.2} ({each})"),
                "≤ 2",
                Some(total <= REDIS_CALLS_ALLOWED),
                "",
            ));
        }
        _ => notes.push(
            "No redis-server on PATH: the Redis rows (own overhead, commands per turn) were not measured; \
             install it (`apt-get install redis-server`) and re-run."
                .into(),
        ),
    }
    Ok((rows, notes))
}

/// Drives `sessions` conversations of `turns_each` tool turns, [`FILL_CONCURRENCY`] at a time, numbered
/// from 0 (`{prefix}-{n}`, one user per session). With `probe` (the function's base URL) it stops once the
/// store evicted a session, and says whether it did.
///
/// The probe must not keep what it looks at alive (a read is a use): after every [`FILL_CONCURRENCY`]
/// sessions it reads the next session in order, once. Those read are then recent; the oldest never-read
/// session is the least recently used, so it is the first a full store evicts — and the next one read.
async fn fill(
    driver: &Arc<Driver>,
    prefix: &str,
    sessions: usize,
    turns_each: usize,
    probe: Option<&str>,
) -> Result<(usize, bool), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, mut ended) = tokio::sync::mpsc::channel::<Result<usize, String>>(FILL_CONCURRENCY);
    for _ in 0..FILL_CONCURRENCY {
        let (driver, next, stop, tx) = (driver.clone(), next.clone(), stop.clone(), tx.clone());
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= sessions || stop.load(Ordering::Relaxed) {
                    return;
                }
                let (user, session) = (format!("{prefix}-u{n}"), format!("{prefix}-{n}"));
                for _ in 0..turns_each {
                    if let Err(error) = expect_ok(&driver.turn_in(&user, &session).await) {
                        let _ = tx.send(Err(error)).await;
                        return;
                    }
                }
                if tx.send(Ok(n)).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut done = std::collections::BTreeSet::new();
    let mut probed = 0;
    let mut evicted = false;
    while let Some(result) = ended.recv().await {
        done.insert(result?);
        let Some(base) = probe else { continue };
        if evicted || done.len() % FILL_CONCURRENCY != 0 || !done.contains(&probed) {
            continue;
        }
        let held = stored_messages(base, &format!("{prefix}-u{probed}"), &format!("{prefix}-{probed}")).await?;
        if held.is_none() {
            evicted = true;
            stop.store(true, Ordering::Relaxed);
        }
        probed += 1;
    }
    Ok((done.len(), evicted))
}

fn growth(before: &Memory, after: &Memory) -> u64 {
    after.rss_kib.saturating_sub(before.rss_kib)
}

/// Peak RSS of an instance holding 1,000 live sessions of 20 messages, and of one whose store is full.
pub async fn memory_rows(binary: &Path, env: &[(&'static str, String)]) -> Result<(Vec<Row>, Vec<String>), String> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    eprintln!("sessions: {LIVE_SESSIONS} live sessions of {} messages", TURNS_PER_SESSION * MESSAGES_PER_TURN);
    // A byte budget the 1,000 sessions cannot reach, so all of them stay: this row is their cost.
    let set = [("SESSION_STORE", "memory".to_owned()), ("SESSION_MAX_BYTES", LIVE_BUDGET.to_string())];
    let function = start_with(binary, env, &set).await?;
    let base = function.url("");
    let driver = Arc::new(Driver::new(function.url("/process"))?);
    expect_ok(&driver.turn("fill-warm-up").await)?;
    let before = function.memory()?;
    let began = Instant::now();
    let (filled, _) = fill(&driver, "live", LIVE_SESSIONS, TURNS_PER_SESSION, None).await?;
    let took = began.elapsed();
    let after = function.memory()?;
    let want = TURNS_PER_SESSION * MESSAGES_PER_TURN;
    for n in [0, LIVE_SESSIONS - 1] {
        let held = stored_messages(&base, &format!("live-u{n}"), &format!("live-{n}")).await?;
        if held != Some(want) {
            return Err(format!("session live-{n} holds {held:?} messages, not {want}"));
        }
    }
    let grown = growth(&before, &after);
    rows.push(Row::new(
        &format!("Peak RSS with {filled} live sessions × {want} messages, memory store (VmHWM; VmRSS growth)"),
        format!(
            "{} (+{}: {:.1} KiB per session, {:.2} KiB per message)",
            mib(after.hwm_kib),
            mib(grown),
            grown as f64 / filled.max(1) as f64,
            grown as f64 / (filled * want).max(1) as f64
        ),
        "",
        None,
        "",
    ));
    notes.push(format!(
        "Live sessions: {filled} conversations of {TURNS_PER_SESSION} tool turns each (user, tool call, tool output, \
         answer per turn), {FILL_CONCURRENCY} at a time, in {:.1} s; the first and last hold {want} messages \
         (GET /sessions); SESSION_MAX_BYTES {} MiB so that none is evicted. VmRSS {} before (after one turn), {} after; RssAnon {} → {}.",
        took.as_secs_f64(),
        LIVE_BUDGET >> 20,
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(before.anon_kib),
        mib(after.anon_kib)
    ));
    drop(function);

    // Full: sessions of the default message cap, until the byte budget evicts the first one.
    let function = start(binary, env, "memory").await?;
    let base = function.url("");
    let driver = Arc::new(Driver::new(function.url("/process"))?);
    expect_ok(&driver.turn("full-warm-up").await)?;
    let before = function.memory()?;
    let per_session = env_number(env, "SESSION_MAX_MESSAGES", 100).div_ceil(MESSAGES_PER_TURN);
    eprintln!("sessions: filling the memory store ({per_session} turns a session) until it evicts");
    let began = Instant::now();
    let (filled, full) = fill(&driver, "full", LIVE_SESSIONS * 10, per_session, Some(&base)).await?;
    let took = began.elapsed();
    let after = function.memory()?;
    let grown = growth(&before, &after);
    rows.push(Row::new(
        "RSS of a full in-memory store, default caps (VmRSS growth over one turn; VmHWM)",
        format!("+{} ({}; {filled} sessions driven, the oldest evicted: {full})", mib(grown), mib(after.hwm_kib)),
        "≤ 24 MiB",
        Some(full && grown <= FULL_STORE_ALLOWED_KIB),
        "",
    ));
    notes.push(format!(
        "Full store: conversations of {per_session} tool turns ({} messages, the default SESSION_MAX_MESSAGES) \
         until the first one was evicted, in {:.1} s; VmRSS {} → {}, RssAnon {} → {}.",
        per_session * MESSAGES_PER_TURN,
        took.as_secs_f64(),
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(before.anon_kib),
        mib(after.anon_kib)
    ));
    Ok((rows, notes))
}

fn env_number(env: &[(&'static str, String)], name: &str, default: usize) -> usize {
    env.iter().find(|(k, _)| *k == name).and_then(|(_, v)| v.parse().ok()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_complete_once_their_length_is_read() {
        assert!(complete(b"+PONG\r\n"));
        assert!(!complete(b"$10\r\n# Comm"));
        assert!(complete(b"$4\r\nabcd\r\n"));
        assert!(!complete(b"$4\r\nabcd"));
    }

    #[test]
    fn monitor_lines_count_the_clients_commands_only() {
        let client = "+1764763200.123456 [0 127.0.0.1:50000] \"evalsha\" \"abc\" \"2\"\r\n";
        let script = "+1764763200.123457 [0 lua] \"SET\" \"session:u:s\" \"{}\"\r\n";
        assert_eq!(client_command(client).as_deref(), Some("EVALSHA"));
        assert_eq!(client_command(script), None);
        let calls: BTreeMap<String, u64> = [("GET".to_owned(), 10), ("EVALSHA".to_owned(), 10)].into();
        assert_eq!(per_turn(&calls, 10), (2.0, "EVALSHA 1.00, GET 1.00".to_owned()));
    }
}
