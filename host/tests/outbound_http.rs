//! The `http` import: deny by default, the host allowlist, the address policy
//! after DNS and on every redirect, the size cap and the time budget. Every
//! refused destination is refused before any byte is sent to it.

mod support;

use std::time::{Duration, Instant};

use sluice::imports::Outbound;
use sluice::outbound::{Network, TaskHttpConfig};
use sluice::runtime::bindings::http::{
    ConnectionFailure, Error, Header, Method, Request, Response,
};
use support::outbound::{MARGIN, TestServer, call, http_task, network};

fn get(url: &str) -> Request {
    Request {
        method: Method::Get,
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    }
}

fn allow(hosts: &[&str], private: &[&str]) -> TaskHttpConfig {
    TaskHttpConfig {
        allow_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        allow_private: private.iter().map(|h| h.to_string()).collect(),
        ..TaskHttpConfig::default()
    }
}

async fn send(net: &Network, request: Request) -> Result<Response, Error> {
    net.http(&call("t", Duration::from_secs(30)), request).await
}

fn llm_config() -> sluice::outbound::LlmConfig {
    sluice::outbound::LlmConfig::default()
}

fn denied(result: &Result<Response, Error>, why: &str) -> bool {
    matches!(result, Err(Error::Denied(message)) if message.contains(why))
}

