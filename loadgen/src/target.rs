//! What the generator aims at: the URL's scheme, host, port and path, the name it verifies
//! (the URL's host or `--sni`) and the address it dials (resolved once, or `--connect-to`).

use std::net::{SocketAddr, ToSocketAddrs};

use rustls::pki_types::ServerName;

use crate::LoadError;

/// A resolved target.
#[derive(Clone, Debug)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// The name sent in SNI and checked against the certificate.
    pub server_name: ServerName<'static>,
    /// The `Host` header value (host, plus the port when it is not 443).
    pub host_header: String,
    /// Path and query of the request.
    pub path: String,
    /// Where connections go.
    pub addr: SocketAddr,
    /// `http://`: plain HTTP, no TLS (the server's `--plain-listen`, the TCP floor).
    pub plain: bool,
}

impl Target {
    /// Parses `url` (https, or http for the plain floor), applying `sni` and `connect_to` overrides.
    pub fn new(
        url: &str,
        sni: Option<&str>,
        connect_to: Option<&str>,
    ) -> Result<Target, LoadError> {
        let bad = |why: String| LoadError::Target(format!("{url}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let plain = match parsed.scheme() {
            "https" => false,
            "http" => true,
            other => {
                return Err(bad(format!(
                    "scheme {other}: only https (and http, the plain floor) is measured"
                )));
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad("no host".into())),
        };
        // `port()` is None when the URL gives the scheme's default port (or none).
        let port = parsed.port().unwrap_or(if plain { 80 } else { 443 });
        let name = sni.unwrap_or(&host).to_string();
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| bad(format!("'{name}' is not a valid server name")))?;
        let host_header = match (parsed.host(), parsed.port()) {
            (Some(url::Host::Ipv6(ip)), Some(p)) => format!("[{ip}]:{p}"),
            (Some(url::Host::Ipv6(ip)), None) => format!("[{ip}]"),
            (_, Some(p)) => format!("{host}:{p}"),
            (_, None) => host.clone(),
        };
        let mut path = parsed.path().to_string();
        if let Some(q) = parsed.query() {
            path.push('?');
            path.push_str(q);
        }
        let dial = match connect_to {
            Some(c) => c.to_string(),
            None if host.contains(':') => format!("[{host}]:{port}"),
            None => format!("{host}:{port}"),
        };
        let addr = dial
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot resolve {dial}: {e}")))?
            .next()
            .ok_or_else(|| bad(format!("{dial} resolves to no address")))?;
        Ok(Target {
            url: url.to_string(),
            server_name,
            host_header,
            path,
            addr,
            plain,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_and_overrides() {
        let t = Target::new("https://127.0.0.1:4433/a?b=1", None, None).unwrap();
        assert_eq!(t.addr, "127.0.0.1:4433".parse().unwrap());
        assert_eq!(t.path, "/a?b=1");
        assert_eq!(t.host_header, "127.0.0.1:4433");
        assert_eq!(t.server_name.to_str(), "127.0.0.1");

        let t = Target::new("https://bank32.com:9/", None, Some("127.0.0.1:4433")).unwrap();
        assert_eq!(t.addr, "127.0.0.1:4433".parse().unwrap());
        assert_eq!(t.server_name.to_str(), "bank32.com");
        assert_eq!(t.host_header, "bank32.com:9");

        let t = Target::new("https://[::1]:8443", Some("bank32.com"), None).unwrap();
        assert_eq!(t.addr, "[::1]:8443".parse().unwrap());
        assert_eq!(t.server_name.to_str(), "bank32.com");
        assert_eq!(t.host_header, "[::1]:8443");
        assert_eq!(t.path, "/");

        let plain = Target::new("http://127.0.0.1:8080/x", None, None).unwrap();
        assert!(plain.plain);
        assert_eq!(plain.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(plain.host_header, "127.0.0.1:8080");
        assert_eq!(
            Target::new("http://127.0.0.1/", None, None).unwrap().addr,
            "127.0.0.1:80".parse().unwrap()
        );
        assert!(!t.plain);
        let err = Target::new("ftp://127.0.0.1/", None, None).unwrap_err();
        assert!(err.to_string().contains("scheme ftp"), "{err}");
        assert!(
            Target::new("https://host.invalid/", None, None).is_err(),
            ".invalid never resolves"
        );
    }
}
