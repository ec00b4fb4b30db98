//! How a registry is reached: which registries may use plain HTTP, which CAs are trusted
//! for which registry, and what `--insecure-registry` means for one that speaks TLS.
//!
//! Trust: the system roots (on Linux read by rustls-native-certs, so `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` replace them, as for OpenSSL), plus docker's per-registry
//! `<certs.d>/<host[:port]>/*.crt`, trusted for that registry only.
//!
//! An insecure registry is reached the way docker reaches one: HTTPS without certificate
//! verification when it speaks TLS, plain HTTP only when it does not. Listing a TLS
//! registry as insecure therefore never sends its requests (or credentials) in clear text.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Client as Http, ClientBuilder};

use crate::error::{Error, Result};

/// Where docker keeps per-registry CA certificates; `WHARF_CERTS_D` overrides it.
pub const DEFAULT_CERTS_D: &str = "/etc/docker/certs.d";
/// Names with fixed addresses, like curl's `--resolve`: `NAME=IP[,NAME=IP...]`.
pub const RESOLVE_ENV: &str = "WHARF_RESOLVE";
/// How long the probe of an insecure registry may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// `certs.d` from `WHARF_CERTS_D`, else docker's.
pub fn default_certs_d() -> PathBuf {
    std::env::var_os("WHARF_CERTS_D")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CERTS_D), PathBuf::from)
}

/// `host[:port]` split into the host (lowercase, IPv6 without brackets) and the port;
/// `None` when the port is not a number.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else if authority.matches(':').count() > 1 {
        // A bare IPv6 address: no port.
        (authority, None)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// True for 127.0.0.0/8, ::1 and `localhost`, with or without a port.
pub fn is_loopback(authority: &str) -> bool {
    split_authority(authority).is_some_and(|(host, _)| {
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    })
}

/// Whether `authority` (`host[:port]`) may be reached over plain HTTP: a loopback host, or
/// one listed in `insecure` with the same host and the same port. A missing port is HTTP's
/// 80, on either side, so `reg.corp` matches `reg.corp:80` and nothing else.
pub fn plain_http_allowed(authority: &str, insecure: &[String]) -> bool {
    if is_loopback(authority) {
        return true;
    }
    let Some((host, port)) = split_authority(authority) else {
        return false;
    };
    let port = port.unwrap_or(80);
    insecure.iter().any(|entry| {
        split_authority(entry.trim()).is_some_and(|(h, p)| h == host && p.unwrap_or(80) == port)
    })
}

/// `host:port` of a URL, with the scheme's default port when it has none, as
/// [`plain_http_allowed`] compares it.
pub fn url_authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The fixed addresses in `WHARF_RESOLVE` (`NAME=IP,...`).
pub fn resolve_from_env() -> Result<Vec<(String, IpAddr)>> {
    let Ok(value) = std::env::var(RESOLVE_ENV) else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            entry
                .split_once('=')
                .and_then(|(name, ip)| Some((name.trim().to_string(), ip.trim().parse().ok()?)))
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| Error::Setting {
                    name: RESOLVE_ENV,
                    why: format!("{entry:?} is not NAME=IP (e.g. registry.example=10.0.0.5)"),
                })
        })
        .collect()
}

/// Makes a builder with a client's common settings (timeouts, agent).
pub(crate) type Builder = std::sync::Arc<dyn Fn() -> ClientBuilder + Send + Sync>;

/// How requests to one registry go.
#[derive(Clone)]
struct Endpoint {
    scheme: &'static str,
    http: Http,
}

/// The HTTP clients of a [`crate::Client`]: the default one, one per registry that has CA
/// certificates in `certs.d`, and one without verification for insecure registries that
/// speak TLS.
pub(crate) struct Transport {
    builder: Builder,
    resolve: Vec<(String, IpAddr)>,
    certs_d: PathBuf,
    insecure: Vec<String>,
    default: Http,
    endpoints: Mutex<HashMap<String, Endpoint>>,
}

