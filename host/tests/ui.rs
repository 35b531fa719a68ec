//! The dashboard under /ui, server side, against `sluice run` and `sluice
//! ui` on both backends: sign-in and scopes, counts read off the pages,
//! a unit's error history, retry and purge through the confirmation page,
//! refusal of actions without the session's CSRF token or with a `read`
//! token, and the address rule without tokens.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::http_client::{Response, request, send};
use support::process::{HostDir, HostProcess};
use support::stores;

const PRODUCER: &str = "producer-token-1";
const READER: &str = "reader-token-2";
const OPS: &str = "ops-token-3";

const TOKENS: &str = r#"
[api.tokens.producer]
scope = "enqueue"
token_env = "TEST_PRODUCER_TOKEN"
[api.tokens.reader]
scope = "read"
token_env = "TEST_READER_TOKEN"
[api.tokens.ops]
scope = "admin"
token_env = "TEST_OPS_TOKEN"
"#;

const TOKEN_ENV: [(&str, &str); 3] = [
    ("TEST_PRODUCER_TOKEN", PRODUCER),
    ("TEST_READER_TOKEN", READER),
    ("TEST_OPS_TOKEN", OPS),
];

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn wait_serving(addr: SocketAddr, path: &str, host: &HostProcess) {
    let started = Instant::now();
    loop {
        if std::net::TcpStream::connect(addr).is_ok()
            && request(addr, "GET", path, None, None).status < 500
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never served {path}; log:\n{}",
            host.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(url: &str, tokens: bool) -> (HostDir, HostProcess, SocketAddr) {
    let dir = HostDir::new(
        url,
        &format!(
            "poll_interval = \"200ms\"\n[defaults]\nmax_attempts = 1\n{}",
            if tokens { TOKENS } else { "" }
        ),
    );
    let addr = free_port();
    let listen = addr.to_string();
    let mut env = vec![("SLUICE_LISTEN", listen.as_str())];
    env.extend(TOKEN_ENV);
    let host = dir.start_with("ui", &[], &env);
    wait_serving(addr, "/readyz", &host);
    (dir, host, addr)
}

/// `sluice ui` in `dir` on `listen`; its log goes beside the host's.
fn start_ui(dir: &HostDir, listen: &str) -> HostProcess {
    let log = dir.path().join("sluice-ui.log");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["ui", "--listen", listen])
        .current_dir(dir.path())
        .env("SLUICE_LOG", "info,sqlx=warn")
        .env_remove("SLUICE_DATABASE_URL")
        .envs(TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start sluice ui");
    HostProcess { child, log }
}

/// A signed-in browser: its cookie, and the CSRF token its pages carry.
struct Session {
    addr: SocketAddr,
    cookie: Option<String>,
}

impl Session {
    fn open(addr: SocketAddr) -> Self {
        Self { addr, cookie: None }
    }

    fn sign_in(addr: SocketAddr, token: &str) -> Self {
        let response = form(addr, "/ui/login", None, &[("token", token)]);
        assert_eq!(response.status, 303, "{}", response.body);
        assert_eq!(response.header("location"), Some("/ui"));
        let cookie = response.header("set-cookie").expect("a cookie").to_string();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        let pair = cookie.split(';').next().unwrap().to_string();
        Self {
            addr,
            cookie: Some(pair),
        }
    }

    fn get(&self, path: &str) -> Response {
        let headers: Vec<(&str, &str)> =
            self.cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        send(self.addr, "GET", path, &headers, None)
    }

    fn page(&self, path: &str) -> String {
        let response = self.get(path);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        response.body
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        form(self.addr, path, self.cookie.as_deref(), fields)
    }

    /// The CSRF token in the hidden fields of `path`'s page.
    fn csrf(&self, path: &str) -> String {
        let page = self.page(path);
        attribute_after(&page, "name=\"csrf\" value=\"").expect("a csrf field")
    }
}

fn form(addr: SocketAddr, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", *c)).collect();
    send(
        addr,
        "POST",
        path,
        &headers,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

fn attribute_after(page: &str, marker: &str) -> Option<String> {
    let start = page.find(marker)? + marker.len();
    Some(page[start..].split('"').next()?.to_string())
}

/// The number in the overview's cell `field` of `task_type`'s row; 0 when
/// the task type has no row.
fn cell(page: &str, task_type: &str, field: &str) -> i64 {
    let Some(at) = page.find(&format!("<tr data-task-type=\"{task_type}\">")) else {
        return 0;
    };
    let row = &page[at..];
    let row = &row[..row.find("</tr>").unwrap()];
    let marker = format!("data-field=\"{field}\">");
    let value = &row[row.find(&marker).unwrap() + marker.len()..];
    let value = &value[..value.find("</td>").unwrap()];
    // Drop the markup (the dead count is a link).
    let mut text = String::new();
    let mut in_tag = false;
    for c in value.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{field} of {task_type} is not a number: {row}"))
}

fn enqueue(addr: SocketAddr, item: Value) -> i64 {
    let created = request(
        addr,
        "POST",
        "/v1/items",
        Some(PRODUCER),
        Some(item.to_string().as_bytes()),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    created.json()["id"].as_i64().unwrap()
}

fn wait_for(addr: SocketAddr, id: i64, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let item = request(addr, "GET", &format!("/v1/items/{id}"), Some(READER), None);
        if item.status == 200 && check(&item.json()) {
            return item.json();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "item {id} never {what}: {}",
            item.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn the_dashboard(url: &str) {
    let (dir, host, addr) = start(url, true);

    // Without a session every page sends the browser to sign in.
    let anonymous = Session::open(addr);
    for path in [
        "/ui",
        "/ui/dead",
        "/ui/hosts",
        "/ui/units?task_type=echo",
        "/ui/overview/table",
    ] {
        let response = anonymous.get(path);
        assert_eq!(response.status, 303, "{path}");
        assert_eq!(response.header("location"), Some("/ui/login"), "{path}");
    }
    assert!(anonymous.page("/ui/login").contains("name=\"token\""));
    assert_eq!(
        form(addr, "/ui/login", None, &[("token", "not-a-token")]).status,
        401
    );
    let producer = form(addr, "/ui/login", None, &[("token", PRODUCER)]);
    assert_eq!(producer.status, 403);
    assert!(
        producer.body.contains("scope `enqueue`"),
        "{}",
        producer.body
    );
    assert!(producer.header("set-cookie").is_none());

    // A queue in several states: three done, one dead, two pending that no
    // plugin serves.
    let done: Vec<i64> = (0..3)
        .map(|n| {
            enqueue(
                addr,
                json!({"task_type": "echo", "work_unit_key": format!("e{n}"), "payload": {"n": n}}),
            )
        })
        .collect();
    let dead = enqueue(
        addr,
        json!({"task_type": "fail", "work_unit_key": "f/1", "payload": "permanent"}),
    );
    for n in 0..2 {
        enqueue(
            addr,
            json!({"task_type": "nobody", "work_unit_key": "n", "payload": {"n": n}}),
        );
    }
    for id in &done {
        wait_for(addr, *id, "done", |item| item["state"] == "done");
    }
    wait_for(addr, dead, "dead", |item| item["state"] == "dead");

    let reader = Session::sign_in(addr, READER);
    let overview = reader.page("/ui");
    assert_eq!(cell(&overview, "echo", "done"), 3, "{overview}");
    assert_eq!(cell(&overview, "echo", "pending"), 0);
    assert_eq!(cell(&overview, "fail", "dead"), 1);
    assert_eq!(cell(&overview, "nobody", "pending"), 2);
    assert_eq!(cell(&overview, "nobody", "in-flight"), 0);
    assert!(
        overview.contains("reader (read)"),
        "the page names who signed in"
    );
    // The polled fragment carries the same figures.
    let table = reader.page("/ui/overview/table");
    assert_eq!(cell(&table, "nobody", "pending"), 2);
    let minutes: Value = serde_json::from_str(&reader.page("/ui/overview/minutes")).unwrap();
    let finished: i64 = minutes
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["done"].as_i64().unwrap() + m["dead"].as_i64().unwrap())
        .sum();
    assert_eq!(finished, 4, "{minutes}");

    // Units: search, and the dead item's error history on its unit's page.
    let search = reader.page("/ui/units?task_type=nobody&key=n");
    assert!(
        search.contains("/ui/unit?task_type=nobody&amp;key=n"),
        "{search}"
    );
    let unit = reader.page("/ui/unit?task_type=fail&key=f%2F1");
    assert!(unit.contains("asked to fail permanently"), "{unit}");
    assert!(unit.contains(&format!("data-item=\"{dead}\"")), "{unit}");
    let pending_unit = reader.page("/ui/unit?task_type=nobody&key=n");
    assert!(
        pending_unit.contains("data-field=\"pending\">2 items"),
        "{pending_unit}"
    );
    assert!(
        overview.contains(
            "<tr data-calls=\"echo\"><td>echo</td><td class=\"num\" data-field=\"calls\">3<"
        ),
        "three echo calls in the latest calls: {overview}"
    );
    let echo_unit = reader.page("/ui/unit?task_type=echo&key=e0");
    assert!(
        echo_unit.contains("data-field=\"plugin\">adversary 0.1.0</span>"),
        "the output names the plugin version that produced it: {echo_unit}"
    );
    let item = reader.page(&format!("/ui/item/{}", done[0]));
    assert!(item.contains("data-field=\"state\">done"), "{item}");

    // Hosts and plugins.
    let hosts = reader.page("/ui/hosts");
    assert!(hosts.contains(env!("CARGO_PKG_VERSION")), "{hosts}");
    assert!(hosts.contains("<td>echo</td>"), "{hosts}");

    // A read token sees no action and may not act, even with its own CSRF token.
    let reader_dead = reader.page("/ui/dead?task_type=fail");
    assert!(reader_dead.contains(&format!("data-item=\"{dead}\"")));
    assert!(!reader_dead.contains("Retry selected"), "{reader_dead}");
    assert!(!reader_dead.contains("type=\"checkbox\""));
    assert!(!reader.page(&format!("/ui/item/{dead}")).contains(">Retry<"));
    let reader_csrf = reader.csrf("/ui");
    let id = dead.to_string();
    let refused = reader.post(
        "/ui/dead/act",
        &[
            ("csrf", &reader_csrf),
            ("action", "retry-selected"),
            ("id", &id),
        ],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    // An admin acts, but only with the session's CSRF token.
    let ops = Session::sign_in(addr, OPS);
    let ops_dead = ops.page("/ui/dead?task_type=fail");
    assert!(ops_dead.contains("Retry selected"), "{ops_dead}");
    let csrf = ops.csrf("/ui/dead?task_type=fail");
    for forged in [
        vec![("action", "retry-selected"), ("id", id.as_str())],
        vec![
            ("csrf", "0123"),
            ("action", "retry-selected"),
            ("id", id.as_str()),
        ],
        vec![
            ("csrf", reader_csrf.as_str()),
            ("action", "retry-selected"),
            ("id", id.as_str()),
        ],
    ] {
        let response = ops.post("/ui/dead/act", &forged);
        assert_eq!(response.status, 403, "{forged:?}: {}", response.body);
        assert!(response.body.contains("CSRF"), "{}", response.body);
    }
    // Nothing was retried by the refused requests.
    let still = wait_for(addr, dead, "dead", |item| item["state"] == "dead");
    assert_eq!(still["errors"].as_array().unwrap().len(), 1);

    // Retry one: the confirmation says how many, then it runs (and fails again).
    let confirm = ops.post(
        "/ui/dead/confirm",
        &[("csrf", &csrf), ("action", "retry-selected"), ("id", &id)],
    );
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("data-count=\"1\""),
        "{}",
        confirm.body
    );
    let retried = ops.post(
        "/ui/dead/act",
        &[("csrf", &csrf), ("action", "retry-selected"), ("id", &id)],
    );
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert!(
        retried.body.contains("Retried 1 dead letter"),
        "{}",
        retried.body
    );
    let again = wait_for(addr, dead, "dead again", |item| {
        item["state"] == "dead" && item["errors"].as_array().unwrap().len() == 2
    });
    assert_eq!(again["last_error"], "asked to fail permanently");

    // Purge every match of a filter on the error text.
    let fields = [
        ("csrf", csrf.as_str()),
        ("action", "purge-all"),
        ("error", "FAIL PERMANENTLY"),
    ];
    let confirm = ops.post("/ui/dead/confirm", &fields);
    assert!(
        confirm.body.contains("data-count=\"1\""),
        "{}",
        confirm.body
    );
    let nothing = ops.post(
        "/ui/dead/confirm",
        &[
            ("csrf", &csrf),
            ("action", "purge-all"),
            ("error", "no such text"),
        ],
    );
    assert!(
        nothing.body.contains("data-count=\"0\""),
        "{}",
        nothing.body
    );
    let purged = ops.post("/ui/dead/act", &fields);
    assert!(
        purged.body.contains("Purged 1 dead letter"),
        "{}",
        purged.body
    );
    assert_eq!(
        request(
            addr,
            "GET",
            &format!("/v1/items/{dead}"),
            Some(READER),
            None
        )
        .status,
        404
    );
    assert_eq!(cell(&ops.page("/ui"), "fail", "dead"), 0);

    // What producers wrote is shown as text, never as markup.
    let hostile = "<img src=x onerror=alert(1)>";
    let marked = enqueue(
        addr,
        json!({"task_type": "fail", "work_unit_key": hostile, "payload": "permanent"}),
    );
    wait_for(addr, marked, "dead", |item| item["state"] == "dead");
    let encoded: String = url::form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
    for path in [
        format!("/ui/dead?task_type=fail&key={encoded}"),
        format!("/ui/item/{marked}"),
        format!("/ui/unit?task_type=fail&key={encoded}"),
        format!("/ui/units?task_type=fail&key={encoded}"),
    ] {
        let page = ops.page(&path);
        assert!(
            page.contains("&lt;img src=x"),
            "{path}: the key is not shown: {page}"
        );
        assert!(!page.contains(hostile), "{path}: the key is markup: {page}");
    }
    let purged = ops.post(
        "/ui/dead/act",
        &[
            ("csrf", &csrf),
            ("action", "purge-all"),
            ("task_type", "fail"),
        ],
    );
    assert!(
        purged.body.contains("Purged 1 dead letter"),
        "{}",
        purged.body
    );

    // Bad filters are named.
    let bad = ops.get("/ui/dead?older_than=soon");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("not a duration"), "{}", bad.body);

    // Signing out forgets the session.
    let out = ops.post("/ui/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));

    // `sluice ui` serves the same pages from the database, processing nothing.
    let ui_addr = free_port();
    let ui = start_ui(&dir, &ui_addr.to_string());
    wait_serving(ui_addr, "/ui/login", &ui);
    let viewer = Session::sign_in(ui_addr, READER);
    let overview = viewer.page("/ui");
    assert_eq!(cell(&overview, "echo", "done"), 3, "{overview}");
    assert_eq!(cell(&overview, "nobody", "pending"), 2);
    assert!(viewer.page("/ui/hosts").contains("runs no plugins"));

    // A host that is draining says so: a first SIGTERM while a call runs.
    enqueue(
        addr,
        json!({"task_type": "sleep", "work_unit_key": "s", "payload": {"ms": 3000}}),
    );
    let started = Instant::now();
    while cell(&viewer.page("/ui"), "sleep", "in-flight") != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sleep call never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        viewer
            .page("/ui/hosts")
            .contains("data-field=\"status\">running<")
    );
    let mut host = host;
    host.signal("-TERM");
    let started = Instant::now();
    while !viewer
        .page("/ui/hosts")
        .contains("data-field=\"status\"><span class=\"state-pending\">draining</span>")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the host never showed as draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(host.wait(Duration::from_secs(30)).success());
}

#[test]
fn the_dashboard_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    the_dashboard(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_on_postgres() {
    let schema = stores::postgres_empty().await;
    tokio::task::block_in_place(|| the_dashboard(&schema.url));
}

#[test]
fn without_tokens_the_dashboard_is_open_on_loopback_only_and_still_needs_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    let (host_dir, host, addr) = start(&url, false);
    let open = Session::open(addr);
    let page = open.page("/ui");
    assert!(page.contains("no tokens configured"), "{page}");
    // No other site may frame it, and a request that names another host (a
    // web page reaching 127.0.0.1 through DNS rebinding) is refused, here
    // and on the API.
    let framed = send(addr, "GET", "/ui", &[], None);
    assert_eq!(framed.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        framed.header("content-security-policy"),
        Some("frame-ancestors 'none'")
    );
    for path in ["/ui", "/ui/dead", "/v1/status"] {
        let rebound = send(addr, "GET", path, &[("Host", "evil.example:9464")], None);
        assert_eq!(rebound.status, 403, "{path}: {}", rebound.body);
        assert!(rebound.body.contains("loopback host"), "{}", rebound.body);
        let local = send(addr, "GET", path, &[("Host", "localhost:9464")], None);
        assert_eq!(local.status, 200, "{path}: {}", local.body);
    }
    assert_eq!(
        open.get("/ui/login").status,
        303,
        "no sign-in without tokens"
    );
    let refused = open.post("/ui/dead/act", &[("action", "purge-all")]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let dead = enqueue(
        addr,
        json!({"task_type": "fail", "work_unit_key": "f", "payload": "permanent"}),
    );
    wait_for(addr, dead, "dead", |item| item["state"] == "dead");
    let csrf = open.csrf("/ui/dead");
    let confirm = open.post(
        "/ui/dead/confirm",
        &[("csrf", &csrf), ("action", "purge-all")],
    );
    assert!(
        confirm.body.contains("data-count=\"1\""),
        "{}",
        confirm.body
    );
    let purged = open.post("/ui/dead/act", &[("csrf", &csrf), ("action", "purge-all")]);
    assert!(
        purged.body.contains("Purged 1 dead letter"),
        "{}",
        purged.body
    );

    // `sluice ui` refuses a non-loopback address without tokens.
    let mut ui = start_ui(&host_dir, "0.0.0.0:0");
    let status = ui.wait(Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        ui.log_text()
            .contains("not a loopback address and [api.tokens] is empty"),
        "{}",
        ui.log_text()
    );
    host.terminate(Duration::from_secs(30));
}
