//! `bench --fc-sized`: the function inside a cgroup standing in for an FC instance of each size, under
//! bursts of concurrent tool turns, with the stand-ins outside the limits (in this process) and a pause
//! between model chunks so that the streams overlap.
//!
//! For every size and burst: a fresh group with the size's limits, the function started inside it (its
//! binary's page cache dropped first, so the pages it maps are charged to the group as on a fresh FC
//! instance), one warm-up turn, then the burst of new users at once. Reported: errors, OOM kills, CPU
//! throttling, peak and idle charged memory, burst wall time, p50/p99 turn latency, and what FC would bill.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cgroup::{CpuStat, Group, Hierarchy, Limits};
use crate::child::Function;
use crate::drive::{Driver, Face, TurnOutcome};
use crate::report::{self, ms, percentile};
use crate::sizing::{self, Cost, Verdict};

/// One burst at one size, as measured.
pub struct Measured {
    pub verdict: Verdict,
    /// The wire face the burst's turns were sent to.
    pub face: Face,
    pub wall: Duration,
    pub p50: Duration,
    pub idle_bytes: u64,
    pub kernel_peak_bytes: Option<u64>,
    pub throttle: CpuStat,
    /// The function's CPU time during the burst (its threads' schedstat), per turn.
    pub cpu_per_turn: Option<Duration>,
    pub threads: Option<u64>,
    pub first_error: Option<String>,
    /// The process ended during the run (OOM killed, crashed).
    pub exited: Option<String>,
}

pub struct Plan<'a> {
    pub binary: &'a Path,
    pub env: &'a [(&'static str, String)],
    pub sizes: &'a [Limits],
    pub bursts: &'a [usize],
    /// Every size × burst runs once per face (`--faces`; `/process` alone by default).
    pub faces: &'a [Face],
    pub chunk_delay: Duration,
    /// The upstreams are addressed as `localhost` (`--hostnames`), so new connections resolve a name.
    pub hostnames: bool,
}

/// Runs every size × burst and returns the BENCHMARKS.md section. Fails, saying why, when the machine has
/// no cgroup the harness may create (not root, no cpu/memory controller).
pub async fn run(plan: Plan<'_>) -> Result<String, String> {
    let load_before = report::load_average();
    let hierarchy = Hierarchy::detect().map_err(|why| format!("FC-sized mode needs cgroups and cannot run: {why}"))?;
    eprintln!("FC-sized mode: {}", hierarchy.describe());
    let mut measured = Vec::new();
    for (n, &size) in plan.sizes.iter().enumerate() {
        if let Some(why) = sizing::fc_violation(size) {
            return Err(format!("{} vCPU / {} MiB is not an FC size: {why}", size.vcpu, size.memory_mib));
        }
        for &face in plan.faces {
            for &burst in plan.bursts {
                eprintln!("{} vCPU / {} MiB: burst of {burst} on {}", size.vcpu, size.memory_mib, face.path());
                let name = format!("fc-sized-bench-{}-{n}-{}-{burst}", std::process::id(), face.name());
                let group = Group::create(&hierarchy, &name, size)?;
                let one = one_burst(&plan, &group, size, face, burst).await;
                drop(group);
                measured.push(one?);
            }
        }
    }
    Ok(render(&hierarchy, &plan, &measured, &load_before))
}

async fn one_burst(plan: &Plan<'_>, group: &Group, size: Limits, face: Face, burst: usize) -> Result<Measured, String> {
    drop_page_cache(plan.binary)?;
    let procs = group.procs_files();
    let (binary, env) = (plan.binary.to_owned(), plan.env.to_vec());
    let mut function = tokio::task::spawn_blocking(move || Function::start_in(&binary, &env, &procs))
        .await
        .map_err(|e| e.to_string())??;
    let driver = Arc::new(Driver::for_face(function.url(face.path()), face)?);
    let warm = driver.turn("fc-sized-warm-up").await;
    if let Some(error) = warm.error {
        return Err(format!("{} vCPU / {} MiB: the warm-up turn failed: {error}", size.vcpu, size.memory_mib));
    }
    let idle_bytes = group.memory_now()?;
    let before = group.stats()?;
    let cpu_before = function.cpu_time().ok();
    let began = Instant::now();
    let outcomes = driver.burst(&format!("fc-sized-{burst}"), burst).await;
    let wall = began.elapsed();
    let cpu_after = function.cpu_time().ok();
    let threads = function.memory().ok().map(|m| m.threads);
    let exited = function.exited().map(|status| status.to_string());
    drop(function);
    let after = group.stats()?;

    let failed: Vec<&TurnOutcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    let mut latencies: Vec<Duration> = outcomes.iter().filter(|o| o.error.is_none()).map(|o| o.wall).collect();
    latencies.sort();
    let cpu_per_turn = cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b) / burst.max(1) as u32);
    Ok(Measured {
        verdict: Verdict {
            size,
            burst,
            failed: failed.len(),
            oom_kills: after.oom_kills,
            peak_bytes: after.peak_bytes,
            p99: percentile(&latencies, 99.0),
        },
        face,
        wall,
        p50: percentile(&latencies, 50.0),
        idle_bytes,
        kernel_peak_bytes: after.kernel_peak_bytes,
        throttle: after.cpu.since(before.cpu),
        cpu_per_turn,
        threads,
        first_error: failed.first().and_then(|o| o.error.clone()),
        exited,
    })
}

