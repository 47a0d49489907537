//! SSRF-safe fetching of the URLs providers hand back (an output picture on a CDN): allow-listed
//! hosts only, `https` only (plain `http` and loopback only where tests ask for them), every
//! address a name resolves to checked, the connection made to the checked address (our resolver
//! is the one that answers the connector, so DNS rebinding cannot swap it), redirects re-checked
//! (at most three), a size cap and the expected content type checked while the body streams.

use bytes::Bytes;
use futures::StreamExt;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use storybook_core::ports::blobs::BlobStream;

/// What may be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Host names (`cdn.example.com`) or suffixes (`*.example.com`); nothing else is fetched.
    pub allowed_hosts: Vec<String>,
    /// Tests only: plain `http`, any port, and loopback addresses (an in-process server).
    pub allow_loopback_http: bool,
    /// The largest body, checked while it streams.
    pub max_bytes: u64,
    pub timeout: Duration,
    pub max_redirects: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allow_loopback_http: false,
            max_bytes: 10 * 1024 * 1024,
            timeout: Duration::from_secs(60),
            max_redirects: 3,
        }
    }
}

/// Why a URL was not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the body is not what was expected: {0}")]
    WrongType(String),
    #[error("fetching failed: {0}")]
    Failed(String),
    #[error("fetching timed out")]
    Timeout,
}

/// Addresses no outside URL may reach: private, loopback, link-local (cloud metadata included),
/// CGNAT, multicast, unspecified, reserved, documentation, benchmarking, NAT64, 6to4, Teredo and
/// unique-local (`fd00:ec2::254`).
fn forbidden_networks() -> &'static [IpNet] {
    static NETS: std::sync::OnceLock<Vec<IpNet>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| {
        [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "::/128",
            "::1/128",
            "::/96",
            "::ffff:0:0/96",
            "64:ff9b::/96",
            "64:ff9b:1::/48",
            "100::/64",
            "2001::/32",
            "2001:db8::/32",
            "2002::/16",
            "fc00::/7",
            "fe80::/10",
            "fec0::/10",
            "ff00::/8",
        ]
        .iter()
        .map(|net| net.parse().expect("a fixed network"))
        .collect()
    })
}

/// Whether an outside URL may connect to `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    let ip = match ip {
        // An IPv4 address written as IPv6 is judged as the IPv4 address.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    forbidden_networks().iter().any(|net| match (net, ip) {
        (IpNet::V4(net), IpAddr::V4(v4)) => Ipv4Net::contains(net, &v4),
        (IpNet::V6(net), IpAddr::V6(v6)) => Ipv6Net::contains(net, &v6),
        _ => false,
    })
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::LOCALHOST
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4 == Ipv4Addr::LOCALHOST)
        }
    }
}

