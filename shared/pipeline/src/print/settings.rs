//! Lulu's settings, read as the providers' keys are (the secret, or the environment).

use super::files::trim_of;
use storybook_core::config::Environment;
use storybook_core::config::providers::Lookup;
use storybook_core::domain::Invalid;

/// Lulu's sandbox: its own account and keys; jobs there are never printed.
pub const LULU_SANDBOX: &str = "https://api.sandbox.lulu.com";
pub const LULU_PRODUCTION: &str = "https://api.lulu.com";
/// An 8.5-inch square full-colour hardcover (casewrap), premium paper, gloss.
pub const DEFAULT_PACKAGE: &str = "0850X0850FCPRECW080CW444GXX";

/// Lulu's settings, read as the providers' keys are (the secret, or the environment).
#[derive(Clone)]
pub struct LuluSettings {
    pub client_key: String,
    pub client_secret: String,
    pub api_url: String,
    pub package_id: String,
    pub contact_email: String,
    /// Lulu's shipping level; `None`: the cheapest.
    pub shipping_level: Option<String>,
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for LuluSettings {
    /// Never a key or a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuluSettings")
            .field("api_url", &self.api_url)
            .field("package_id", &self.package_id)
            .finish_non_exhaustive()
    }
}

impl LuluSettings {
    /// Lulu is configured when `LULU_CLIENT_KEY` and `LULU_CLIENT_SECRET` are set (with
    /// `LULU_CONTACT_EMAIL`, which every job names); none of them: no printer. The API is the
    /// sandbox outside `prod` unless `LULU_API_URL` says otherwise.
    pub fn from_lookup(lookup: Lookup, environment: Environment) -> Result<Option<Self>, Invalid> {
        let set = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let (key, secret, email) = (
            set("LULU_CLIENT_KEY"),
            set("LULU_CLIENT_SECRET"),
            set("LULU_CONTACT_EMAIL"),
        );
        let (Some(client_key), Some(client_secret), Some(contact_email)) =
            (key.clone(), secret.clone(), email.clone())
        else {
            if key.is_some() || secret.is_some() {
                return Err(Invalid::new(
                    "Lulu needs LULU_CLIENT_KEY, LULU_CLIENT_SECRET and LULU_CONTACT_EMAIL together",
                ));
            }
            return Ok(None);
        };
        let package_id = set("LULU_POD_PACKAGE_ID").unwrap_or_else(|| DEFAULT_PACKAGE.into());
        if trim_of(&package_id).is_none() {
            return Err(Invalid::new(
                "LULU_POD_PACKAGE_ID does not start with a trim size (WWWWXHHHH)",
            ));
        }
        let default_url = if environment == Environment::Prod {
            LULU_PRODUCTION
        } else {
            LULU_SANDBOX
        };
        Ok(Some(LuluSettings {
            client_key,
            client_secret: client_secret.clone(),
            api_url: set("LULU_API_URL").unwrap_or_else(|| default_url.into()),
            package_id,
            contact_email,
            shipping_level: set("LULU_SHIPPING_LEVEL"),
            // Lulu signs its webhooks with the API secret unless told otherwise.
            webhook_secret: set("LULU_WEBHOOK_SECRET").or_else(|| Some(client_secret.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(
        vars: &[(&str, &str)],
        environment: Environment,
    ) -> Result<Option<LuluSettings>, Invalid> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LuluSettings::from_lookup(&|name| vars.get(name).cloned(), environment)
    }

    const SET: &[(&str, &str)] = &[
        ("LULU_CLIENT_KEY", "key"),
        ("LULU_CLIENT_SECRET", "secret"),
        ("LULU_CONTACT_EMAIL", "orders@example.com"),
    ];

    #[test]
    fn the_sandbox_outside_prod_and_lulu_in_prod() {
        assert!(
            read(&[], Environment::Prod).unwrap().is_none(),
            "no printer"
        );
        let dev = read(SET, Environment::Dev).unwrap().unwrap();
        assert_eq!(dev.api_url, LULU_SANDBOX);
        assert_eq!(dev.package_id, DEFAULT_PACKAGE);
        assert_eq!(
            dev.webhook_secret.as_deref(),
            Some("secret"),
            "Lulu signs with the API secret"
        );
        let prod = read(SET, Environment::Prod).unwrap().unwrap();
        assert_eq!(prod.api_url, LULU_PRODUCTION);
        assert!(
            !format!("{prod:?}").contains("secret"),
            "never a secret in a log"
        );
    }

    #[test]
    fn half_a_configuration_stops_the_start() {
        assert!(read(&SET[..1], Environment::Dev).is_err());
        let mut bad_package = SET.to_vec();
        bad_package.push(("LULU_POD_PACKAGE_ID", "hardcover"));
        assert!(read(&bad_package, Environment::Dev).is_err());
    }
}