impl Transport {
    /// `builder` makes a builder with the client's common settings (timeouts, agent).
    pub(crate) fn new(
        builder: Builder,
        resolve: Vec<(String, IpAddr)>,
        certs_d: PathBuf,
        insecure: Vec<String>,
    ) -> Result<Transport> {
        let default = build(&builder, &resolve, Vec::new(), true)?;
        Ok(Transport {
            builder,
            resolve,
            certs_d,
            insecure,
            default,
            endpoints: Mutex::new(HashMap::new()),
        })
    }

    fn build(&self, roots: Vec<reqwest::Certificate>, verify: bool) -> Result<Http> {
        build(&self.builder, &self.resolve, roots, verify)
    }

    /// The client for requests to `authority`: the one [`Transport::scheme`] chose, else
    /// one that verifies with the system roots plus the registry's `certs.d` CAs.
    pub(crate) fn http(&self, authority: &str) -> Result<Http> {
        if let Some(endpoint) = self.cached(authority) {
            return Ok(endpoint.http);
        }
        Ok(self.endpoint(authority, "https")?.http)
    }

    /// `http` or `https` for `authority`; for an insecure registry not on loopback this asks
    /// it (once) whether it speaks TLS.
    pub(crate) fn scheme(&self, authority: &str) -> Result<&'static str> {
        if let Some(endpoint) = self.cached(authority) {
            return Ok(endpoint.scheme);
        }
        let endpoint = if is_loopback(authority) {
            Endpoint {
                scheme: "http",
                http: self.default.clone(),
            }
        } else if plain_http_allowed(authority, &self.insecure) {
            self.probe(authority)?
        } else {
            self.endpoint(authority, "https")?
        };
        let scheme = endpoint.scheme;
        self.endpoints
            .lock()
            .expect("endpoints lock")
            .insert(authority.to_string(), endpoint);
        Ok(scheme)
    }

    fn cached(&self, authority: &str) -> Option<Endpoint> {
        self.endpoints
            .lock()
            .expect("endpoints lock")
            .get(authority)
            .cloned()
    }

    /// A verifying endpoint, with the `certs.d` CAs of `authority` if it has any.
    fn endpoint(&self, authority: &str, scheme: &'static str) -> Result<Endpoint> {
        let roots = ca_certificates(&self.certs_d.join(authority))?;
        let http = if roots.is_empty() {
            self.default.clone()
        } else {
            self.build(roots, true)?
        };
        let endpoint = Endpoint { scheme, http };
        self.endpoints
            .lock()
            .expect("endpoints lock")
            .insert(authority.to_string(), endpoint.clone());
        Ok(endpoint)
    }

    /// Docker's rule for an insecure registry: HTTPS without verification if it speaks
    /// TLS; plain HTTP if it answers in clear text, or if nothing listens on 443 for a
    /// registry named without a port (its HTTP port is then 80).
    fn probe(&self, authority: &str) -> Result<Endpoint> {
        let unverified = self.build(Vec::new(), false)?;
        let url = format!("https://{authority}/v2/");
        let error = match unverified.get(&url).timeout(PROBE_TIMEOUT).send() {
            Ok(_) => {
                return Ok(Endpoint {
                    scheme: "https",
                    http: unverified,
                });
            }
            Err(e) => e,
        };
        let portless = split_authority(authority).is_some_and(|(_, port)| port.is_none());
        let refused =
            find::<io::Error>(&error).is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused);
        if speaks_no_tls(&error) || (portless && refused) {
            tracing::info!(
                registry = authority,
                "insecure registry does not speak TLS: using plain HTTP"
            );
            return Ok(Endpoint {
                scheme: "http",
                http: self.default.clone(),
            });
        }
        Err(Error::Transport {
            what: format!("asking the insecure registry {authority} whether it speaks TLS ({url})"),
            source: error,
        })
    }
}

