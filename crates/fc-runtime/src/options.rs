//! How the server behaves.

use std::time::Duration;

/// How the server behaves; [`Options::default`] is what FC needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The port to listen on (always on `0.0.0.0`). Default: `FC_CUSTOM_LISTEN_PORT` (set by FC from
    /// `customRuntimeConfig.port`), else `FC_SERVER_PORT` (FC's local emulation), else `9000`.
    pub port: u16,
    /// The function timeout assumed when FC does not send `x-fc-function-timeout`. Default: 600 s.
    pub default_timeout: Duration,
    /// A request head must arrive within this time once its first byte has; idle keep-alive connections
    /// are never timed out (FC holds them for hours). Default: 10 s.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after SIGTERM/SIGINT, and how long `/pre-stop` waits for them.
    /// Default: 60 s.
    pub shutdown_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: port_from_env(),
            default_timeout: Duration::from_secs(600),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(60),
        }
    }
}

const DEFAULT_PORT: u16 = 9000;

/// FC's port variable if set, else the local emulation's, else 9000. A value that is not a port number is
/// not silently replaced by the next variable: FC would be waiting on the port it named.
fn port_from_env() -> u16 {
    let Some((name, value)) = ["FC_CUSTOM_LISTEN_PORT", "FC_SERVER_PORT"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
    else {
        return DEFAULT_PORT;
    };
    value.trim().parse().unwrap_or_else(|_| {
        tracing::warn!(variable = name, value, "not a port number; listening on {DEFAULT_PORT}");
        DEFAULT_PORT
    })
}
