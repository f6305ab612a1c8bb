//! The real binary as FC runs it, configured with a stand-in stack's environment, its output captured.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use devstack::Stack;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

pub const BIN: &str = env!("CARGO_BIN_EXE_fc-identity-agent");

pub struct Binary {
    child: tokio::process::Child,
    pub port: u16,
    output: Vec<JoinHandle<String>>,
}

impl Binary {
    /// Starts the binary on a free port with `stack.env()` plus `extra` (nothing inherited but `PATH`)
    /// and waits until `/health` answers.
    pub async fn start(stack: &Stack, extra: &[(&str, &str)]) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = tokio::process::Command::new(BIN);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
            // Its own URL, the OAuth2 return URL's base (read only when a server takes an OAuth2 token).
            .env("AGENT_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .envs(stack.env())
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the binary starts");
        // Read both pipes to their end as the process writes, so it never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let output = vec![tokio::spawn(read_all(stdout)), tokio::spawn(read_all(stderr))];
        let binary = Binary { child, port, output };
        binary.wait_healthy().await;
        binary
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_healthy(&self) {
        let client = fc_identity_agent::upstream::client_builder().build().unwrap();
        for _ in 0..400 {
            if let Ok(response) = client.get(self.url("/health")).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the binary never became healthy on port {}", self.port);
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// SIGTERM, as FC sends before it stops an instance.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// The process's peak resident set so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(&format!("/proc/{}/status", self.pid()))
    }

    /// Waits for the process to exit (hang guard: 20 s) and returns its status and everything it wrote.
    pub async fn wait(mut self) -> (ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the binary exits")
            .expect("wait works");
        let mut text = String::new();
        for handle in self.output.drain(..) {
            text.push_str(&handle.await.unwrap_or_default());
        }
        (status, text)
    }
}

async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `VmHWM` of a `/proc/<pid>/status` file, in KiB.
pub fn peak_rss_kib(status_path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
