//! The stores' settings, under the names their consoles give them. Secrets (the In-App Purchase
//! key) come from the function's secret like the providers' keys, or the environment.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use storybook_core::config::Environment;
use storybook_core::domain::Invalid;
use storybook_core::domain::purchase::StoreEnvironment;

/// Apple Root CA - G3 (valid to 2039-04-30; SHA-256 63:34:3A:BF:…:3E:91:79): what the App Store's
/// signatures chain to.
const APPLE_ROOT_CA_G3: &str = include_str!("../assets/AppleRootCA-G3.pem");

/// The App Store's settings, all present or Apple unconfigured.
#[derive(Clone)]
pub struct AppleSettings {
    pub issuer_id: String,
    pub key_id: String,
    /// The In-App Purchase key (`.p8`, PEM).
    pub private_key: String,
    pub bundle_id: String,
    /// The app's Apple ID (a number): production notifications must name it.
    pub app_apple_id: i64,
    pub production_url: String,
    pub sandbox_url: String,
    /// DER roots a signature must chain to.
    pub roots: Vec<Vec<u8>>,
    /// The environments whose purchases count.
    pub environments: Vec<StoreEnvironment>,
}

impl std::fmt::Debug for AppleSettings {
    /// Everything but the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleSettings")
            .field("issuer_id", &self.issuer_id)
            .field("key_id", &self.key_id)
            .field("bundle_id", &self.bundle_id)
            .field("app_apple_id", &self.app_apple_id)
            .field("production_url", &self.production_url)
            .field("sandbox_url", &self.sandbox_url)
            .field("roots", &self.roots.len())
            .field("environments", &self.environments)
            .finish_non_exhaustive()
    }
}

/// Google Play's settings, all present or Google unconfigured.
#[derive(Clone)]
pub struct GoogleSettings {
    pub package_name: String,
    /// From the service account's JSON key.
    pub client_email: String,
    pub private_key: String,
    pub token_uri: String,
    pub api_url: String,
    /// Whether test purchases (license testers') count, beside real ones.
    pub environments: Vec<StoreEnvironment>,
    /// Real-time developer notifications by Pub/Sub push; `None`: not read.
    pub push: Option<PushSettings>,
}

/// Who may push Google's notifications: Pub/Sub's OIDC token for `audience`, from
/// `service_account`, signed by a key at `jwks_url`.
#[derive(Debug, Clone)]
pub struct PushSettings {
    pub audience: String,
    pub service_account: String,
    pub jwks_url: String,
}

impl std::fmt::Debug for GoogleSettings {
    /// Everything but the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleSettings")
            .field("package_name", &self.package_name)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("api_url", &self.api_url)
            .field("environments", &self.environments)
            .field("push", &self.push)
            .finish_non_exhaustive()
    }
}

