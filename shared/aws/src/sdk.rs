//! The SDK's configuration, the S3 client's addressing, and how SDK errors are described.

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK's shared configuration from the environment (region, credentials and, for
/// `moto_server` or other emulators, `AWS_ENDPOINT_URL`), over [`https_client`].
pub async fn sdk_config() -> SdkConfig {
    if let Some(config) = lambda_config(|name| std::env::var(name).ok()) {
        return config;
    }
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(HttpsOnFirstUse::default())
        .load()
        .await
}

/// On Lambda, what the default chain would find there, read straight from the function's
/// environment: its region, its role's credentials (Lambda sets them as variables) and an
/// endpoint override. The chain's search beyond them (profile files, SSO, web identity, the
/// container and instance metadata services) finds nothing more on Lambda, and cost most of a
/// millisecond of every cold start. Anywhere else (`sam local`, tests, a laptop), `None`.
fn lambda_config(env: impl Fn(&str) -> Option<String>) -> Option<SdkConfig> {
    use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
    use aws_credential_types::provider::SharedCredentialsProvider;
    env("AWS_LAMBDA_FUNCTION_NAME")?;
    let region = env("AWS_REGION")?;
    env("AWS_ACCESS_KEY_ID")?;
    env("AWS_SECRET_ACCESS_KEY")?;
    let builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(HttpsOnFirstUse::default())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .time_source(aws_smithy_async::time::SystemTimeSource::new());
    Some(match env("AWS_ENDPOINT_URL") {
        Some(url) => builder.endpoint_url(url).build(),
        None => builder.build(),
    })
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
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda(extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut vars: std::collections::HashMap<String, String> = [
            ("AWS_LAMBDA_FUNCTION_NAME", "api-health"),
            ("AWS_REGION", "ap-northeast-2"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        move |name| vars.get(name).cloned()
    }

    #[tokio::test]
    async fn on_lambda_the_configuration_is_read_from_the_environment() {
        let config = lambda_config(lambda(&[])).expect("a Lambda environment");
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-northeast-2"));
        assert!(config.credentials_provider().is_some() && config.endpoint_url().is_none());
        assert!(config.sleep_impl().is_some() && config.time_source().is_some());
        let emulated = lambda_config(lambda(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]));
        assert_eq!(
            emulated.unwrap().endpoint_url(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn elsewhere_the_default_chain_decides() {
        let not_lambda = |name: &str| (name != "AWS_LAMBDA_FUNCTION_NAME").then(|| "x".to_owned());
        assert!(lambda_config(not_lambda).is_none());
        // Lambda without credential variables (they come from elsewhere): the chain finds them.
        let without_keys = |name: &str| (name != "AWS_ACCESS_KEY_ID").then(|| "x".to_owned());
        assert!(lambda_config(without_keys).is_none());
    }
}