#[tokio::test]
async fn an_allowed_host_is_reached() {
    let server = TestServer::start().await;
    let net = network(
        &llm_config(),
        &http_task("t", allow(&["127.0.0.1:*"], &["127.0.0.1"])),
    );
    let ctx = call("t", Duration::from_secs(30));
    let response = net.http(&ctx, get(&server.url("/hello"))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert!(
        response
            .headers
            .iter()
            .any(|h| h.name == "x-test" && h.value == "yes")
    );
    assert_eq!(ctx.usage.snapshot().http_requests, 1);
}

#[tokio::test]
async fn hosts_not_on_the_list_and_unconfigured_tasks_are_denied() {
    let server = TestServer::start().await;
    let net = network(
        &llm_config(),
        &http_task("t", allow(&["api.example.com"], &["127.0.0.1"])),
    );
    let result = send(&net, get(&server.url("/hello"))).await;
    assert!(
        denied(&result, "is not in this task type's allowed hosts"),
        "{result:?}"
    );
    // The right host on another port is not the same destination.
    let net = network(
        &llm_config(),
        &http_task("t", allow(&["127.0.0.1:1"], &["127.0.0.1"])),
    );
    let result = send(&net, get(&server.url("/hello"))).await;
    assert!(denied(&result, "allowed hosts"), "{result:?}");
    let result = net
        .http(
            &call("other", Duration::from_secs(30)),
            get(&server.url("/hello")),
        )
        .await;
    assert!(denied(&result, "no outbound hosts"), "{result:?}");
    assert!(server.hits().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn loopback_and_metadata_addresses_are_refused_unless_allowed() {
    let server = TestServer::start().await;
    let net = network(
        &llm_config(),
        &http_task(
            "t",
            allow(
                &["127.0.0.1:*", "169.254.169.254", "10.0.0.1", "[::1]:*"],
                &[],
            ),
        ),
    );
    let result = send(&net, get(&server.url("/hello"))).await;
    assert!(denied(&result, "loopback"), "{result:?}");
    let result = send(&net, get("http://169.254.169.254/latest/meta-data/")).await;
    assert!(denied(&result, "cloud metadata"), "{result:?}");
    let result = send(&net, get("http://10.0.0.1/")).await;
    assert!(denied(&result, "private"), "{result:?}");
    let result = send(&net, get("http://[::1]:8080/")).await;
    assert!(denied(&result, "loopback"), "{result:?}");
    assert!(server.hits().is_empty());
    // Allowing the loopback address opens exactly that.
    let net = network(
        &llm_config(),
        &http_task("t", allow(&["127.0.0.1:*"], &["127.0.0.0/8"])),
    );
    assert_eq!(
        send(&net, get(&server.url("/hello"))).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_a_private_address_is_refused() {
    let server = TestServer::start().await;
    let url = format!("http://localhost:{}/hello", server.addr.port());
    let net = network(&llm_config(), &http_task("t", allow(&["localhost:*"], &[])));
    let result = send(&net, get(&url)).await;
    assert!(denied(&result, "`localhost` resolves to"), "{result:?}");
    assert!(server.hits().is_empty());
    let net = network(
        &llm_config(),
        &http_task("t", allow(&["localhost:*"], &["127.0.0.1", "::1"])),
    );
    assert_eq!(send(&net, get(&url)).await.unwrap().status, 200);
}

#[tokio::test]
async fn redirects_are_checked_on_every_hop() {
    let server = TestServer::start().await;
    // The hosts are listed; only their addresses can refuse them.
    let net = network(
        &llm_config(),
        &http_task(
            "t",
            allow(
                &["127.0.0.1:*", "169.254.169.254", "10.0.0.1"],
                &["127.0.0.1"],
            ),
        ),
    );
    // Followed to an allowed place.
    let hello = server.url("/hello");
    let response = send(&net, get(&server.url(&format!("/redirect?{hello}"))))
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"hello"[..])
    );
    // To a metadata address: refused, and never contacted.
    let result = send(
        &net,
        get(&server.url("/redirect?http://169.254.169.254/latest/meta-data/")),
    )
    .await;
    assert!(denied(&result, "cloud metadata"), "{result:?}");
    let result = send(&net, get(&server.url("/redirect?http://10.0.0.1/"))).await;
    assert!(denied(&result, "private"), "{result:?}");
    // To a host not on the list.
    let result = send(
        &net,
        get(&server.url("/redirect?https://elsewhere.example/")),
    )
    .await;
    assert!(denied(&result, "elsewhere.example"), "{result:?}");
    // Too many redirects: the 3xx comes back as it is when none are allowed.
    let mut config = allow(&["127.0.0.1:*"], &["127.0.0.1"]);
    config.max_redirects = 0;
    let net = network(&llm_config(), &http_task("t", config));
    let response = send(&net, get(&server.url(&format!("/redirect?{hello}"))))
        .await
        .unwrap();
    assert_eq!(response.status, 302);
}

#[tokio::test]
async fn oversized_responses_are_cut_with_the_typed_error() {
    let server = TestServer::start().await;
    let mut config = allow(&["127.0.0.1:*"], &["127.0.0.1"]);
    config.max_response_bytes = 1 << 20;
    let net = network(&llm_config(), &http_task("t", config));
    for path in ["/big/2000000", "/big-chunked/2000000"] {
        let result = send(&net, get(&server.url(path))).await;
        assert!(
            matches!(result, Err(Error::ResponseTooLarge)),
            "{path}: {result:?}"
        );
    }
    let ok = send(&net, get(&server.url("/big-chunked/1048576")))
        .await
        .unwrap();
    assert_eq!(ok.body.len(), 1 << 20, "exactly the cap is accepted");
}

#[tokio::test]
async fn a_hung_server_times_out_within_the_requests_budget() {
    let server = TestServer::start().await;
    let net = network(
        &llm_config(),
        &http_task("t", allow(&["127.0.0.1:*"], &["127.0.0.1"])),
    );
    let mut request = get(&server.url("/hang"));
    request.timeout_ms = Some(500);
    let started = Instant::now();
    let result = send(&net, request).await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(500) + MARGIN);
    // The unit's deadline bounds it too.
    let started = Instant::now();
    let result = net
        .http(
            &call("t", Duration::from_millis(500)),
            get(&server.url("/hang")),
        )
        .await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(500) + MARGIN);
}

#[tokio::test]
async fn malformed_requests_and_dead_ports_get_their_typed_errors() {
    let net = network(
        &llm_config(),
        &http_task("t", allow(&["127.0.0.1:*"], &["127.0.0.1"])),
    );
    for (request, what) in [
        (get("not a url"), "not a URL"),
        (get("ftp://127.0.0.1/"), "scheme"),
        (get("http://user:pw@127.0.0.1:1/"), "credentials"),
        (
            Request {
                headers: vec![Header {
                    name: "Host".into(),
                    value: "x".into(),
                }],
                ..get("http://127.0.0.1:1/")
            },
            "set by the host",
        ),
        (
            Request {
                headers: vec![Header {
                    name: "bad header".into(),
                    value: "x".into(),
                }],
                ..get("http://127.0.0.1:1/")
            },
            "not a valid header name",
        ),
    ] {
        let result = send(&net, request).await;
        assert!(
            matches!(&result, Err(Error::InvalidRequest(m)) if m.contains(what)),
            "{what}: {result:?}"
        );
    }
    // Port 1 on loopback: nothing listens there.
    let result = send(&net, get("http://127.0.0.1:1/")).await;
    assert!(
        matches!(&result, Err(Error::Connection(e)) if e.failure == ConnectionFailure::Refused),
        "{result:?}"
    );
}

#[tokio::test]
async fn bad_http_configuration_names_the_key() {
    for (config, key) in [
        (
            allow(&["ok.example", "*."], &[]),
            "tasks.webhook.http.allow_hosts[1]",
        ),
        (allow(&["*.com"], &[]), "tasks.webhook.http.allow_hosts[0]"),
        (
            allow(&["ok.example"], &["10.0.0.0/8", "ten"]),
            "tasks.webhook.http.allow_private[1]",
        ),
    ] {
        let err = Network::new(&llm_config(), &http_task("webhook", config)).unwrap_err();
        assert_eq!(err.key, key, "{err}");
    }
    let err = Network::new(
        &llm_config(),
        &http_task("webhook", allow(&["ok.example", "*."], &[])),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tasks.webhook.http.allow_hosts[1]: `*.` is not a host pattern"
    );
}

#[tokio::test]
async fn a_head_request_is_not_refused_for_the_body_it_does_not_get() {
    let server = TestServer::start().await;
    let mut config = allow(&["127.0.0.1:*"], &["127.0.0.1"]);
    config.max_response_bytes = 1024;
    let net = network(&llm_config(), &http_task("t", config));
    let request = Request {
        method: Method::Head,
        ..get(&server.url("/big/2000000"))
    };
    let response = send(&net, request).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
}