/// Every store's settings.
#[derive(Clone, Default)]
pub struct StoreSettings {
    pub apple: Option<AppleSettings>,
    pub google: Option<GoogleSettings>,
    /// `IAP_WEBHOOK_SECRET`: when set, the app contract's webhook body (a trusted bridge's
    /// report, `{transaction_id, status}`) is accepted with this `X-Webhook-Token`.
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for StoreSettings {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("apple", &self.apple)
            .field("google", &self.google)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl StoreSettings {
    /// Whether anything here is configured (else a server is given no marketplace).
    pub fn any(&self) -> bool {
        self.apple.is_some() || self.google.is_some() || self.webhook_secret.is_some()
    }
}

pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl StoreSettings {
    pub fn from_lookup(lookup: Lookup, environment: Environment) -> Result<Self, Invalid> {
        let webhook_secret = set(lookup, "IAP_WEBHOOK_SECRET");
        if webhook_secret
            .as_ref()
            .is_some_and(|secret| secret.len() < 32)
        {
            return Err(Invalid::new(
                "IAP_WEBHOOK_SECRET must be at least 32 characters",
            ));
        }
        Ok(Self {
            apple: apple(lookup, environment)?,
            google: google(lookup, environment)?,
            webhook_secret,
        })
    }
}

fn set(lookup: Lookup, name: &str) -> Option<String> {
    lookup(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The variables that configure Apple: all or none.
const APPLE_REQUIRED: [&str; 5] = [
    "APPLE_ISSUER_ID",
    "APPLE_KEY_ID",
    "APPLE_PRIVATE_KEY",
    "APPLE_BUNDLE_ID",
    "APPLE_APP_APPLE_ID",
];

fn apple(lookup: Lookup, environment: Environment) -> Result<Option<AppleSettings>, Invalid> {
    let given: Vec<Option<String>> = APPLE_REQUIRED.iter().map(|n| set(lookup, n)).collect();
    if given.iter().all(Option::is_none) {
        return Ok(None);
    }
    let missing: Vec<&str> = APPLE_REQUIRED
        .iter()
        .zip(&given)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(Invalid::new(format!(
            "the App Store needs {} as well",
            missing.join(", ")
        )));
    }
    let [issuer_id, key_id, private_key, bundle_id, app_apple_id] =
        <[Option<String>; 5]>::try_from(given).expect("five names, five values");
    let app_apple_id = app_apple_id
        .unwrap_or_default()
        .parse()
        .map_err(|_| Invalid::new("APPLE_APP_APPLE_ID must be the app's Apple ID (a number)"))?;
    let roots_pem =
        set(lookup, "APPLE_ROOT_CERTIFICATES").unwrap_or_else(|| APPLE_ROOT_CA_G3.into());
    let roots: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(roots_pem.as_bytes())
        .map(|root| root.map(|der| der.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| Invalid::new("APPLE_ROOT_CERTIFICATES must be certificates in PEM"))?;
    if roots.is_empty() {
        return Err(Invalid::new("APPLE_ROOT_CERTIFICATES holds no certificate"));
    }
    Ok(Some(AppleSettings {
        issuer_id: issuer_id.unwrap_or_default(),
        key_id: key_id.unwrap_or_default(),
        // A key pasted into one line keeps its line breaks as `\n`.
        private_key: private_key.unwrap_or_default().replace("\\n", "\n"),
        bundle_id: bundle_id.unwrap_or_default(),
        app_apple_id,
        production_url: set(lookup, "APP_STORE_API_URL")
            .unwrap_or_else(|| "https://api.storekit.apple.com".into()),
        sandbox_url: set(lookup, "APP_STORE_SANDBOX_API_URL")
            .unwrap_or_else(|| "https://api.storekit-sandbox.apple.com".into()),
        roots,
        environments: environments(lookup, environment)?,
    }))
}

/// The service account's JSON key, as Google's console gives it.
#[derive(serde::Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default = "google_token_uri")]
    token_uri: String,
}

fn google_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

fn google(lookup: Lookup, environment: Environment) -> Result<Option<GoogleSettings>, Invalid> {
    let (package, account) = (
        set(lookup, "GOOGLE_PLAY_PACKAGE_NAME"),
        set(lookup, "GOOGLE_SERVICE_ACCOUNT_JSON"),
    );
    let (package_name, account) = match (package, account) {
        (None, None) => return Ok(None),
        (Some(package), Some(account)) => (package, account),
        _ => {
            return Err(Invalid::new(
                "Google Play needs both GOOGLE_PLAY_PACKAGE_NAME and GOOGLE_SERVICE_ACCOUNT_JSON",
            ));
        }
    };
    let account: ServiceAccount = serde_json::from_str(&account).map_err(|_| {
        Invalid::new("GOOGLE_SERVICE_ACCOUNT_JSON must be the service account's JSON key")
    })?;
    Ok(Some(GoogleSettings {
        package_name,
        client_email: account.client_email,
        private_key: account.private_key,
        token_uri: account.token_uri,
        api_url: set(lookup, "GOOGLE_PLAY_API_URL")
            .unwrap_or_else(|| "https://androidpublisher.googleapis.com".into()),
        // Test purchases cost nothing: real ones only in `prod`.
        environments: match environment {
            Environment::Prod => vec![StoreEnvironment::Production],
            _ => vec![StoreEnvironment::Production, StoreEnvironment::Sandbox],
        },
        push: match (
            set(lookup, "PUBSUB_PUSH_AUDIENCE"),
            set(lookup, "PUBSUB_PUSH_SERVICE_ACCOUNT"),
        ) {
            (Some(audience), Some(service_account)) => Some(PushSettings {
                audience,
                service_account,
                jwks_url: set(lookup, "GOOGLE_JWKS_URL")
                    .unwrap_or_else(|| "https://www.googleapis.com/oauth2/v3/certs".into()),
            }),
            (None, None) => None,
            _ => {
                return Err(Invalid::new(
                    "Google's push needs both PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNT",
                ));
            }
        },
    }))
}

/// `APPLE_ENVIRONMENTS`: `Production` and, where test purchases may give credits, `Sandbox`
/// (the default outside `prod`). Apple's unsigned test environments are never accepted.
fn environments(
    lookup: Lookup,
    environment: Environment,
) -> Result<Vec<StoreEnvironment>, Invalid> {
    let Some(raw) = set(lookup, "APPLE_ENVIRONMENTS") else {
        return Ok(match environment {
            Environment::Prod => vec![StoreEnvironment::Production],
            _ => vec![StoreEnvironment::Production, StoreEnvironment::Sandbox],
        });
    };
    raw.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| match name {
            "Production" => Ok(StoreEnvironment::Production),
            "Sandbox" => Ok(StoreEnvironment::Sandbox),
            other => Err(Invalid::new(format!(
                "APPLE_ENVIRONMENTS may name Production and Sandbox, not {other:?}"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)], environment: Environment) -> Result<StoreSettings, Invalid> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StoreSettings::from_lookup(&|name| map.get(name).cloned(), environment)
    }

    const APPLE: [(&str, &str); 5] = [
        ("APPLE_ISSUER_ID", "57246542-96fe-1a63-e053-0824d011072a"),
        ("APPLE_KEY_ID", "2X9R4HXF34"),
        (
            "APPLE_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----",
        ),
        ("APPLE_BUNDLE_ID", "com.example.storybook"),
        ("APPLE_APP_APPLE_ID", "1234567890"),
    ];

    #[test]
    fn apple_is_all_or_nothing() {
        assert!(settings(&[], Environment::Prod).unwrap().apple.is_none());
        let error = settings(&APPLE[..2], Environment::Prod).unwrap_err();
        assert!(error.0.contains("APPLE_PRIVATE_KEY"), "{error}");
        let apple = settings(&APPLE, Environment::Prod).unwrap().apple.unwrap();
        assert_eq!(apple.roots.len(), 1, "Apple Root CA - G3 built in");
        assert!(apple.private_key.contains('\n'));
        assert_eq!(apple.environments, [StoreEnvironment::Production]);
        assert!(!format!("{apple:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn sandbox_counts_outside_prod_or_where_named() {
        let apple = settings(&APPLE, Environment::Dev).unwrap().apple.unwrap();
        assert_eq!(
            apple.environments,
            [StoreEnvironment::Production, StoreEnvironment::Sandbox]
        );
        let mut vars = APPLE.to_vec();
        vars.push(("APPLE_ENVIRONMENTS", "Production,Sandbox"));
        let apple = settings(&vars, Environment::Prod).unwrap().apple.unwrap();
        assert_eq!(apple.environments.len(), 2);
        vars.pop();
        vars.push(("APPLE_ENVIRONMENTS", "Production,LocalTesting"));
        assert!(settings(&vars, Environment::Prod).is_err());
    }
}
