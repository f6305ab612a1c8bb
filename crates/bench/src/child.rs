//! The function under test as FC runs it: a separate process, configured by environment, found healthy by
//! polling `GET /health`, its memory read from `/proc/<pid>/status`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before the harness gives up on it (a broken build, not a slow one).
const START_LIMIT: Duration = Duration::from_secs(10);
/// Between refused connects while the function is still starting: short next to the 6 ms target, long
/// enough not to steal one of the two cores from the process that is starting.
const POLL_INTERVAL: Duration = Duration::from_micros(100);

pub struct Function {
    child: Child,
    pub addr: SocketAddr,
    /// Process spawn → first `200` from `/health`.
    pub started_in: Duration,
}

impl Function {
    /// Spawns `binary` with `env` on a free loopback port and waits until `/health` answers 200.
    pub fn start(binary: &Path, env: &[(&'static str, String)]) -> Result<Function, String> {
        Function::launch(Command::new(binary), binary, env)
    }

    /// Like [`Function::start`], but the process first writes its pid into each of `procs_files` (a
    /// cgroup's `cgroup.procs`) and only then execs the function, so everything the function ever touches
    /// is charged to that group. A tiny `/bin/sh` does it: no code runs between fork and exec in the
    /// harness, and a failed join exits before the function starts (status 97).
    pub fn start_in(
        binary: &Path,
        env: &[(&'static str, String)],
        procs_files: &[PathBuf],
    ) -> Result<Function, String> {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"bin=$1; shift; for f in "$@"; do echo $$ > "$f" || exit 97; done; exec "$bin""#)
            .arg("sh")
            .arg(binary)
            .args(procs_files);
        Function::launch(command, binary, env)
    }

    fn launch(mut command: Command, binary: &Path, env: &[(&'static str, String)]) -> Result<Function, String> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let began = Instant::now();
        let mut child = command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // The function logs JSON lines to stdout as FC expects; here they would only cost the
            // harness reading them.
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", binary.display()))?;
        loop {
            if healthy(addr) {
                let started_in = began.elapsed();
                return Ok(Function { child, addr, started_in });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the function exited before it was healthy: {status}"));
            }
            if began.elapsed() > START_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no 200 from /health within {START_LIMIT:?}"));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// `Some(status)` once the process has ended (killed by the OOM killer, say).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// CPU time the function's live threads have used so far (`/proc/<pid>/task/*/schedstat`, in ns),
    /// which the machine's other load does not inflate the way it inflates wall time.
    pub fn cpu_time(&self) -> Result<Duration, String> {
        let dir = format!("/proc/{}/task", self.pid());
        let tasks = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
        let mut total = Duration::ZERO;
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            // A thread may exit between listing and reading; it then no longer counts.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let ns = text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("{}: unexpected {text:?}", path.display()))?;
            total += Duration::from_nanos(ns);
        }
        Ok(total)
    }

    /// The kernel's view of the process's memory now.
    pub fn memory(&self) -> Result<Memory, String> {
        Memory::of(self.pid())
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the highest `VmRSS` the process ever had.
    pub hwm_kib: u64,
    /// `RssAnon`: heap, stacks, written data; the rest of `VmRSS` is the binary and libraries' pages
    /// (`RssFile`), which the kernel maps in around every page the process touches.
    pub anon_kib: u64,
    /// OS threads.
    pub threads: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Result<Memory, String> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let field = |name: &str| -> Result<u64, String> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("{path} has no {name}"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS")?,
            hwm_kib: field("VmHWM")?,
            anon_kib: field("RssAnon")?,
            threads: field("Threads")?,
        })
    }
}

/// A port nobody listens on right now (the kernel's choice; released before the function binds it).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// One `GET /health` on a fresh connection, as FC's health check does; refused or not-200 is `false`.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 200"
}

/// Spawn → exit of a process that does nothing (`/bin/true`): the floor under any cold start here.
pub fn spawn_floor() -> Result<Duration, String> {
    let began = Instant::now();
    let status = Command::new("/bin/true").env_clear().status().map_err(|e| format!("/bin/true: {e}"))?;
    if !status.success() {
        return Err(format!("/bin/true: {status}"));
    }
    Ok(began.elapsed())
}
