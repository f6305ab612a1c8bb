//! The one way upstream HTTP clients are built, so every upstream gets the same TLS and timeouts.
//!
//! reqwest is compiled with `rustls-no-provider`: we pick rustls' ring provider ourselves (no OpenSSL, no
//! aws-lc C build in the FC cross-compile) and install it once, before the first client exists.

use std::time::Duration;

use once_cell::sync::OnceCell;

static TLS_PROVIDER: OnceCell<()> = OnceCell::new();

/// Installs the process-wide rustls crypto provider (idempotent).
pub fn install_tls_provider() {
    TLS_PROVIDER.get_or_init(|| {
        // Err means another provider is already installed, which serves equally well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client builder with the settings all upstreams share: rustls, a connect timeout, pooled keep-alive
/// connections that survive between warm invocations. Each upstream adds its own timeouts and builds once.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("fc-identity-agent/", env!("CARGO_PKG_VERSION")))
}
