//! The one way upstream HTTP clients are built, so every upstream gets the same TLS and timeouts, and the one
//! type every upstream is addressed by ([`Endpoint`], validated once, in `config.rs`).
//!
//! reqwest is compiled with `rustls-no-provider`: we pick rustls' ring provider ourselves (no OpenSSL, no
//! aws-lc C build in the FC cross-compile) and install it once, before the first client exists.
//!
//! Certificates are checked by rustls-platform-verifier against the system's roots, as reqwest would do on
//! its own; but reqwest reads and parses every file in `/etc/ssl/certs` for each client it builds, at
//! build time. That was most of the cold start (three clients, ~440 files) and a root store per client in
//! memory. Here all clients share one TLS configuration whose verifier loads the roots once, on the first
//! HTTPS handshake.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::OnceCell;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::secret::redact_url;

static TLS_PROVIDER: OnceCell<()> = OnceCell::new();
static TLS_CONFIG: OnceCell<(rustls::ClientConfig, Arc<LazyPlatformVerifier>)> = OnceCell::new();

/// Installs the process-wide rustls crypto provider (idempotent).
pub(crate) fn install_tls_provider() {
    TLS_PROVIDER.get_or_init(|| {
        // Err means another provider is already installed, which serves equally well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client builder with the settings all upstreams share: rustls, a connect timeout, pooled keep-alive
/// connections that survive between warm invocations, and one resolver for the process that shares the
/// lookups of a name in flight at the same time ([`crate::dns`]). Each upstream adds its own timeouts and
/// builds once.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config().0.clone())
        .dns_resolver(crate::dns::resolver())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("fc-identity-agent/", env!("CARGO_PKG_VERSION")))
}

/// An http(s) URL with a host: what every upstream (DashScope, MCP servers, Agent Identity, the credentials
/// URI) is reached at. Parsed and checked once, by the config parser, so clients take it as given and have no
/// "invalid URL" error of their own. `Debug` shows it redacted ([`redact_url`]): gateways put keys in queries.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint(reqwest::Url);

/// Why a string is not an [`Endpoint`]. Never repeats the string: it may carry a key (config adds the
/// variable's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The URL parser's reason (e.g. "relative URL without a base").
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("must be an http(s) URL with a host")]
    NotHttp,
}

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Endpoint, EndpointError> {
        let url = reqwest::Url::parse(raw).map_err(|e| EndpointError::NotAUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError::NotHttp);
        }
        Ok(Endpoint(url))
    }

    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.0
    }

    /// The full URL, query included, for the one place that sends to it.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host name (never empty: checked by [`Endpoint::parse`]).
    pub(crate) fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The URL as errors and logs show it ([`redact_url`]).
    pub(crate) fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// TLS 1.2 and 1.3 with the ring provider and the system's roots (loaded on first use), no client
/// certificate; what reqwest builds by default, minus the eager root loading.
fn tls_config() -> &'static (rustls::ClientConfig, Arc<LazyPlatformVerifier>) {
    TLS_CONFIG.get_or_init(|| {
        install_tls_provider();
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let verifier = Arc::new(LazyPlatformVerifier::new(provider.clone()));
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        (config, verifier)
    })
}

/// rustls-platform-verifier's verifier, built on the first certificate to verify.
#[derive(Debug)]
struct LazyPlatformVerifier {
    provider: Arc<CryptoProvider>,
    // A failure (no readable roots) is kept: the system's certificate files will not appear later, and
    // every handshake then fails with the same cause instead of rereading the directory.
    inner: OnceCell<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl LazyPlatformVerifier {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        LazyPlatformVerifier { provider, inner: OnceCell::new() }
    }

    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.inner
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    /// Asked while writing the ClientHello, before any certificate arrives: answered from the provider
    /// (which is what the platform verifier answers too) so a plain-HTTP-only process never loads roots.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls_with_a_host_and_debug_redacted() {
        let endpoint = Endpoint::parse("https://u:p@gw.example.com:8443/mcp?key=K").unwrap();
        assert_eq!(endpoint.host(), "gw.example.com");
        assert_eq!(endpoint.as_str(), "https://u:p@gw.example.com:8443/mcp?key=K");
        assert_eq!(format!("{endpoint:?}"), "https://gw.example.com:8443/mcp");
        assert!(matches!(Endpoint::parse("not a url"), Err(EndpointError::NotAUrl(_))));
        for bad in ["ftp://x/mcp", "mailto:a@b", "file:///etc/passwd"] {
            assert_eq!(Endpoint::parse(bad), Err(EndpointError::NotHttp), "{bad}");
        }
    }

    #[test]
    fn building_clients_reads_no_roots() {
        let _a = client_builder().build().expect("client builds");
        let _b = client_builder().build().expect("client builds");
        assert!(tls_config().1.inner.get().is_none(), "roots loaded before any handshake");
    }

    #[test]
    fn the_first_certificate_loads_the_platform_verifier_which_decides() {
        let verifier = LazyPlatformVerifier::new(Arc::new(rustls::crypto::ring::default_provider()));
        assert!(!verifier.supported_verify_schemes().is_empty());
        assert!(verifier.inner.get().is_none());
        let name = ServerName::try_from("example.com").unwrap();
        let not_a_certificate = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let verdict = verifier.verify_server_cert(&not_a_certificate, &[], &name, &[], UnixTime::now());
        assert!(verdict.is_err());
        assert!(verifier.inner.get().is_some(), "the platform verifier was not consulted");
    }
}
