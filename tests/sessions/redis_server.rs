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
        let server = RedisServer { port, child: Some(child), password: password.map(str::to_owned) };
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

    /// Stops the server (a store gone mid-run).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}
