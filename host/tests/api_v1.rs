//! The HTTP API under /v1, end to end against `sluice run` on both
//! backends: every route, every auth scope, every error shape (RFC 9457
//! problem documents that name the field), pagination, and the generated
//! OpenAPI document.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::http_client::{Response, request};
use support::process::{HostDir, HostProcess};
use support::stores;

const PRODUCER: &str = "producer-token-1";
const READER: &str = "reader-token-2";
const OPS: &str = "ops-token-3";

/// `sluice run` with the API on a free loopback port and three tokens, one
/// per scope: from the environment (producer, ops) and by hash (reader).
fn start(url: &str) -> (HostDir, HostProcess, SocketAddr) {
    let reader_sha = sha256_hex(READER);
    let dir = HostDir::new(
        url,
        &format!(
            r#"poll_interval = "200ms"
[defaults]
max_attempts = 1
[api]
max_body_bytes = 65536
[api.tokens.producer]
scope = "enqueue"
token_env = "TEST_PRODUCER_TOKEN"
[api.tokens.reader]
scope = "read"
sha256 = "{reader_sha}"
[api.tokens.ops]
scope = "admin"
token_env = "TEST_OPS_TOKEN"
"#
        ),
    );
    let addr = free_port();
    let host = dir.start_with(
        "api",
        &[],
        &[
            ("SLUICE_LISTEN", &addr.to_string()),
            ("TEST_PRODUCER_TOKEN", PRODUCER),
            ("TEST_OPS_TOKEN", OPS),
        ],
    );
    wait_ready(addr, &host);
    (dir, host, addr)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn wait_ready(addr: SocketAddr, host: &HostProcess) {
    let started = Instant::now();
    loop {
        if std::net::TcpStream::connect(addr).is_ok()
            && request(addr, "GET", "/readyz", None, None).status == 200
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never ready; log:\n{}",
            host.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &Value) -> Response {
    request(addr, "POST", path, token, Some(body.to_string().as_bytes()))
}

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    request(addr, "GET", path, token, None)
}

/// A problem document with this status, naming `field` when given.
fn assert_problem(response: &Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json"),
        "{}",
        response.body
    );
    let problem = response.json();
    assert_eq!(problem["status"], status);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:sluice:problem:")
    );
    assert!(!problem["title"].as_str().unwrap().is_empty());
    assert!(!problem["detail"].as_str().unwrap().is_empty());
    if let Some(field) = field {
        assert_eq!(problem["field"], field, "{problem}");
    }
    problem
}

