//! The SDK's configuration, the S3 client's addressing, and how SDK errors are described.

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK's shared configuration from the environment (region, credentials and, for
/// `moto_server` or other emulators, `AWS_ENDPOINT_URL`), over [`https_client`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(HttpsOnFirstUse::default())
        .load()
        .await
}

/// The HTTPS client, made when the first request goes out: its TLS setup (the roots parsed) is
/// the costliest part of making an SDK client, and a function's first answer may need no AWS
/// call at all.
#[derive(Debug, Clone, Default)]
struct HttpsOnFirstUse(
    std::sync::Arc<std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient>>,
);

impl aws_smithy_runtime_api::client::http::HttpClient for HttpsOnFirstUse {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0
            .get_or_init(https_client)
            .http_connector(settings, components)
    }
}

/// The SDK's HTTPS client, trusting the web PKI's roots compiled into the binary. The SDK's
/// default reads the platform's store when a client is made, at every cold start: traced, 147
/// files under `/etc/ssl/certs`, most of an API function's start-up.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let mut roots = TrustStore::empty();
    for root in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        roots.add_pem_certificate(pem(root));
    }
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(roots)
                .build()
                .expect("a TLS context from compiled-in roots"),
        )
        .build_https()
}

/// A DER certificate as PEM (what the SDK's trust store takes).
fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem.into_bytes()
}

#[cfg(feature = "s3")]
/// An S3 client; path-style addressing when an endpoint is overridden (emulators have no
/// per-bucket host names).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// SDK errors carry their whole chain in `DisplayErrorContext`; plain `Display` says only
/// "service error", which helps nobody reading a log.
#[cfg(any(
    feature = "dynamodb",
    feature = "s3",
    feature = "sqs",
    feature = "secrets",
    feature = "deploy"
))]
pub(crate) fn describe<E: std::error::Error + Send + Sync + 'static>(error: E) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        aws_smithy_types::error::display::DisplayErrorContext(&error)
    )
}

/// An SDK client made on first use. Making one costs a millisecond or more (its TLS setup, its
/// runtime plugins), so a function answers its first request having made only the clients that
/// request needs, and the health check none.
pub struct LazyClient<C> {
    make: std::sync::Arc<dyn Fn() -> C + Send + Sync>,
    client: std::sync::Arc<std::sync::OnceLock<C>>,
}

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        Self {
            make: self.make.clone(),
            client: self.client.clone(),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> LazyClient<C> {
    /// A client made from `config` by `make` when first used.
    pub fn from_config(config: &SdkConfig, make: fn(&SdkConfig) -> C) -> Self {
        let config = config.clone();
        Self {
            make: std::sync::Arc::new(move || make(&config)),
            client: Default::default(),
        }
    }
}

/// A client already made (SDK clients are cheap handles to share).
impl<C: Clone + Send + Sync + 'static> From<C> for LazyClient<C> {
    fn from(client: C) -> Self {
        Self {
            make: std::sync::Arc::new(move || client.clone()),
            client: Default::default(),
        }
    }
}

impl<C> std::ops::Deref for LazyClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.client.get_or_init(|| (self.make)())
    }
}