impl FetchPolicy {
    fn address_allowed(&self, ip: IpAddr) -> bool {
        !is_forbidden(ip) || (self.allow_loopback_http && is_loopback(ip))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.iter().any(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            match entry.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == entry,
            }
        })
    }

    /// Everything about a URL that can be judged before any name is resolved.
    pub fn check_url(&self, raw: &str) -> Result<reqwest::Url, FetchError> {
        let refuse = |why: &str| Err(FetchError::Refused(why.to_owned()));
        let url =
            reqwest::Url::parse(raw).map_err(|e| FetchError::Refused(format!("not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback_http => {}
            other => return refuse(&format!("the scheme {other:?} is not fetched")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("URLs with credentials are not fetched");
        }
        if !self.allow_loopback_http && url.port().is_some_and(|p| p != 443) {
            return refuse("only the default port is fetched");
        }
        let host = match url.host() {
            None => return refuse("a URL without a host"),
            Some(url::Host::Domain(name)) => {
                let bare = name.trim_end_matches('.').to_ascii_lowercase();
                // Names that only ever mean this machine or its private network.
                if !self.allow_loopback_http
                    && (bare == "localhost"
                        || [".localhost", ".local", ".internal", ".localdomain"]
                            .iter()
                            .any(|suffix| bare.ends_with(suffix)))
                {
                    return refuse("the host is a local name");
                }
                name.to_owned()
            }
            Some(url::Host::Ipv4(v4)) => {
                if !self.address_allowed(IpAddr::V4(v4)) {
                    return refuse("the address is not public");
                }
                v4.to_string()
            }
            Some(url::Host::Ipv6(v6)) => {
                if !self.address_allowed(IpAddr::V6(v6)) {
                    return refuse("the address is not public");
                }
                v6.to_string()
            }
        };
        if !self.host_allowed(&host) {
            return refuse(&format!("the host {host} is not on the allow-list"));
        }
        Ok(url)
    }
}

/// Resolves names for the fetcher's client and refuses any answer holding an address an outside
/// URL may not reach; the connector then connects to exactly these addresses.
struct CheckedResolver {
    policy: Arc<FetchPolicy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(format!("{host} resolves to nothing").into());
            }
            if let Some(bad) = addresses.iter().find(|a| !policy.address_allowed(a.ip())) {
                return Err(Box::new(AddressRefused(format!(
                    "{host} resolves to {}, which is not public",
                    bad.ip()
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The resolver's refusal of an address, found again in the error chain of a failed request.
#[derive(Debug)]
struct AddressRefused(String);

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressRefused {}

/// Why a request failed, classified: our own refusals (an address, a redirect) apart from
/// failures of the outside server.
fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
            return FetchError::Refused(refused.0.clone());
        }
        source = cause.source();
    }
    if error.is_redirect() {
        return FetchError::Refused(format!("redirect: {}", error.without_url()));
    }
    FetchError::Failed(error.without_url().to_string())
}

/// The kinds of body a fetch accepts, checked by the bytes themselves as well as the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Image,
}

/// A fetched body, streaming: the extension its first bytes show, and the stream (which fails
/// past the size cap).
pub struct Fetched {
    /// `png`, `jpg` or `webp`.
    pub extension: &'static str,
    pub body: BlobStream,
    too_large: Arc<AtomicBool>,
}

impl Fetched {
    /// Whether the body stream failed for passing the size cap; taken before the body is handed
    /// on, read after.
    pub fn too_large_flag(&self) -> TooLarge {
        TooLarge(self.too_large.clone())
    }
}

/// Set once a fetched body passed the size cap.
pub struct TooLarge(Arc<AtomicBool>);

impl TooLarge {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The image kind a body's first bytes show.
pub fn image_extension(head: &[u8]) -> Option<&'static str> {
    match head {
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("jpg"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("webp"),
        _ => None,
    }
}

/// Fetches outside URLs under a [`FetchPolicy`].
#[derive(Clone)]
pub struct SafeFetcher {
    policy: Arc<FetchPolicy>,
    client: reqwest::Client,
}

impl SafeFetcher {
    pub fn new(policy: FetchPolicy) -> Self {
        let policy = Arc::new(policy);
        let redirects = policy.clone();
        let client = super::wire::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(10)))
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > redirects.max_redirects {
                    return attempt.error("too many redirects");
                }
                match redirects.check_url(attempt.url().as_str()) {
                    Ok(_) => attempt.follow(),
                    Err(refused) => attempt.error(refused),
                }
            }))
            .build()
            .expect("a client from fixed settings");
        Self { policy, client }
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Starts fetching `url`: checks it, connects, checks the status, the declared length and
    /// type and the first bytes; the body then streams with the size cap enforced.
    pub async fn fetch(&self, url: &str, expected: Expected) -> Result<Fetched, FetchError> {
        let url = self.policy.check_url(url)?;
        let response = self.client.get(url).send().await.map_err(classify)?;
        if response.status().is_redirection() {
            // The redirect policy follows what it allows; one that reaches us was not allowed
            // (a scheme the client will not follow, such as `file:`).
            return Err(FetchError::Refused(format!(
                "a redirect that is not followed ({})",
                response.status()
            )));
        }
        if !response.status().is_success() {
            return Err(FetchError::Failed(format!("status {}", response.status())));
        }
        let cap = self.policy.max_bytes;
        if response.content_length().is_some_and(|length| length > cap) {
            return Err(FetchError::TooLarge(cap));
        }
        let declared = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match expected {
            Expected::Image
                if declared.starts_with("image/")
                    || declared.starts_with("application/octet-stream") => {}
            Expected::Image => return Err(FetchError::WrongType(declared)),
        }
        let mut stream = response.bytes_stream();
        // Enough of the body to see what it is (a first chunk can be a few bytes).
        let mut head = Vec::new();
        while head.len() < 16 {
            match stream.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(FetchError::Failed(e.without_url().to_string())),
                None => break,
            }
        }
        let extension = image_extension(&head).ok_or_else(|| {
            FetchError::WrongType(format!("{declared} whose bytes are not PNG, JPEG or WebP"))
        })?;
        if head.len() as u64 > cap {
            return Err(FetchError::TooLarge(cap));
        }
        let seen = Arc::new(AtomicU64::new(head.len() as u64));
        let too_large = Arc::new(AtomicBool::new(false));
        let flag = too_large.clone();
        let rest = stream.map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            let total = seen.fetch_add(chunk.len() as u64, Ordering::SeqCst) + chunk.len() as u64;
            if total > cap {
                flag.store(true, Ordering::SeqCst);
                return Err(std::io::Error::other(format!("larger than {cap} bytes")));
            }
            Ok(chunk)
        });
        let body: BlobStream =
            Box::pin(futures::stream::once(std::future::ready(Ok(Bytes::from(head)))).chain(rest));
        Ok(Fetched {
            extension,
            body,
            too_large,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "64:ff9b::a9fe:a9fe",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_forbidden(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn hosts() {
        let policy = FetchPolicy {
            allowed_hosts: vec!["replicate.delivery".into(), "*.fal.media".into()],
            ..FetchPolicy::default()
        };
        assert!(policy.check_url("https://replicate.delivery/a.png").is_ok());
        assert!(policy.check_url("https://v3.fal.media/a.png").is_ok());
        assert!(
            policy
                .check_url("https://fal.media.evil.com/a.png")
                .is_err()
        );
        assert!(policy.check_url("https://evilfal.media/a.png").is_err());
        assert!(policy.check_url("http://replicate.delivery/a.png").is_err());
    }
}