/// Evicts the binary's clean pages from the page cache, so the function's first touch of each is a fault
/// charged to its group (a page already cached is charged to whoever read it first, here the harness).
fn drop_page_cache(binary: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    // SAFETY: a valid open descriptor for the duration of the call; the advice only drops clean pages.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(format!("posix_fadvise({}): error {rc}", binary.display()));
    }
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn render(hierarchy: &Hierarchy, plan: &Plan<'_>, measured: &[Measured], load_before: &str) -> String {
    use std::fmt::Write as _;
    let machine = report::Machine::describe(load_before.to_owned());
    let mut out = String::new();
    let _ = writeln!(out, "Measured {} at commit `{}`.", machine.date, machine.commit);
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), Linux {}; load average before {} / after {} (other engineers were compiling: \
         wall-clock and throttling figures are noisy, memory figures are not).",
        machine.cpus, machine.cpu_model, machine.kernel, machine.load_before, machine.load_after
    );
    let _ = writeln!(
        out,
        "Limits: {}. Model stand-in: {} before every stream chunk. Upstreams addressed {}. Each burst: a fresh \
         group and process, one warm-up turn, then that many new users at once.\n",
        hierarchy.describe(),
        ms(plan.chunk_delay),
        if plan.hostnames { "by name (`localhost`, resolved per new connection)" } else { "by IP (127.0.0.1)" }
    );
    let _ = writeln!(
        out,
        "| vCPU / memory | face | burst | errors | OOM kills | burst wall | p50 / p99 turn | throttled (periods) | \
         peak charged (kernel) | idle charged | per stream | CPU per turn | per 1,000 turns |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for m in measured {
        let v = &m.verdict;
        let cost = Cost::per_1000_turns(v.size, m.wall, v.burst);
        let per_stream = v.peak_bytes.saturating_sub(m.idle_bytes) / v.burst.max(1) as u64;
        let _ = writeln!(
            out,
            "| {} / {} MiB | {} | {} | {} | {} | {} | {} / {} | {} ({}/{}) | {} ({}) | {} | {:.0} KiB | {} | {:.1} vCPU-s, {:.1} GB-s |",
            v.size.vcpu,
            v.size.memory_mib,
            m.face.path(),
            v.burst,
            v.failed,
            v.oom_kills,
            secs(m.wall),
            ms(m.p50),
            ms(v.p99),
            secs(m.throttle.throttled),
            m.throttle.throttled_periods,
            m.throttle.periods,
            mib(v.peak_bytes),
            m.kernel_peak_bytes.map(mib).unwrap_or_else(|| "–".into()),
            mib(m.idle_bytes),
            per_stream as f64 / 1024.0,
            m.cpu_per_turn.map(ms).unwrap_or_else(|| "–".into()),
            cost.vcpu_seconds,
            cost.gb_seconds,
        );
    }
    out.push('\n');
    for m in measured {
        let v = &m.verdict;
        let at = format!("{} / {} MiB, {}, burst {}", v.size.vcpu, v.size.memory_mib, m.face.path(), v.burst);
        if let Some(error) = &m.first_error {
            let _ = writeln!(out, "- {at}: first error: {error}");
        }
        if let Some(status) = &m.exited {
            let _ = writeln!(out, "- {at}: the function exited: {status}");
        }
    }
    let threads: Vec<String> = measured.iter().filter_map(|m| m.threads).map(|t| t.to_string()).collect();
    threads.first().map(|t| writeln!(out, "- Function threads after a burst: {t} (all runs: {}).", threads.join(", ")));
    for &face in plan.faces {
        // Sizes are compared within one face: a face's own rendering cost is part of its p99.
        let verdicts: Vec<Verdict> = measured.iter().filter(|m| m.face == face).map(|m| m.verdict).collect();
        for &burst in plan.bursts {
            let fit = sizing::smallest_fit(&verdicts, burst);
            let _ = writeln!(
                out,
                "- Smallest size holding a burst of {burst} on {} (no error, no OOM kill, peak under half the \
                 limit, p99 at most {} above the largest size's): {}.",
                face.path(),
                ms(sizing::ADDED_P99_ALLOWED),
                fit.map(|s| format!("{} vCPU / {} MiB", s.vcpu, s.memory_mib))
                    .unwrap_or_else(|| "none measured".into())
            );
        }
    }
    let _ = writeln!(
        out,
        "- Per stream = (peak charged − idle charged after the warm-up turn) / burst. Per 1,000 turns = the \
         configured size × burst wall time × 1000 / burst (FC bills an instance's size while it is busy)."
    );
    out
}
