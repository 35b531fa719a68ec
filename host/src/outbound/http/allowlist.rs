//! Which hosts a task type's plugin may reach: `[tasks.<t>.http].allow_hosts`.
//!
//! A pattern is a host (a name, or an IP address, IPv6 in brackets) or
//! `*.` and a domain of at least two labels, optionally followed by `:PORT`
//! or `:*`. Without a port only the scheme's default port (80 or 443) is
//! allowed. Names are compared after IDNA normalisation, case-insensitively.

use std::net::IpAddr;

use url::{Host, Url};

/// One entry of `allow_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Name(String),
    Ip(IpAddr),
    /// Any subdomain of this domain (stored with a leading dot).
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    /// The scheme's default port.
    Default,
    Exact(u16),
    Any,
}

impl HostPattern {
    /// Parses one pattern; the error says what is wrong with it.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim();
        let (host, port) = split_port(pattern)?;
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(port) => PortMatch::Exact(
                port.parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("`{port}` is not a port in `{pattern}`"))?,
            ),
        };
        let host = if let Some(domain) = host.strip_prefix("*.") {
            let Ok(Host::Domain(domain)) = Host::parse(domain) else {
                return Err(format!("`{pattern}` is not a host pattern"));
            };
            if !domain.contains('.') || domain.split('.').any(str::is_empty) {
                return Err(format!(
                    "`{pattern}` is too broad: a wildcard needs a domain of two labels or more"
                ));
            }
            HostMatch::Subdomains(format!(".{domain}"))
        } else {
            match Host::parse(host) {
                _ if host.is_empty() || host.contains('*') => {
                    return Err(format!("`{pattern}` is not a host pattern"));
                }
                Ok(Host::Domain(name)) => HostMatch::Name(name),
                Ok(Host::Ipv4(ip)) => HostMatch::Ip(ip.into()),
                Ok(Host::Ipv6(ip)) => HostMatch::Ip(ip.into()),
                Err(err) => return Err(format!("`{pattern}` is not a host pattern: {err}")),
            }
        };
        Ok(Self { host, port })
    }

    /// Whether `url`'s host and port match.
    pub(crate) fn matches(&self, url: &Url) -> bool {
        let host_ok = match (&self.host, url.host()) {
            (HostMatch::Name(name), Some(Host::Domain(host))) => host.eq_ignore_ascii_case(name),
            (HostMatch::Subdomains(suffix), Some(Host::Domain(host))) => {
                host.len() > suffix.len() && host.to_ascii_lowercase().ends_with(suffix.as_str())
            }
            (HostMatch::Ip(ip), Some(Host::Ipv4(host))) => *ip == IpAddr::V4(host),
            (HostMatch::Ip(ip), Some(Host::Ipv6(host))) => *ip == IpAddr::V6(host),
            _ => false,
        };
        let port_ok = match self.port {
            PortMatch::Default => url.port().is_none(),
            PortMatch::Exact(port) => url.port_or_known_default() == Some(port),
            PortMatch::Any => true,
        };
        host_ok && port_ok
    }
}

/// Splits `host[:port]`, minding IPv6 brackets.
fn split_port(pattern: &str) -> Result<(&str, Option<&str>), String> {
    if pattern.starts_with('[') {
        let end = pattern
            .find(']')
            .ok_or_else(|| format!("`{pattern}` has an unclosed `[`"))?;
        let (host, rest) = pattern.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("`{pattern}` is not a host pattern")),
            },
        };
    }
    if pattern.matches(':').count() > 1 {
        return Err(format!(
            "`{pattern}` is not a host pattern (write IPv6 addresses in brackets)"
        ));
    }
    Ok(match pattern.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (pattern, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, url: &str) -> bool {
        HostPattern::parse(pattern)
            .unwrap()
            .matches(&Url::parse(url).unwrap())
    }

    #[test]
    fn names_match_exactly_on_default_ports() {
        assert!(allows("api.example.com", "https://API.example.com/x"));
        assert!(allows("api.example.com", "http://api.example.com:80/"));
        assert!(!allows("api.example.com", "https://api.example.com:8443/"));
        assert!(!allows("api.example.com", "https://example.com/"));
        assert!(!allows(
            "api.example.com",
            "https://api.example.com.evil.net/"
        ));
    }

    #[test]
    fn ports_and_wildcards() {
        assert!(allows(
            "api.example.com:8443",
            "https://api.example.com:8443/"
        ));
        assert!(allows("api.example.com:443", "https://api.example.com/"));
        assert!(allows("localhost:*", "http://localhost:9999/"));
        assert!(allows("*.example.com", "https://a.b.example.com/"));
        assert!(!allows("*.example.com", "https://example.com/"));
        assert!(!allows("*.example.com", "https://badexample.com/"));
        assert!(allows("127.0.0.1:*", "http://127.0.0.1:1234/"));
        assert!(allows("[::1]:8080", "http://[::1]:8080/"));
        assert!(!allows("[::1]:8080", "http://127.0.0.1:8080/"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "*",
            "*.",
            "*.com",
            "a*.example.com",
            "host:x",
            "host:0",
            "::1",
            "[::1",
            "a b",
        ] {
            assert!(
                HostPattern::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
