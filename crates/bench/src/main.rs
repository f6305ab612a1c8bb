//! `make bench`: how light and fast the function is on this machine.
//!
//! Starts the three stand-ins in this process (no added latency), runs the release binary of the function
//! as a separate process pointed at them, drives tool turns over HTTP and reads the child's memory from
//! `/proc`. Prints the results and, with `--out`, writes them into BENCHMARKS.md between markers.
//!
//! ```text
//! bench --function target/bench/fc-identity-agent [--out BENCHMARKS.md] [--env KEY=VALUE]... [--starts 30]
//!       [--turns 300] [--quick] [--delay-ms 20] [--delay-turns 20] [--mcp-revisions legacy,modern]
//! bench --delay-only [--delay-ms 20] [--mcp-revisions legacy]   # only the delay mode, printed (for
//!                       # a binary from before issue 23, which speaks only the 2025 revisions)
//! bench --counts-only [--mcp-revisions legacy]   # only the upstream requests per turn, printed
//! bench --stand-ins [--chunk-delay-ms 20]   # only the stand-ins; prints the function's environment, for
//!                       # profiling by hand (callgrind, heaptrack)
//! bench --fc-sized [--sizes 0.05/128,0.35/512] [--bursts 10,100,200] [--faces process,a2a]
//!       [--chunk-delay-ms 20] [--hostnames] [--out …]
//!                       # the function inside a cgroup per FC size (root; see fc_sized.rs)
//! ```
//!
//! "Own overhead" of a turn is the client's wall time minus the time the stand-ins report spending on that
//! turn's requests (arrival → end of response body). It so includes loopback transfer and the client's own
//! HTTP work, and the stand-ins and this load generator share the machine's cores with the function.

mod cgroup;
mod child;
mod drive;
mod fc_sized;
mod mcp_turns;
mod otlp_sink;
mod report;
mod sessions;
mod sizing;
mod timeline;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use devstack::Stack;

use child::Function;
use drive::{Counts, Driver, Face, StandInTimes, TurnOutcome, settle};
use report::{Machine, Row, mib, ms, percentile};