/// An HTTP client with the common settings: verifying with the system's roots (loaded at
/// the first handshake) and `roots`, or not verifying at all.
fn build(
    builder: &Builder,
    resolve: &[(String, IpAddr)],
    roots: Vec<reqwest::Certificate>,
    verify: bool,
) -> Result<Http> {
    let mut builder = if verify && roots.is_empty() {
        // The common client: the system's roots, loaded at the first handshake.
        let tls = crate::system_roots::client_config().map_err(|e| {
            Error::Config(format!("setting up TLS (the rustls client config): {e}"))
        })?;
        builder().tls_backend_preconfigured(tls)
    } else {
        builder()
            .tls_certs_merge(roots)
            .tls_danger_accept_invalid_certs(!verify)
    };
    for (name, ip) in resolve {
        // Port 0: the URL's port is used.
        builder = builder.resolve(name, std::net::SocketAddr::new(*ip, 0));
    }
    builder.build().map_err(|source| Error::Transport {
        what: "creating the HTTP client".into(),
        source,
    })
}

/// The CA certificates (`*.crt`, PEM) in a registry's `certs.d` directory, as docker reads
/// them; none when the directory does not exist.
fn ca_certificates(dir: &Path) -> Result<Vec<reqwest::Certificate>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                what: format!("reading the CA directory {}", dir.display()),
                source,
            });
        }
    };
    let mut paths = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect::<Vec<_>>();
    paths.sort();
    let mut roots = Vec::new();
    for path in paths {
        let pem = std::fs::read(&path).map_err(|source| Error::Io {
            what: format!("reading the CA certificate {}", path.display()),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| Error::Transport {
                what: format!(
                    "reading the CA certificate {} (PEM expected)",
                    path.display()
                ),
                source,
            })?;
        if certs.is_empty() {
            return Err(Error::Setting {
                name: "certs.d",
                why: format!("{} holds no PEM certificate", path.display()),
            });
        }
        roots.extend(certs);
    }
    Ok(roots)
}

/// The first error of type `T` in the chain of `e`, looking inside `io::Error`s too (their
/// `source()` skips the error they wrap, which is where rustls puts its own).
fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    // Chains are a handful of levels deep; the bound only guards against a cycle.
    for _ in 0..32 {
        let current = next?;
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = current
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(found) = find::<T>(inner)
        {
            return Some(found);
        }
        next = current.source();
    }
    None
}

/// The peer answered the TLS handshake with something that is not TLS.
pub(crate) fn speaks_no_tls(e: &reqwest::Error) -> bool {
    matches!(
        find::<rustls::Error>(e),
        Some(rustls::Error::InvalidMessage(_))
    )
}

/// Why the registry's certificate was refused, if that is what `e` is.
pub(crate) fn certificate_refused(e: &reqwest::Error) -> Option<String> {
    match find::<rustls::Error>(e)? {
        rustls::Error::InvalidCertificate(why) => Some(format!("{why:?}")),
        _ => None,
    }
}

