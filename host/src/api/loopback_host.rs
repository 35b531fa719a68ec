//! Without `[api.tokens]` the API and the dashboard are open to every process
//! on this machine, which the configuration allows on a loopback address
//! only. A web page the operator visits could still reach them through DNS
//! rebinding (a name of the attacker's that resolves to 127.0.0.1), and the
//! browser would treat the answers as that page's own. Such requests name
//! the attacker's host in `Host`, so while no token is configured a request
//! must name a loopback host (`localhost`, `127.x.y.z`, `[::1]`), or it is
//! refused.

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuses (403) a request whose `Host` is not a loopback name or address.
pub async fn only(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if is_loopback(host) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "no [api.tokens] are configured, so this server answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1]); add tokens to serve other names\n",
        )
            .into_response()
    }
}

/// `host` is `NAME[:PORT]` or `[IPV6][:PORT]`.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for host in [
            "localhost",
            "localhost:9464",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:9464",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:9464",
            "localhost.evil.example",
            "10.0.0.1:9464",
            "[::2]:1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