struct Options {
    function: PathBuf,
    out: Option<PathBuf>,
    /// Extra environment for the function (`--env KEY=VALUE`), for experiments such as
    /// `TOKIO_WORKER_THREADS=1`.
    env: Vec<(&'static str, String)>,
    starts: usize,
    turns: usize,
    burst: usize,
    throughput_turns: usize,
    /// Only start the stand-ins, print their environment and wait: for running the function by hand under
    /// a profiler (`strace -c`, `valgrind --tool=callgrind`).
    stand_ins_only: bool,
    /// `--fc-sized`: only the FC-sized mode, at these sizes and bursts.
    fc_sized: bool,
    sizes: Vec<cgroup::Limits>,
    bursts: Vec<usize>,
    faces: Vec<Face>,
    /// `--hostnames`: the upstreams' URLs name `localhost`, not `127.0.0.1` (see [`by_hostname`]).
    hostnames: bool,
    /// `--chunk-delay-ms`: the model stand-in's pause before every chunk. The FC-sized mode defaults to
    /// [`FC_SIZED_CHUNK_DELAY`]; `--stand-ins` uses it only when given (else none, as `make bench`).
    chunk_delay: Option<Duration>,
    /// `--delay-ms`: the delay mode's network delay per upstream request (zero: no delay mode).
    delay: Duration,
    /// `--delay-turns`: turns per user kind (new, returning) and revision in the delay mode.
    delay_turns: usize,
    /// `--delay-only`: only the delay mode, printed.
    delay_only: bool,
    /// `--counts-only`: only the upstream requests per turn (on each of `--mcp-revisions`), printed.
    counts_only: bool,
    /// `--mcp-revisions`: the MCP servers the delay mode (and `--counts-only`) runs against.
    delay_revisions: Vec<devstack::mcp_server::Revisions>,
    /// `--otlp`: the function runs with OpenTelemetry on, exporting to the harness's own sink
    /// ([`otlp_sink`]); every instance the run starts gets the endpoint.
    otlp: bool,
}

/// As in the Python sample's cost runs (README, "Cost"), so the two sides of the cost table compare.
const FC_SIZED_CHUNK_DELAY: Duration = Duration::from_millis(20);

impl Options {
    fn parse() -> Result<Options, String> {
        let mut options = Options {
            function: PathBuf::from("target/release/fc-identity-agent"),
            out: None,
            env: Vec::new(),
            starts: 30,
            turns: 300,
            burst: 200,
            throughput_turns: 1000,
            stand_ins_only: false,
            fc_sized: false,
            sizes: sizing::SIZES.to_vec(),
            bursts: sizing::BURSTS.to_vec(),
            faces: vec![Face::Process],
            hostnames: false,
            chunk_delay: None,
            delay: Duration::from_millis(20),
            delay_turns: 20,
            delay_only: false,
            counts_only: false,
            delay_revisions: vec![devstack::mcp_server::Revisions::Legacy, devstack::mcp_server::Revisions::Modern],
            otlp: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            let number =
                |text: String, name: &str| text.parse::<usize>().map_err(|_| format!("{name}: not a number: {text}"));
            match arg.as_str() {
                "--function" => options.function = value("--function")?.into(),
                "--out" => options.out = Some(value("--out")?.into()),
                "--env" => {
                    let pair = value("--env")?;
                    let (key, val) = pair.split_once('=').ok_or_else(|| format!("--env {pair}: expected KEY=VALUE"))?;
                    // Leaked: a handful of short strings for the life of the process.
                    options.env.push((Box::leak(key.to_owned().into_boxed_str()), val.to_owned()));
                }
                "--starts" => options.starts = number(value("--starts")?, "--starts")?,
                "--turns" => options.turns = number(value("--turns")?, "--turns")?,
                "--stand-ins" => options.stand_ins_only = true,
                "--fc-sized" => options.fc_sized = true,
                "--hostnames" => options.hostnames = true,
                "--sizes" => options.sizes = parse_sizes(&value("--sizes")?)?,
                "--bursts" => {
                    let list = value("--bursts")?;
                    options.bursts =
                        list.split(',').map(|n| number(n.trim().to_owned(), "--bursts")).collect::<Result<_, _>>()?;
                }
                "--faces" => {
                    let list = value("--faces")?;
                    options.faces = list
                        .split(',')
                        .map(|name| {
                            Face::named(name.trim()).ok_or_else(|| {
                                let known: Vec<&str> = Face::ALL.iter().map(|(n, _)| *n).collect();
                                format!("--faces: unknown face {name:?} (known: {})", known.join(", "))
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--chunk-delay-ms" => {
                    options.chunk_delay =
                        Some(Duration::from_millis(number(value("--chunk-delay-ms")?, "--chunk-delay-ms")? as u64))
                }
                "--delay-ms" => {
                    options.delay = Duration::from_millis(number(value("--delay-ms")?, "--delay-ms")? as u64)
                }
                "--delay-turns" => options.delay_turns = number(value("--delay-turns")?, "--delay-turns")?.max(1),
                "--delay-only" => options.delay_only = true,
                "--counts-only" => options.counts_only = true,
                "--otlp" => options.otlp = true,
                "--mcp-revisions" => options.delay_revisions = mcp_turns::parse_revisions(&value("--mcp-revisions")?)?,
                "--quick" => {
                    options.starts = 5;
                    options.turns = 30;
                    options.throughput_turns = 200;
                    options.delay_turns = 10;
                }
                "--help" | "-h" => {
                    return Err("usage: bench --function PATH [--out BENCHMARKS.md] [--env KEY=VALUE]... [--starts N] [--turns N] \
                                [--quick] [--otlp] [--delay-ms N] [--delay-turns N] [--mcp-revisions legacy,modern] | bench --delay-only [--delay-ms N] [--mcp-revisions …] | bench --counts-only [--mcp-revisions …] | bench --stand-ins [--chunk-delay-ms N] | bench --fc-sized [--sizes V/MIB,…] [--bursts N,…] [--faces process,a2a,ag-ui,responses] [--chunk-delay-ms N] [--hostnames] [--out F]"
                        .into());
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(options)
    }
}

fn main() -> std::process::ExitCode {
    let result = Options::parse().and_then(|options| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?
            .block_on(run(options))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `0.05/128,0.35/512` → sizes (vCPU / MiB).
fn parse_sizes(list: &str) -> Result<Vec<cgroup::Limits>, String> {
    list.split(',')
        .map(|item| {
            let (vcpu, memory) =
                item.trim().split_once('/').ok_or_else(|| format!("--sizes {item}: expected VCPU/MIB"))?;
            let vcpu: f64 = vcpu.parse().map_err(|_| format!("--sizes {item}: bad vCPU"))?;
            let memory_mib: u64 = memory.parse().map_err(|_| format!("--sizes {item}: bad MiB"))?;
            Ok(cgroup::Limits { vcpu, memory_mib })
        })
        .collect()
}

async fn run(mut options: Options) -> Result<(), String> {
    let otlp = if options.otlp {
        let (endpoint, received) = otlp_sink::start().await?;
        options.env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint));
        Some(received)
    } else {
        None
    };
    if options.fc_sized {
        return run_fc_sized(options).await;
    }
    if options.delay_only {
        return run_delay_only(options).await;
    }
    if options.counts_only {
        return run_counts_only(options).await;
    }
    let load_before = report::load_average();
    let stack = Stack::start_with(devstack::StackOptions {
        model_chunk_delay: options.chunk_delay.unwrap_or_default(),
        ..devstack::StackOptions::default()
    })
    .await
    .map_err(|e| format!("stand-ins: {e}"))?;
    let env = function_env(&stack, &options);
    if options.stand_ins_only {
        for (key, value) in &env {
            println!("{key}={value}");
        }
        eprintln!("stand-ins running; the function's environment is above. Ctrl-C ends.");
        return tokio::signal::ctrl_c().await.map_err(|e| e.to_string());
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // Cold start. The first start pays for paging the binary in from disk; FC's would too, but that is the
    // platform's cost, and a warm page cache makes the starts comparable.
    eprintln!("cold start: {} starts", options.starts);
    let binary = options.function.clone();
    let starts = tokio::task::spawn_blocking({
        let (binary, env) = (binary.clone(), env.clone());
        move || -> Result<(Vec<Duration>, Vec<Duration>), String> {
            drop(Function::start(&binary, &env)?);
            let mut starts = Vec::with_capacity(options.starts);
            let mut floors = Vec::with_capacity(options.starts);
            for _ in 0..options.starts {
                starts.push(Function::start(&binary, &env)?.started_in);
                floors.push(child::spawn_floor()?);
            }
            Ok((starts, floors))
        }
    })
    .await
    .map_err(|e| e.to_string())??;
    let (mut sorted, mut floors) = starts;
    sorted.sort();
    floors.sort();
    let cold_median = percentile(&sorted, 50.0);
    rows.push(Row::new(
        "Cold start: spawn → first 200 from /health (median / p90)",
        format!("{} / {} (n={})", ms(cold_median), ms(percentile(&sorted, 90.0)), sorted.len()),
        "≤ 5 ms",
        Some(cold_median <= Duration::from_millis(5)),
        "1.80 s",
    ));
    rows.push(Row::new(
        "Floor: spawn → exit of /bin/true, interleaved (median / p90)",
        format!("{} / {}", ms(percentile(&floors, 50.0)), ms(percentile(&floors, 90.0))),
        "",
        None,
        "",
    ));

    // One long-lived instance for everything else.
    let function = tokio::task::spawn_blocking({
        let (binary, env) = (binary.clone(), env.clone());
        move || Function::start(&binary, &env)
    })
    .await
    .map_err(|e| e.to_string())??;
    let idle = function.memory()?;
    rows.push(Row::new(
        "RSS idle after start (VmRSS; RssAnon)",
        format!("{} ({}; {} threads)", mib(idle.rss_kib), mib(idle.anon_kib), idle.threads),
        "",
        None,
        "",
    ));

    let driver = Arc::new(Driver::new(function.url("/process"))?);

    // Request counts on the 2025 MCP server the rest of the bench uses: the instance's first turn (a new
    // user: no cached token, no MCP connection), the same user's warm tool turn and warm turn without a
    // tool call, and another new user's first turn.
    eprintln!("upstream requests per turn");
    let (legacy, after_one) = mcp_turns::count_turns(&stack, &function, "bench-first", || function.memory()).await?;
    let after_one = after_one?;
    rows.push(Row::new(
        "Peak RSS after one tool turn (VmHWM; RssAnon now)",
        format!("{} ({})", mib(after_one.hwm_kib), mib(after_one.anon_kib)),
        "≤ 8 MiB",
        Some(after_one.hwm_kib <= 8 * 1024),
        "200 MiB",
    ));
    rows.extend(legacy.rows(""));
    notes.push(legacy.note("2025 server"));
    // The same on a 2026-07-28 server, on instances of its own (stand-ins and function).
    eprintln!("upstream requests per turn, MCP 2026-07-28");
    {
        let modern = mcp_turns::stack(devstack::mcp_server::Revisions::Modern, Duration::ZERO).await?;
        let instance = mcp_turns::start(&binary, function_env(&modern, &options)).await?;
        let (turns, ()) = mcp_turns::count_turns(&modern, &instance, "bench-modern", || ()).await?;
        rows.extend(turns.rows("MCP 2026-07-28"));
        notes.push(turns.note("2026-07-28 server (ttlMs 60 s)"));
    }
    rows.extend(vault_rows(&stack, &binary, &env).await?);

    // The delay mode: what a user feels with a network delay on every upstream request.
    if !options.delay.is_zero() {
        for &revisions in &options.delay_revisions {
            eprintln!(
                "delay mode, {}: {} ms per request",
                mcp_turns::revision_label(revisions),
                options.delay.as_millis()
            );
            let (delay_rows, delay_notes) =
                mcp_turns::delay_rows(&binary, &options.env, revisions, options.delay, options.delay_turns).await?;
            rows.extend(delay_rows);
            notes.extend(delay_notes);
        }
        notes.push(format!(
            "Delay mode: stand-ins of its own per revision, each answering every request after {} ms; one \
             instance each, one unmeasured first turn, then {} new users' first turns and {} turns of a returning \
             user, one at a time. Floor: the model's two requests plus the one tools/call, as the stand-ins \
             clocked them (no chunk delay, so it is the first token's floor too); over the floor: median of the \
             per-turn differences.",
            options.delay.as_millis(),
            options.delay_turns,
            options.delay_turns
        ));
    }

    // Own overhead, sequential turns of a warm user.
    eprintln!("own overhead: {} sequential turns", options.turns);
    let cpu_before = function.cpu_time()?;
    let marks = sequential_turns(&stack, &driver, options.turns, WARM_UP_TURNS).await?;
    // The warm-up turns ran in the same span.
    let cpu_per_turn = function.cpu_time()?.saturating_sub(cpu_before) / (options.turns + WARM_UP_TURNS) as u32;
    let times = StandInTimes::read(&stack);
    let mut overheads: Vec<Duration> =
        marks.iter().map(|(from, to, wall, _)| wall.saturating_sub(times.between(*from, *to))).collect();
    let mut walls: Vec<Duration> = marks.iter().map(|m| m.2).collect();
    let spent: Vec<Duration> = marks.iter().map(|(f, t, _, _)| times.between(*f, *t)).collect();
    overheads.sort();
    walls.sort();
    let overhead_median = percentile(&overheads, 50.0);
    rows.push(Row::new(
        "Own overhead per tool turn (median / p99)",
        format!("{} / {} (n={})", ms(overhead_median), ms(percentile(&overheads, 99.0)), overheads.len()),
        "≤ 2 ms",
        Some(overhead_median <= Duration::from_millis(2)),
        "63 ms",
    ));
    rows.push(Row::new("CPU time of the function per tool turn (all threads, mean)", ms(cpu_per_turn), "", None, ""));
    // The other faces: the same warm tool turn, own overhead within 10 % of /process's. Interleaved in
    // rounds with /process on the same instance, so the machine's load (which moves wall and CPU figures by
    // tens of percent within minutes here) falls on every face alike; run one after another, each face
    // read whatever the load was in its minute.
    let faces = [Face::Process, Face::A2a, Face::AgUi, Face::Responses, Face::Chat];
    let per_round = (options.turns / FACE_ROUNDS).max(1);
    eprintln!("own overhead by face: {FACE_ROUNDS} rounds of {per_round} sequential turns on each, interleaved");
    let mut drivers = Vec::new();
    for face in faces {
        let face_driver = Driver::for_face(function.url(face.path()), face)?;
        sequential_turns(&stack, &face_driver, 0, WARM_UP_TURNS).await?;
        drivers.push(face_driver);
    }
    let mut by_face: Vec<(Vec<Duration>, Duration)> = vec![(Vec::new(), Duration::ZERO); faces.len()];
    for _ in 0..FACE_ROUNDS {
        for (face_driver, (overheads, cpu)) in drivers.iter().zip(by_face.iter_mut()) {
            let cpu_before = function.cpu_time()?;
            let face_marks = sequential_turns(&stack, face_driver, per_round, 0).await?;
            *cpu += function.cpu_time()?.saturating_sub(cpu_before);
            let times = StandInTimes::read(&stack);
            overheads
                .extend(face_marks.iter().map(|(from, to, wall, _)| wall.saturating_sub(times.between(*from, *to))));
        }
    }
    for (overheads, _) in by_face.iter_mut() {
        overheads.sort();
    }
    let process_median = percentile(&by_face[0].0, 50.0);
    for (face, (overheads, cpu)) in faces.iter().zip(&by_face) {
        let median = percentile(overheads, 50.0);
        let cpu_per_turn = *cpu / overheads.len().max(1) as u32;
        let measured = format!(
            "{} / {} (n={}; CPU {} per turn)",
            ms(median),
            ms(percentile(overheads, 99.0)),
            overheads.len(),
            ms(cpu_per_turn)
        );
        let label = format!("Own overhead per tool turn, POST {}, interleaved by face (median / p99)", face.path());
        let (target, met) = match face {
            Face::Process => ("", None),
            _ => ("≤ /process + 10 %", Some(median <= process_median.mul_f64(1.1))),
        };
        rows.push(Row::new(&label, measured, target, met, ""));
    }
    notes.push(format!(
        "Faces: one instance, {WARM_UP_TURNS} warm-up turns per face, then {FACE_ROUNDS} rounds of {per_round} sequential \
         tool turns on each face in turn (/process, /a2a, /ag-ui, Responses, Chat), every turn a session of its own; \
         each face is held against /process's median from the same rounds."
    ));
    let mut spent = spent;
    spent.sort();
    notes.push(format!(
        "Sequential tool turns: wall median {} (p99 {}), of which the stand-ins reported median {}.",
        ms(percentile(&walls, 50.0)),
        ms(percentile(&walls, 99.0)),
        ms(percentile(&spent, 50.0)),
    ));
    let sends: Vec<_> = marks.iter().map(|&(_, _, wall, began)| (began, wall)).collect();
    notes.push(timeline::describe(&timeline::gaps(&stack, &sends)));

    // Session memory: the stores against each other, on instances of their own.
    eprintln!("session stores: memory / none / Redis, {} turns each", options.turns);
    let redis = sessions::RedisServer::start()?;
    let (store_rows, store_notes) = sessions::store_rows(&stack, &binary, &env, options.turns, redis.as_ref()).await?;
    drop(redis);
    rows.extend(store_rows);
    notes.extend(store_notes);

    // A burst of new users at once.
    eprintln!("{} concurrent tool turns", options.burst);
    let cpu_before = function.cpu_time()?;
    let outcomes = driver.burst("bench-burst", options.burst).await;
    let burst_cpu = function.cpu_time()?.saturating_sub(cpu_before);
    let burst_errors = errors(&outcomes);
    let after_burst = function.memory()?;
    rows.push(Row::new(
        &format!("{} concurrent tool turns (new users): errors", options.burst),
        burst_errors.to_string(),
        "0",
        Some(burst_errors == 0),
        "",
    ));
    rows.push(Row::new(
        &format!("Peak RSS after {} concurrent tool turns (VmHWM)", options.burst),
        format!(
            "{} ({} threads; CPU {} per turn)",
            mib(after_burst.hwm_kib),
            after_burst.threads,
            ms(burst_cpu / options.burst.max(1) as u32)
        ),
        "",
        None,
        "",
    ));

    // Throughput with warm users.
    for concurrency in [10, 100] {
        eprintln!("throughput at concurrency {concurrency}");
        let prefix = format!("bench-c{concurrency}");
        let _ = driver.run_concurrent(&prefix, concurrency, concurrency).await;
        let (outcomes, took) = driver.run_concurrent(&prefix, concurrency, options.throughput_turns).await;
        let failed = errors(&outcomes);
        let rate = outcomes.len() as f64 / took.as_secs_f64();
        let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.wall).collect();
        latencies.sort();
        rows.push(Row::new(
            &format!("Throughput at concurrency {concurrency} (errors)"),
            format!("{rate:.0} turns/s ({failed})"),
            "0 errors",
            Some(failed == 0),
            if concurrency == 10 { "15.8 turns/s" } else { "" },
        ));
        notes.push(format!(
            "Concurrency {concurrency}: {} turns, latency median {} / p99 {}.",
            outcomes.len(),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
        ));
    }
    let end = function.memory()?;
    notes.push(format!(
        "After all turns: VmRSS {} (RssAnon {}), VmHWM {}, {} threads.",
        mib(end.rss_kib),
        mib(end.anon_kib),
        mib(end.hwm_kib),
        end.threads
    ));
    drop(function);
    let (memory_rows, memory_notes) = sessions::memory_rows(&binary, &env).await?;
    rows.extend(memory_rows);
    notes.extend(memory_notes);

    let size = std::fs::metadata(&binary).map_err(|e| format!("{}: {e}", binary.display()))?.len();
    rows.push(Row::new(
        "Release binary size",
        format!("{:.2} MB ({})", size as f64 / 1e6, binary.display()),
        "≤ 8 MB",
        Some(size <= 8_000_000),
        "",
    ));
    if let Some(received) = &otlp {
        notes.push(format!(
            "Telemetry on (`--otlp`): every instance exported over OTLP/HTTP to the harness's sink; it got {}.",
            received.summary()
        ));
    }
    notes.push(
        "The stand-ins and the load generator run in the harness process and compete with the function for \
         the same cores; own overhead includes loopback transfer and the harness client's HTTP work."
            .into(),
    );

    let machine = Machine::describe(load_before);
    let section = report::render(&machine, &rows, &notes);
    println!("{section}");
    if let Some(out) = &options.out {
        report::write_section(out, &section).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("written to {}", out.display());
    }
    Ok(())
}

/// `--delay-only`: the delay mode alone, printed (not written): for comparing binaries.
async fn run_delay_only(options: Options) -> Result<(), String> {
    let load_before = report::load_average();
    let mut rows = Vec::new();
    let mut notes = vec![format!("Function: {}.", options.function.display())];
    for &revisions in &options.delay_revisions {
        let (delay_rows, delay_notes) =
            mcp_turns::delay_rows(&options.function, &options.env, revisions, options.delay, options.delay_turns)
                .await?;
        rows.extend(delay_rows);
        notes.extend(delay_notes);
    }
    println!("{}", report::render(&Machine::describe(load_before), &rows, &notes));
    Ok(())
}

/// `--counts-only`: the upstream requests per turn on each of `--mcp-revisions`, printed (not written).
async fn run_counts_only(options: Options) -> Result<(), String> {
    let load_before = report::load_average();
    let mut rows = Vec::new();
    let mut notes = vec![format!("Function: {}.", options.function.display())];
    for &revisions in &options.delay_revisions {
        let label = mcp_turns::revision_label(revisions);
        let stack = mcp_turns::stack(revisions, Duration::ZERO).await?;
        let function = mcp_turns::start(&options.function, function_env(&stack, &options)).await?;
        let (turns, ()) = mcp_turns::count_turns(&stack, &function, "bench-counts", || ()).await?;
        rows.extend(turns.rows(label));
        notes.push(turns.note(label));
    }
    println!("{}", report::render(&Machine::describe(load_before), &rows, &notes));
    Ok(())
}

async fn run_fc_sized(options: Options) -> Result<(), String> {
    let chunk_delay = options.chunk_delay.unwrap_or(FC_SIZED_CHUNK_DELAY);
    let stack = Stack::start_with(devstack::StackOptions {
        model_chunk_delay: chunk_delay,
        ..devstack::StackOptions::default()
    })
    .await
    .map_err(|e| format!("stand-ins: {e}"))?;
    let env = function_env(&stack, &options);
    let section = fc_sized::run(fc_sized::Plan {
        binary: &options.function,
        env: &env,
        sizes: &options.sizes,
        bursts: &options.bursts,
        faces: &options.faces,
        chunk_delay,
        hostnames: options.hostnames,
    })
    .await?;
    println!("{section}");
    if let Some(out) = &options.out {
        report::write_fc_sized_section(out, &section).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("written to {}", out.display());
    }
    Ok(())
}

/// The stand-ins' environment for the function, with `--hostnames` and `--env` applied.
fn function_env(stack: &Stack, options: &Options) -> Vec<(&'static str, String)> {
    let mut env = stack.env();
    if options.hostnames {
        for (_, value) in &mut env {
            *value = by_hostname(value);
        }
    }
    env.extend(options.env.iter().cloned());
    env
}

/// `http://127.0.0.1:PORT/…` → `http://localhost:PORT/…`: the function then resolves its upstreams' names
/// on every new connection, as it does in FC (`dashscope.aliyuncs.com`, the gateway), instead of
/// connecting to an address literal, which skips the resolver.
fn by_hostname(value: &str) -> String {
    value.replace("://127.0.0.1:", "://localhost:")
}

/// One turn for `user`, returning how many requests each stand-in received for it.
/// The model key from the vault (`DASHSCOPE_API_KEY_PROVIDER`), on an instance of its own: a warm turn
/// with the key cached must cost no Agent Identity request more than with a plain key (0 for a warm user);
/// another user's first turn pays only for its own WAT, not for the key again.
async fn vault_rows(
    stack: &Stack,
    binary: &std::path::Path,
    env: &[(&'static str, String)],
) -> Result<Vec<Row>, String> {
    eprintln!("upstream requests per tool turn, model key from the vault");
    let mut env: Vec<(&'static str, String)> = env.iter().filter(|(k, _)| *k != "DASHSCOPE_API_KEY").cloned().collect();
    env.push(("DASHSCOPE_API_KEY_PROVIDER", devstack::DASHSCOPE_KEY_PROVIDER.to_owned()));
    let function = tokio::task::spawn_blocking({
        let binary = binary.to_owned();
        move || Function::start(&binary, &env)
    })
    .await
    .map_err(|e| e.to_string())??;
    let driver = Driver::new(function.url("/process"))?;
    let cold = counted_turn(stack, &driver, "bench-vault").await?;
    let warm = counted_turn(stack, &driver, "bench-vault").await?;
    let other = counted_turn(stack, &driver, "bench-vault-2").await?;
    let row = |label: &str, counts: Counts, target: &str, met: bool| {
        Row::new(
            &format!("Upstream requests per tool turn, vault key, {label}: Agent Identity / MCP / model"),
            format!("{} / {} / {}", counts.identity, counts.mcp, counts.model),
            target,
            Some(met),
            "",
        )
    };
    Ok(vec![
        // WAT + AssumeRoleForWorkloadIdentity + GetResourceAPIKey.
        row("cold", cold, "3 / ≤ 4 / –", cold.identity == 3 && cold.mcp <= 4),
        row("warm user, key cached", warm, "0 / 1 / –", warm.identity == 0 && warm.mcp == 1),
        row("new user, key cached", other, "1 / ≤ 4 / –", other.identity == 1 && other.mcp <= 4),
    ])
}

async fn counted_turn(stack: &Stack, driver: &Driver, user: &str) -> Result<Counts, String> {
    settle(stack).await?;
    let before = Counts::now(stack);
    expect_ok(&driver.turn(user).await)?;
    settle(stack).await?;
    Ok(Counts::now(stack).since(before))
}

/// Rounds of the face comparison: each face runs `turns / FACE_ROUNDS` turns per round, in turn.
const FACE_ROUNDS: usize = 5;

/// Turns a sequential run makes first, unmeasured: the user's token is cached, the connections warm.
const WARM_UP_TURNS: usize = 20;

/// `warm_up` turns, then `turns` sequential turns of one warm user (each in a session of its own), each with
/// the stand-ins' counts before and after and the client's wall time.
async fn sequential_turns(
    stack: &Stack,
    driver: &Driver,
    turns: usize,
    warm_up: usize,
) -> Result<Vec<(Counts, Counts, Duration, std::time::Instant)>, String> {
    for _ in 0..warm_up {
        expect_ok(&driver.turn("bench-seq").await)?;
    }
    settle(stack).await?;
    let mut marks = Vec::with_capacity(turns);
    for _ in 0..turns {
        let before = Counts::now(stack);
        let outcome = driver.turn("bench-seq").await;
        expect_ok(&outcome)?;
        settle(stack).await?;
        marks.push((before, Counts::now(stack), outcome.wall, outcome.began));
    }
    Ok(marks)
}

fn expect_ok(outcome: &TurnOutcome) -> Result<(), String> {
    match &outcome.error {
        None => Ok(()),
        Some(error) => Err(format!("a tool turn failed: {error}")),
    }
}

fn errors(outcomes: &[TurnOutcome]) -> usize {
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.error.as_ref()).collect();
    if let Some(first) = failed.first() {
        eprintln!("{} turns failed; first: {first}", failed.len());
    }
    failed.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_replace_only_the_loopback_address_of_urls() {
        assert_eq!(by_hostname("http://127.0.0.1:4100/compatible-mode/v1"), "http://localhost:4100/compatible-mode/v1");
        assert_eq!(by_hostname("http://127.0.0.1:4200/mcp"), "http://localhost:4200/mcp");
        assert_eq!(by_hostname("sk-127.0.0.1:1"), "sk-127.0.0.1:1");
        assert_eq!(by_hostname("fc-identity-agent-dev"), "fc-identity-agent-dev");
    }
}
