//! A real `redis-server` (the Debian package; `.ci/run` installs it) on a free loopback port, with no
//! persistence, killed when dropped.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct RedisServer {
    pub port: u16,
    password: Option<String>,
    child: Option<Child>,
    /// A cluster node's working directory (its `nodes.conf`), removed when dropped.
    dir: Option<std::path::PathBuf>,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        RedisServer::start_with(&[], None).await
    }

    /// With extra `redis-server` arguments; `password`: the one `PING` needs (`--requirepass`).
    pub async fn start_with(extra: &[&str], password: Option<&str>) -> RedisServer {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (apt-get install -y redis-server; .ci/run does it)");
        let server = RedisServer { port, child: Some(child), password: password.map(str::to_owned), dir: None };
        // Liveness wait, not a timing assertion: the server is up once it answers PING.
        for _ in 0..200 {
            if let Ok(mut c) = server.connection().await
                && redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    /// A one-node Redis Cluster owning every slot: it refuses, as a cluster does, a command or script whose
    /// keys hash to different slots (`CROSSSLOT`), which a standalone server never checks.
    pub async fn start_cluster() -> RedisServer {
        let dir = std::env::temp_dir().join(format!("redis-cluster-{}-{}", std::process::id(), uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        let nodes = dir.join("nodes.conf");
        let (nodes_arg, dir_arg) = (nodes.to_str().unwrap().to_owned(), dir.to_str().unwrap().to_owned());
        let mut server = RedisServer::start_with(
            &["--cluster-enabled", "yes", "--cluster-config-file", &nodes_arg, "--dir", &dir_arg],
            None,
        )
        .await;
        server.dir = Some(dir);
        let _: String = server.query(redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(0).arg(16383)).await;
        // Liveness wait: the node needs a moment to call its state ok after taking the slots.
        for _ in 0..200 {
            let info: String = server.query(redis::cmd("CLUSTER").arg("INFO")).await;
            if info.contains("cluster_state:ok") {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the one-node cluster on port {} did not reach cluster_state:ok", server.port);
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://default:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?.get_multiplexed_async_connection().await
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        let mut c = self.connection().await.unwrap();
        redis::cmd("GET").arg(key).query_async(&mut c).await.unwrap()
    }

    pub async fn set(&self, key: &str, value: &str) {
        let mut c = self.connection().await.unwrap();
        redis::cmd("SET").arg(key).arg(value).query_async::<()>(&mut c).await.unwrap();
    }

    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let mut c = self.connection().await.unwrap();
        cmd.query_async(&mut c).await.unwrap()
    }

    /// The slot a key hashes to (`CLUSTER KEYSLOT`, answered by a cluster node).
    pub async fn slot(&self, key: &str) -> i64 {
        self.query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).await
    }

    /// Stops the server (a store gone mid-run).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl RedisServer {
    /// Starts counting the commands clients send (`MONITOR`), for tests that hold a turn to its round trips.
    pub async fn monitor(&self) -> Monitor {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        if let Some(password) = &self.password {
            stream.write_all(format!("AUTH {password}\r\n").as_bytes()).await.unwrap();
        }
        stream.write_all(b"MONITOR\r\n").await.unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut ok = String::new();
        if self.password.is_some() {
            reader.read_line(&mut ok).await.unwrap();
            ok.clear();
        }
        reader.read_line(&mut ok).await.unwrap();
        assert!(ok.starts_with("+OK"), "MONITOR answered {ok:?}");
        Monitor { reader }
    }
}

/// A `MONITOR` connection: every command the server runs, one line each, its source in brackets —
/// `[0 127.0.0.1:port]` for a client's, `[0 lua]` for one a script ran (not a round trip).
pub struct Monitor {
    reader: tokio::io::BufReader<tokio::net::TcpStream>,
}

const MONITOR_END: &str = "test-monitor-end";

impl Monitor {
    /// The commands clients sent since [`RedisServer::monitor`], by name, in order: a marker is sent through
    /// another connection and the stream read up to it. Commands a script ran are left out.
    pub async fn finish(mut self, server: &RedisServer) -> Vec<String> {
        use tokio::io::AsyncBufReadExt;
        let _: String = server.query(redis::cmd("ECHO").arg(MONITOR_END)).await;
        let mut commands = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line)).await;
            assert!(read.expect("MONITOR went quiet before the marker").unwrap() > 0, "MONITOR ended");
            if line.contains(MONITOR_END) {
                return commands;
            }
            // `+1764763200.123456 [0 127.0.0.1:5000] "EVALSHA" "ab…" …`
            let Some((source, rest)) = line.split_once('[').and_then(|(_, r)| r.split_once(']')) else { continue };
            if source.split_whitespace().nth(1) == Some("lua") {
                continue;
            }
            if let Some(name) = rest.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) {
                // The test's own connection's handshake (`CLIENT SETINFO`, `HELLO`) is not the function's.
                if !matches!(name.to_uppercase().as_str(), "CLIENT" | "HELLO" | "ECHO") {
                    commands.push(name.to_uppercase());
                }
            }
        }
    }
}

/// A distinct suffix per call within one test process.
fn uuid_like() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
