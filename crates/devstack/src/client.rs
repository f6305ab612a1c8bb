//! HTTP clients of the stand-ins (the dev binary waiting for the function, the bench driving it), built
//! here rather than borrowed from the function: these tools are not the function's code.

use std::sync::Once;
use std::time::Duration;

/// Connecting to a loopback port either works at once or not at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static TLS_PROVIDER: Once = Once::new();

/// A reqwest client builder for loopback HTTP: no proxy (a developer's `HTTP_PROXY` must not catch
/// `127.0.0.1`), `TCP_NODELAY`, rustls with the ring provider (reqwest is built with
/// `rustls-no-provider`, as in the function: no OpenSSL, no aws-lc C build).
pub fn client_builder() -> reqwest::ClientBuilder {
    TLS_PROVIDER.call_once(|| {
        // Err means another provider is already installed, which serves equally well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().no_proxy().tcp_nodelay(true).connect_timeout(CONNECT_TIMEOUT)
}