fn wait_for_state(addr: SocketAddr, id: i64, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let item = get(addr, &format!("/v1/items/{id}"), Some(READER));
        assert_eq!(item.status, 200, "{}", item.body);
        let item = item.json();
        if item["state"] == state {
            return item;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "item {id} never became {state}: {item}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn the_api_end_to_end(url: &str) {
    let (_dir, host, addr) = start(url);

    // The OpenAPI document needs no token and describes every route.
    let doc = get(addr, "/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/items",
        "/v1/items/batch",
        "/v1/items/{id}",
        "/v1/units/{task_type}/{work_unit_key}/items",
        "/v1/units/{task_type}/{work_unit_key}/cancel",
        "/v1/status",
        "/v1/task-types/{task_type}/pause",
        "/v1/task-types/{task_type}/resume",
        "/v1/plugins",
        "/v1/plugins/reload",
        "/v1/dead",
        "/v1/dead/{id}",
        "/v1/dead/retry",
        "/v1/dead/purge",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }

    // Authentication and scopes.
    let item = json!({"task_type": "echo", "work_unit_key": "conv-1", "payload": {"text": "hi"}});
    let missing = post(addr, "/v1/items", None, &item);
    assert_problem(&missing, 401, None);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_problem(
        &post(addr, "/v1/items", Some("not-a-token"), &item),
        401,
        None,
    );
    let wrong_scope = assert_problem(&post(addr, "/v1/items", Some(READER), &item), 403, None);
    assert!(
        wrong_scope["detail"]
            .as_str()
            .unwrap()
            .contains("`reader` has scope `read`")
    );
    assert_problem(&get(addr, "/v1/status", Some(PRODUCER)), 403, None);

    // Enqueue one item; it runs, and its output shows on the item.
    let created = post(addr, "/v1/items", Some(PRODUCER), &item);
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    assert_eq!(created["duplicate"], false);
    let id = created["id"].as_i64().unwrap();
    let done = wait_for_state(addr, id, "done");
    assert_eq!(done["attempts"], 0);
    assert_eq!(done["payload"], json!({"text": "hi"}));
    assert!(
        done["output"].is_object() || done["output"].is_string(),
        "{done}"
    );
    // The admin token reads too.
    assert_eq!(get(addr, &format!("/v1/items/{id}"), Some(OPS)).status, 200);
    assert_problem(&get(addr, "/v1/items/999999999", Some(READER)), 404, None);
    assert_problem(
        &get(addr, "/v1/items/not-a-number", Some(READER)),
        400,
        Some("id"),
    );

    // Batches: all or nothing, the bad item named.
    let bad_batch = json!({"items": [
        {"task_type": "echo", "work_unit_key": "b", "payload": 1},
        {"task_type": "echo", "work_unit_key": "", "payload": 2},
    ]});
    let problem = assert_problem(
        &post(addr, "/v1/items/batch", Some(PRODUCER), &bad_batch),
        400,
        Some("items[1].work_unit_key"),
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was enqueued")
    );
    assert_problem(
        &post(
            addr,
            "/v1/items/batch",
            Some(PRODUCER),
            &json!({"items": [{"task_type": "echo"}]}),
        ),
        400,
        Some("items[0]"),
    );
    assert_problem(
        &post(
            addr,
            "/v1/items/batch",
            Some(PRODUCER),
            &json!({"items": []}),
        ),
        400,
        Some("items"),
    );
    let delayed: Vec<Value> = (0..3)
        .map(
            |n| json!({"task_type": "echo", "work_unit_key": "later", "payload": n, "delay": "1h"}),
        )
        .collect();
    let batch = post(
        addr,
        "/v1/items/batch",
        Some(PRODUCER),
        &json!({"items": delayed}),
    );
    assert_eq!(batch.status, 201, "{}", batch.body);
    let ids: Vec<i64> = batch.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // Bodies: malformed JSON, unknown fields, both start times, too large.
    let malformed = request(addr, "POST", "/v1/items", Some(PRODUCER), Some(b"{oops"));
    assert_problem(&malformed, 400, None);
    let problem = assert_problem(
        &post(
            addr,
            "/v1/items",
            Some(PRODUCER),
            &json!({"task_type": "echo", "work_unit_key": "k", "payload": 1, "delay": "5s", "run_after": "2030-01-01T00:00:00Z"}),
        ),
        400,
        None,
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("not both"),
        "{problem}"
    );
    assert_problem(
        &post(
            addr,
            "/v1/items",
            Some(PRODUCER),
            &json!({"task_type": "echo", "work_unit_key": "k".repeat(2000), "payload": 1}),
        ),
        400,
        Some("work_unit_key"),
    );
    let huge = json!({"task_type": "echo", "work_unit_key": "k", "payload": "x".repeat(100_000)});
    assert_problem(&post(addr, "/v1/items", Some(PRODUCER), &huge), 413, None);

    // A unit's items, page by page; the delayed items wait.
    let page1 = get(addr, "/v1/units/echo/later/items?limit=2", Some(READER));
    assert_eq!(page1.status, 200, "{}", page1.body);
    let page1 = page1.json();
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert!(page1["items"][0]["run_after_ms"].as_i64().is_some());
    let cursor = page1["next_cursor"].as_str().unwrap().to_string();
    let page2 = get(
        addr,
        &format!("/v1/units/echo/later/items?limit=2&cursor={cursor}"),
        Some(READER),
    )
    .json();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2.get("next_cursor").is_none(), "{page2}");
    let all: Vec<i64> = [&page1, &page2]
        .iter()
        .flat_map(|p| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(all, ids);
    assert_problem(
        &get(addr, "/v1/units/echo/later/items?limit=0", Some(READER)),
        400,
        Some("limit"),
    );
    assert_problem(
        &get(addr, "/v1/units/echo/later/items?cursor=zz", Some(READER)),
        400,
        Some("cursor"),
    );
    assert_problem(
        &get(addr, "/v1/units/echo/later/items?state=odd", Some(READER)),
        400,
        None,
    );

    // Cancelling needs admin.
    assert_problem(
        &post(
            addr,
            "/v1/units/echo/later/cancel",
            Some(PRODUCER),
            &json!({}),
        ),
        403,
        None,
    );
    let cancelled = post(addr, "/v1/units/echo/later/cancel", Some(OPS), &json!({}));
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.json()["cancelled"], 3);
    let left = get(addr, "/v1/units/echo/later/items", Some(READER)).json();
    assert!(left["items"].as_array().unwrap().is_empty(), "{left}");
    assert_problem(
        &get(addr, &format!("/v1/items/{}", ids[0]), Some(READER)),
        404,
        None,
    );

    // Dead letters: list, show, retry and purge.
    let failing = post(
        addr,
        "/v1/items",
        Some(PRODUCER),
        &json!({"task_type": "fail", "work_unit_key": "f", "payload": "permanent"}),
    );
    let dead_id = failing.json()["id"].as_i64().unwrap();
    let dead = wait_for_state(addr, dead_id, "dead");
    assert_eq!(dead["last_error"], "asked to fail permanently");
    assert_eq!(dead["errors"].as_array().unwrap().len(), 1);
    let list = get(addr, "/v1/dead?task_type=fail", Some(READER)).json();
    assert_eq!(list["items"][0]["id"], dead_id);
    assert_eq!(
        get(addr, &format!("/v1/dead/{dead_id}"), Some(READER)).status,
        200
    );
    assert_problem(
        &get(addr, &format!("/v1/dead/{id}"), Some(READER)),
        404,
        None,
    );
    assert_problem(
        &get(addr, "/v1/dead?work_unit_key=f", Some(READER)),
        400,
        Some("work_unit_key"),
    );
    let select = json!({"id": dead_id});
    assert_problem(
        &post(addr, "/v1/dead/retry", Some(READER), &select),
        403,
        None,
    );
    assert_problem(
        &post(addr, "/v1/dead/retry", Some(OPS), &json!({})),
        400,
        None,
    );
    assert_problem(
        &post(
            addr,
            "/v1/dead/retry",
            Some(OPS),
            &json!({"id": 1, "task_type": "x"}),
        ),
        400,
        Some("id"),
    );
    let retried = post(addr, "/v1/dead/retry", Some(OPS), &select);
    assert_eq!(retried.json()["count"], 1, "{}", retried.body);
    let again = wait_for_state(addr, dead_id, "dead");
    assert_eq!(again["errors"].as_array().unwrap().len(), 2, "{again}");
    let purged = post(
        addr,
        "/v1/dead/purge",
        Some(OPS),
        &json!({"task_type": "fail"}),
    );
    assert_eq!(purged.json()["count"], 1, "{}", purged.body);

    // Status and plugins.
    let status = get(addr, "/v1/status", Some(READER));
    assert_eq!(status.status, 200, "{}", status.body);
    let status = status.json();
    assert!(
        status["depths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["task_type"] == "echo" && d["state"] == "done")
    );
    assert!(!status["workers"].as_array().unwrap().is_empty());
    let plugins = get(addr, "/v1/plugins", Some(READER)).json();
    assert!(
        plugins[0]["task_types"]
            .as_array()
            .unwrap()
            .contains(&json!("echo")),
        "{plugins}"
    );

    // Pause and resume a task type: admin only; while paused its items wait.
    assert_problem(
        &post(addr, "/v1/task-types/echo/pause", Some(READER), &json!({})),
        403,
        None,
    );
    let long = "t".repeat(200);
    assert_problem(
        &post(
            addr,
            &format!("/v1/task-types/{long}/pause"),
            Some(OPS),
            &json!({}),
        ),
        400,
        Some("task_type"),
    );
    let paused = post(addr, "/v1/task-types/echo/pause", Some(OPS), &json!({}));
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(paused.json()["changed"], true);
    let again = post(addr, "/v1/task-types/echo/pause", Some(OPS), &json!({})).json();
    assert_eq!(
        (&again["paused"], &again["changed"]),
        (&json!(true), &json!(false))
    );
    let status = get(addr, "/v1/status", Some(READER)).json();
    assert_eq!(status["paused"][0]["task_type"], "echo", "{status}");
    let held = post(
        addr,
        "/v1/items",
        Some(PRODUCER),
        &json!({"task_type": "echo", "work_unit_key": "paused", "payload": {"text": "later"}}),
    )
    .json()["id"]
        .as_i64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let waiting = get(addr, &format!("/v1/items/{held}"), Some(READER)).json();
    assert_eq!(
        waiting["state"], "pending",
        "a paused task type ran: {waiting}"
    );
    let resumed = post(addr, "/v1/task-types/echo/resume", Some(OPS), &json!({})).json();
    assert_eq!(
        (&resumed["paused"], &resumed["changed"]),
        (&json!(false), &json!(true))
    );
    wait_for_state(addr, held, "done");

    host.terminate(Duration::from_secs(30));
}

#[test]
fn the_api_end_to_end_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    the_api_end_to_end(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_end_to_end_on_postgres() {
    let schema = stores::postgres_empty().await;
    tokio::task::block_in_place(|| the_api_end_to_end(&schema.url));
}

#[test]
fn without_tokens_the_api_serves_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    // On a loopback address it serves, and says so.
    let host_dir = HostDir::new(&url, "");
    let addr = free_port();
    let host = host_dir.start_with("open", &[], &[("SLUICE_LISTEN", &addr.to_string())]);
    wait_ready(addr, &host);
    assert_eq!(get(addr, "/v1/status", None).status, 200);
    assert!(
        host.log_text()
            .contains("open to every process on this machine"),
        "{}",
        host.log_text()
    );
    host.terminate(Duration::from_secs(30));
    // Elsewhere it refuses to start.
    let mut refused = host_dir.start_with("refused", &[], &[("SLUICE_LISTEN", "0.0.0.0:0")]);
    let status = refused.wait(Duration::from_secs(30));
    assert!(!status.success());
    let log = refused.log_text();
    assert!(
        log.contains("not a loopback address") && log.contains("api.tokens"),
        "{log}"
    );
}

/// Replaces `name` in `dir` with `bytes` the way a deploy should: write
/// beside it, then rename over it.
fn deploy(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let staging = dir.join(format!(".{name}"));
    std::fs::write(&staging, bytes).unwrap();
    std::fs::rename(&staging, dir.join(name)).unwrap();
}

/// `(name, version)` of each plugin `/v1/plugins` lists.
fn plugins_listed(addr: SocketAddr) -> Vec<(String, String)> {
    let listed = get(addr, "/v1/plugins", Some(READER));
    assert_eq!(listed.status, 200, "{}", listed.body);
    listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_admin_reloads_the_plugins_and_the_api_lists_what_is_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    let (host_dir, host, addr) = start(&url);
    let plugins = host_dir.path().join("plugins");
    let reload_plugin = |listed: &[(String, String)]| {
        listed
            .iter()
            .find(|(name, _)| name.contains("reload"))
            .map(|(_, version)| version.clone())
    };
    assert_eq!(reload_plugin(&plugins_listed(addr)), None);

    // Adding a plugin: only an admin may reload, and the answer says what changed.
    deploy(
        &plugins,
        "reload.wasm",
        &std::fs::read(support::guest_wasm("sluice_test_reload_v1")).unwrap(),
    );
    assert_problem(
        &post(addr, "/v1/plugins/reload", Some(READER), &json!({})),
        403,
        None,
    );
    assert_problem(
        &post(addr, "/v1/plugins/reload", None, &json!({})),
        401,
        None,
    );
    let added = post(addr, "/v1/plugins/reload", Some(OPS), &json!({}));
    assert_eq!(added.status, 200, "{}", added.body);
    let added = added.json();
    assert_eq!(added["added"].as_array().unwrap().len(), 1, "{added}");
    assert!(added["refused"].as_array().unwrap().is_empty(), "{added}");
    assert_eq!(
        reload_plugin(&plugins_listed(addr)).as_deref(),
        Some("1.0.0")
    );

    // Replacing it: the list shows the new version.
    deploy(
        &plugins,
        "reload.wasm",
        &std::fs::read(support::guest_wasm("sluice_test_reload_v2")).unwrap(),
    );
    let replaced = post(addr, "/v1/plugins/reload", Some(OPS), &json!({})).json();
    assert_eq!(
        replaced["replaced"].as_array().unwrap().len(),
        1,
        "{replaced}"
    );
    assert_eq!(
        reload_plugin(&plugins_listed(addr)).as_deref(),
        Some("2.0.0")
    );

    // A broken file is refused, says why, and changes nothing.
    deploy(&plugins, "broken.wasm", b"not a plugin");
    let refused = post(addr, "/v1/plugins/reload", Some(OPS), &json!({})).json();
    let reasons = refused["refused"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{refused}");
    assert!(
        reasons[0].as_str().unwrap().contains("broken.wasm"),
        "{refused}"
    );
    assert!(refused["added"].as_array().unwrap().is_empty(), "{refused}");
    assert_eq!(
        reload_plugin(&plugins_listed(addr)).as_deref(),
        Some("2.0.0")
    );
    host.terminate(Duration::from_secs(30));
}