/// How to trust the CA that signed `authority`'s certificate.
pub(crate) fn trust_hint(certs_d: &Path, authority: &str) -> String {
    format!(
        "if the registry's certificate comes from a private CA, put the CA certificate (PEM) \
         in {}/ca.crt, or name a PEM bundle that includes it with SSL_CERT_FILE",
        certs_d.join(authority).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insecure(entries: &[&str]) -> Vec<String> {
        entries.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_insecure_entry_is_not_a_prefix_of_other_hosts() {
        // Issue 10, item 3: the old realm check was `entry.starts_with(realm_host)`.
        assert!(!plain_http_allowed(
            "10.0.0.1",
            &insecure(&["10.0.0.10:5000"])
        ));
        assert!(!plain_http_allowed(
            "10.0.0.1:80",
            &insecure(&["10.0.0.10:5000"])
        ));
        assert!(!plain_http_allowed("reg", &insecure(&["reg.corp:5000"])));
        assert!(!plain_http_allowed("reg:80", &insecure(&["reg.corp:5000"])));
        assert!(!plain_http_allowed(
            "reg.corp",
            &insecure(&["reg.corp:5000"])
        ));
        assert!(!plain_http_allowed(
            "reg.corp:5001",
            &insecure(&["reg.corp:5000"])
        ));
        assert!(!plain_http_allowed(
            "reg.corp.evil:5000",
            &insecure(&["reg.corp:5000"])
        ));
    }

    #[test]
    fn host_and_port_match_exactly_with_80_for_no_port() {
        assert!(plain_http_allowed(
            "reg.corp:5000",
            &insecure(&["reg.corp:5000"])
        ));
        assert!(plain_http_allowed(
            "REG.corp:5000",
            &insecure(&["reg.CORP:5000"])
        ));
        assert!(plain_http_allowed("reg.corp", &insecure(&["reg.corp"])));
        assert!(plain_http_allowed("reg.corp:80", &insecure(&["reg.corp"])));
        assert!(plain_http_allowed("reg.corp", &insecure(&["reg.corp:80"])));
        assert!(!plain_http_allowed(
            "reg.corp:443",
            &insecure(&["reg.corp"])
        ));
        assert!(plain_http_allowed(
            "10.0.0.10:5000",
            &insecure(&["10.0.0.10:5000"])
        ));
        assert!(!plain_http_allowed("10.0.0.10:5000", &[]));
    }

    #[test]
    fn ipv6_hosts_compare_without_brackets() {
        let list = insecure(&["[fd00::1]:5000"]);
        assert!(plain_http_allowed("[fd00::1]:5000", &list));
        assert!(plain_http_allowed("[FD00::1]:5000", &list));
        assert!(!plain_http_allowed("[fd00::1]", &list));
        assert!(!plain_http_allowed("[fd00::10]:5000", &list));
        assert!(plain_http_allowed(
            "[fd00::2]",
            &insecure(&["[fd00::2]:80"])
        ));
    }

    #[test]
    fn loopback_is_plain_http_and_lookalikes_are_not() {
        for host in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(plain_http_allowed(host, &[]), "{host}");
        }
        for host in [
            "localhost.example",
            "wharf-tls.localhost:5000",
            "128.0.0.1",
            "[::2]:1",
        ] {
            assert!(!plain_http_allowed(host, &[]), "{host}");
        }
    }

    #[test]
    fn malformed_ports_never_match() {
        assert!(!plain_http_allowed(
            "reg.corp:http",
            &insecure(&["reg.corp:http"])
        ));
        assert!(!plain_http_allowed(
            "reg.corp:80",
            &insecure(&["reg.corp:x"])
        ));
        assert!(!plain_http_allowed("[fd00::1", &insecure(&["[fd00::1"])));
    }

    #[test]
    fn a_realm_url_compares_with_its_default_port() {
        let url = |u: &str| url_authority(&reqwest::Url::parse(u).unwrap());
        assert_eq!(url("http://10.0.0.1/token"), "10.0.0.1:80");
        assert_eq!(url("http://reg.corp:5000/token"), "reg.corp:5000");
        assert_eq!(url("https://reg.corp/token"), "reg.corp:443");
        assert_eq!(url("http://[fd00::1]:5000/token"), "[fd00::1]:5000");
        assert!(plain_http_allowed(
            &url("http://reg.corp/token"),
            &insecure(&["reg.corp"])
        ));
        assert!(!plain_http_allowed(
            &url("http://10.0.0.1/token"),
            &insecure(&["10.0.0.10:5000"])
        ));
    }

    #[test]
    fn a_missing_certs_d_directory_means_no_extra_roots() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            ca_certificates(&dir.path().join("reg:5000"))
                .unwrap()
                .is_empty()
        );
        std::fs::create_dir(dir.path().join("reg:5000")).unwrap();
        std::fs::write(dir.path().join("reg:5000/ca.crt"), "not PEM").unwrap();
        let error = ca_certificates(&dir.path().join("reg:5000")).unwrap_err();
        assert!(error.to_string().contains("reg:5000/ca.crt"), "{error}");
    }
}
