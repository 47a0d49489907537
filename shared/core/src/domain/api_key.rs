//! API keys for operators and servers: `sbk_live_…` / `sbk_test_…` followed by 32 random bytes in
//! base62. Shown once when made; stored only as a keyed hash.

use super::Invalid;
use super::credential::CredentialHash;
use chrono::{DateTime, Utc};
use std::fmt;

const LIVE_PREFIX: &str = "sbk_live_";
const TEST_PREFIX: &str = "sbk_test_";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 32 bytes need 43 base62 digits (62^43 > 2^256).
const SECRET_DIGITS: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEnvironment {
    Live,
    Test,
}

impl KeyEnvironment {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "live",
            KeyEnvironment::Test => "test",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "live" => Ok(KeyEnvironment::Live),
            "test" => Ok(KeyEnvironment::Test),
            other => Err(Invalid::new(format!("unknown key environment {other:?}"))),
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            KeyEnvironment::Live => LIVE_PREFIX,
            KeyEnvironment::Test => TEST_PREFIX,
        }
    }
}

/// What a key may do. `Admin` implies the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(Invalid::new(format!("unknown scope {other:?}"))),
        }
    }
}

/// The full secret of an API key. Only its format is checked here (cheap, before any read).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret {
    text: String,
    environment: KeyEnvironment,
}

impl ApiKeySecret {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let (environment, digits) = if let Some(rest) = raw.strip_prefix(LIVE_PREFIX) {
            (KeyEnvironment::Live, rest)
        } else if let Some(rest) = raw.strip_prefix(TEST_PREFIX) {
            (KeyEnvironment::Test, rest)
        } else {
            return Err(Invalid::new(
                "an API key starts with sbk_live_ or sbk_test_",
            ));
        };
        if digits.len() != SECRET_DIGITS || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Invalid::new(
                "an API key is its prefix and 43 letters or digits",
            ));
        }
        Ok(Self {
            text: raw.to_owned(),
            environment,
        })
    }

    /// A fresh key from 32 bytes of the operating system's randomness.
    pub fn generate(environment: KeyEnvironment) -> Self {
        let digits = base62(&super::random_bytes::<32>());
        Self {
            text: format!("{}{digits}", environment.prefix()),
            environment,
        }
    }

    pub fn environment(&self) -> KeyEnvironment {
        self.environment
    }

    /// What may be shown again later to tell keys apart: the prefix and four digits.
    pub fn display_prefix(&self) -> String {
        self.text[..self.environment.prefix().len() + 4].to_owned()
    }

    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}***)", self.environment.prefix())
    }
}

/// Fixed-width base62 of a big-endian number, by repeated division.
fn base62(bytes: &[u8; 32]) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(SECRET_DIGITS);
    for _ in 0..SECRET_DIGITS {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        digits.push(BASE62[remainder as usize]);
    }
    digits.reverse();
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

/// A stored API key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub name: String,
    pub hash: CredentialHash,
    pub display_prefix: String,
    pub environment: KeyEnvironment,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Addresses or networks (CIDR) the key may be used from; empty means anywhere.
    pub allowed_ips: Vec<String>,
    /// The key that replaced this one; it keeps working until `expires_at` (the grace period).
    pub rotated_to: Option<String>,
}

/// An allow-list entry: an IPv4/IPv6 address or network in CIDR notation.
pub fn parse_ip_rule(raw: &str) -> Result<ipnet::IpNet, Invalid> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| Invalid::new(format!("{raw:?} is not an IP address or CIDR network")))
}

impl ApiKeyRecord {
    /// True when `client_ip` may use the key. Rules were checked when stored; an unreadable one
    /// (or an unreadable client address) allows nothing.
    pub fn allows_ip(&self, client_ip: &str) -> bool {
        if self.allowed_ips.is_empty() {
            return true;
        }
        let Ok(ip) = client_ip.parse::<std::net::IpAddr>() else {
            return false;
        };
        self.allowed_ips
            .iter()
            .filter_map(|rule| parse_ip_rule(rule).ok())
            .any(|net| net.contains(&ip))
    }

    pub fn new_id() -> String {
        format!("key_{}", &base62(&super::random_bytes::<32>())[..16])
    }

    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == needed || *s == Scope::Admin)
    }

    /// Usable now: not revoked and not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }

    /// `revoked`, `expired` or `active`, as operators see it at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some_and(|at| at <= now) {
            "revoked"
        } else if self.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = ApiKeySecret::generate(KeyEnvironment::Live);
        let b = ApiKeySecret::generate(KeyEnvironment::Live);
        assert_ne!(a, b);
        assert_eq!(ApiKeySecret::parse(a.expose()).unwrap(), a);
        assert_eq!(a.expose().len(), LIVE_PREFIX.len() + SECRET_DIGITS);
        let t = ApiKeySecret::generate(KeyEnvironment::Test);
        assert_eq!(
            ApiKeySecret::parse(t.expose()).unwrap().environment(),
            KeyEnvironment::Test
        );
    }

    #[test]
    fn base62_is_fixed_width_and_exact() {
        assert_eq!(base62(&[0; 32]), "0".repeat(43));
        let mut one = [0u8; 32];
        one[31] = 63;
        assert_eq!(base62(&one), format!("{}11", "0".repeat(41)));
        // 2^256 - 1 fits in 43 digits.
        assert!(base62(&[0xff; 32]).starts_with(|c: char| c != '0'));
    }

    #[test]
    fn refuses_bad_formats() {
        let good = ApiKeySecret::generate(KeyEnvironment::Live);
        let digits = &good.expose()[LIVE_PREFIX.len()..];
        for bad in [
            String::new(),
            format!("sbk_prod_{digits}"),
            format!("{LIVE_PREFIX}{}", &digits[1..]),
            format!("{LIVE_PREFIX}{digits}0"),
            format!("{LIVE_PREFIX}{}-", &digits[1..]),
            format!("{LIVE_PREFIX}{}é", &digits[2..]),
        ] {
            assert!(ApiKeySecret::parse(&bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn admin_scope_implies_the_others() {
        let record = ApiKeyRecord {
            key_id: ApiKeyRecord::new_id(),
            name: "ops".into(),
            hash: CredentialHash::from_stored("00".into()),
            display_prefix: "sbk_live_abcd".into(),
            environment: KeyEnvironment::Live,
            scopes: vec![Scope::Admin],
            created_at: Utc::now(),
            expires_at: None,
            revoked_at: None,
            allowed_ips: vec![],
            rotated_to: None,
        };
        assert!(record.allows(Scope::Read) && record.allows(Scope::Write));
        assert!(record.allows_ip("203.0.113.9"));
        let fenced = ApiKeyRecord {
            allowed_ips: vec!["10.0.0.0/8".into(), "2001:db8::1".into()],
            ..record.clone()
        };
        assert!(fenced.allows_ip("10.1.2.3") && fenced.allows_ip("2001:db8::1"));
        assert!(!fenced.allows_ip("11.0.0.1") && !fenced.allows_ip("unknown"));
        assert!(parse_ip_rule("300.1.1.1").is_err() && parse_ip_rule("10.0.0.0/33").is_err());
        let reader = ApiKeyRecord {
            scopes: vec![Scope::Read],
            ..record
        };
        assert!(!reader.allows(Scope::Admin));
    }
}
