//! The real `sluice run` binary, stopped and killed the ways production stops
//! and kills it: SIGTERM mid-work, SIGKILL with three hosts sharing one
//! Postgres queue, restarts between attempts on a poisoned key, and bad
//! configuration at start.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use sluice::store::{NewItem, Store};
use support::host::{count, wait_until};
use support::process::HostDir;
use support::stores;

/// Timing for every host here: short leases so takeovers happen in seconds.
const FAST: &str = r#"
lease = "2s"
heartbeat_interval = "300ms"
reaper_interval = "300ms"
poll_interval = "200ms"
"#;

fn items(task_type: &str, keys: usize, per_key: usize, payload: &str) -> Vec<NewItem> {
    // Interleave keys, as producers do, so per-key order is a real check.
    (0..per_key)
        .flat_map(|n| {
            (0..keys).map(move |k| NewItem {
                task_type: task_type.into(),
                work_unit_key: format!("key-{k}"),
                payload: payload.replace("N", &n.to_string()),
                tokens: 0,
                dedupe_key: None,
                run_after: None,
            })
        })
        .collect()
}

/// Asserts every enqueued item of each key has exactly one output, and that
/// a key's outputs were written in item order.
async fn assert_exactly_once_in_order(
    store: &dyn Store,
    task_type: &str,
    ids: &BTreeMap<String, Vec<i64>>,
) {
    for (key, expected) in ids {
        let outputs = store.outputs(task_type, key).await.unwrap();
        let written: Vec<i64> = outputs.iter().flat_map(|o| o.item_ids.clone()).collect();
        assert_eq!(
            &written, expected,
            "key {key}: each item must be output exactly once, in id order"
        );
    }
}

async fn enqueue_by_key(store: &dyn Store, items: &[NewItem]) -> BTreeMap<String, Vec<i64>> {
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for chunk in items.chunks(1000) {
        let enqueued = store.enqueue(chunk).await.unwrap();
        for (item, result) in chunk.iter().zip(enqueued) {
            by_key
                .entry(item.work_unit_key.clone())
                .or_default()
                .push(result.id);
        }
    }
    by_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_work_leaves_no_claim_and_a_restart_finishes_the_queue() {
    let db = stores::sqlite().await;
    let store = db.store.clone();
    let ids = enqueue_by_key(store.as_ref(), &items("sleep", 4, 8, r#"{"ms":150,"n":N}"#)).await;
    let dir = HostDir::new(
        &db.url,
        &format!("slots = 4\nshutdown_grace = \"10s\"\n{FAST}"),
    );

    let host = dir.start("first");
    wait_until("some items are done", Duration::from_secs(30), || async {
        count(store.as_ref(), "sleep", "done").await >= 4
    })
    .await;
    let status = host.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "a graceful shutdown exits 0, got {status}"
    );

    let after = store.status().await.unwrap();
    assert_eq!(after.claimed_units, 0, "SIGTERM must leave nothing claimed");
    let done = count(store.as_ref(), "sleep", "done").await;
    let pending = count(store.as_ref(), "sleep", "pending").await;
    assert_eq!(done + pending, 32, "nothing lost");
    assert!(
        pending > 0,
        "the test must stop the host mid-work (done: {done})"
    );
    assert_eq!(count(store.as_ref(), "sleep", "dead").await, 0);

    let restarted = dir.start("second");
    wait_until(
        "the restarted host finishes the queue",
        Duration::from_secs(60),
        || async { count(store.as_ref(), "sleep", "done").await == 32 },
    )
    .await;
    restarted.terminate(Duration::from_secs(20));
    assert_exactly_once_in_order(store.as_ref(), "sleep", &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_grace_period_running_units_are_released_without_an_attempt() {
    let db = stores::sqlite().await;
    let store = db.store.clone();
    store
        .enqueue(&items("sleep", 2, 1, r#"{"ms":60000,"n":N}"#))
        .await
        .unwrap();
    let dir = HostDir::new(
        &db.url,
        &format!("slots = 2\nshutdown_grace = \"500ms\"\n{FAST}"),
    );
    let host = dir.start("host");
    wait_until(
        "both units are claimed",
        Duration::from_secs(30),
        || async { store.status().await.unwrap().claimed_units == 2 },
    )
    .await;
    let status = host.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    assert_eq!(store.status().await.unwrap().claimed_units, 0);
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let attempts: Vec<i64> = sqlx::query_scalar("SELECT attempts FROM sluice_items ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, vec![0, 0], "a shutdown is not the items' fault");
    assert_eq!(count(store.as_ref(), "sleep", "pending").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_key_is_dead_lettered_across_restarts_while_other_keys_flow() {
    const MAX_ATTEMPTS: i64 = 3;
    let db = stores::sqlite().await;
    let store = db.store.clone();
    let poison = store
        .enqueue(&[NewItem {
            task_type: "panic".into(),
            work_unit_key: "poison".into(),
            payload: "{}".into(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        }])
        .await
        .unwrap()[0]
        .id;
    store
        .enqueue(&items("echo", 10, 3, r#"{"n":N}"#))
        .await
        .unwrap();
    let dir = HostDir::new(
        &db.url,
        &format!(
            "slots = 2\n{FAST}\n[tasks.panic]\nmax_attempts = {MAX_ATTEMPTS}\nbackoff_base = \"1s\"\nbackoff_max = \"1s\"\n"
        ),
    );
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let attempts = || async {
        sqlx::query_scalar::<_, i64>("SELECT attempts FROM sluice_items WHERE id = ?")
            .bind(poison)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    // One host per attempt: each is killed as soon as it has failed once more.
    for attempt in 1..MAX_ATTEMPTS {
        let host = dir.start(&format!("host-{attempt}"));
        wait_until(
            &format!("attempt {attempt} is recorded"),
            Duration::from_secs(30),
            || async { attempts().await >= attempt },
        )
        .await;
        host.kill9();
    }
    let last = dir.start("last");
    wait_until(
        "the poisoned item is dead and the rest done",
        Duration::from_secs(60),
        || async {
            count(store.as_ref(), "panic", "dead").await == 1
                && count(store.as_ref(), "echo", "done").await == 30
        },
    )
    .await;
    last.terminate(Duration::from_secs(20));
    assert_eq!(
        attempts().await,
        MAX_ATTEMPTS,
        "dead after exactly max_attempts"
    );
    let dead = store.dead_list(None, 10).await.unwrap();
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("trap"),
        "{dead:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_of_three_hosts_loses_nothing_and_doubles_nothing() {
    const KEYS: usize = 200;
    const PER_KEY: usize = 25;
    let db = stores::postgres().await;
    let store = db.store.clone();
    let ids = enqueue_by_key(store.as_ref(), &items("echo", KEYS, PER_KEY, r#"{"n":N}"#)).await;
    let total = (KEYS * PER_KEY) as i64;
    let dir = HostDir::new(&db.url, &format!("slots = 4\n{FAST}"));
    let victim = dir.start("victim");
    let victim_pid = victim.pid();
    let others = [dir.start("second"), dir.start("third")];

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // The units the victim holds: (key, claim token).
    let victim_claims = || async {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT work_unit_key, claim_token FROM sluice_units
             WHERE claimed_by LIKE '%:' || $1 || ':%'",
        )
        .bind(victim_pid.to_string())
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    wait_until(
        "a fifth of the items are done",
        Duration::from_secs(60),
        || async { count(store.as_ref(), "echo", "done").await >= total / 5 },
    )
    .await;
    while victim_claims().await.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let victim_sessions = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(format!("sluice {victim_pid}"))
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert!(
        victim_sessions().await > 0,
        "a host's sessions are named for its process in pg_stat_activity"
    );
    victim.kill9();
    // A statement the victim sent before it died still runs to its end on the
    // server; its sessions end once it has. Only then is what it holds final.
    wait_until(
        "the killed host's sessions end",
        Duration::from_secs(30),
        || async { victim_sessions().await == 0 },
    )
    .await;
    // What the dead host still holds, and which of those units had work left.
    let held: Vec<(String, i64)> = sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT work_unit_key, claim_token, pending_count FROM sluice_units
         WHERE claimed_by LIKE '%:' || $1 || ':%'",
    )
    .bind(victim_pid.to_string())
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .filter(|(_, _, pending)| *pending > 0)
    .map(|(key, seq, _)| (key, seq))
    .collect();
    assert!(
        !held.is_empty(),
        "the victim must die holding units with work left"
    );

    wait_until(
        "the other hosts finish every item",
        Duration::from_secs(120),
        || async { count(store.as_ref(), "echo", "done").await == total },
    )
    .await;
    for host in others {
        host.terminate(Duration::from_secs(20));
    }
    assert_exactly_once_in_order(store.as_ref(), "echo", &ids).await;
    assert_eq!(store.status().await.unwrap().claimed_units, 0);
    for (key, victim_seq) in held {
        let seq: i64 =
            sqlx::query_scalar("SELECT claim_token FROM sluice_units WHERE work_unit_key = $1")
                .bind(&key)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            seq != victim_seq,
            "unit {key} held by the killed host (claim {victim_seq}) was never claimed again (claim {seq})"
        );
    }
}

/// The items a host's log says it completed: it logs "items done" only once
/// their group commit's transaction has committed.
fn acknowledged(log: &str) -> Vec<i64> {
    // A last line still being written (or cut short by a kill) says nothing yet.
    let complete = &log[..log.rfind('\n').map_or(0, |end| end + 1)];
    complete
        .lines()
        .filter(|line| line.contains("items done"))
        .flat_map(|line| {
            let list = &line[line.rfind("items=[").expect("items done names its items") + 7..];
            let list = &list[..list.find(']').expect("a closed list")];
            list.split(", ")
                .map(|id| id.parse::<i64>().expect("an item id"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_group_commit_loses_no_acknowledged_outcome_and_applies_none_twice() {
    const KEYS: usize = 100;
    const PER_KEY: usize = 50;
    let db = stores::postgres().await;
    let store = db.store.clone();
    let ids = enqueue_by_key(store.as_ref(), &items("echo", KEYS, PER_KEY, r#"{"n":N}"#)).await;
    let total = (KEYS * PER_KEY) as i64;
    // Many slots, so that group commits of many units are always in flight.
    let dir = HostDir::new(
        &db.url,
        &format!("slots = 16\nmax_connections = 20\n{FAST}"),
    );
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut kills = 0;
    for round in 0..4 {
        let before = count(store.as_ref(), "echo", "done").await;
        let host = dir.start(&format!("round-{round}"));
        let log = host.log.clone();
        // Items are done in the database a moment before the host hears its
        // group commit landed and says so: wait for both, so that there are
        // acknowledgements to check.
        wait_until(
            "the host completes items and acknowledges some",
            Duration::from_secs(60),
            || async {
                count(store.as_ref(), "echo", "done").await >= (before + 100).min(total)
                    && !acknowledged(&std::fs::read_to_string(&log).unwrap_or_default()).is_empty()
            },
        )
        .await;
        if count(store.as_ref(), "echo", "done").await == total {
            break;
        }
        host.kill9();
        kills += 1;
        let done: std::collections::HashSet<i64> =
            sqlx::query_scalar("SELECT id FROM sluice_items WHERE state = 'done'")
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect();
        let acknowledged = acknowledged(&std::fs::read_to_string(&log).unwrap());
        let lost: Vec<_> = acknowledged
            .iter()
            .filter(|id| !done.contains(id))
            .collect();
        assert!(
            lost.is_empty(),
            "acknowledged completions must survive kill -9: {lost:?}"
        );
    }
    assert!(
        kills >= 2,
        "the test must kill hosts mid-work ({kills} kills)"
    );
    let last = dir.start("last");
    wait_until(
        "a last host finishes every item",
        Duration::from_secs(120),
        || async { count(store.as_ref(), "echo", "done").await == total },
    )
    .await;
    last.terminate(Duration::from_secs(20));
    assert_exactly_once_in_order(store.as_ref(), "echo", &ids).await;
    assert_eq!(count(store.as_ref(), "echo", "dead").await, 0);
}

#[test]
fn bad_configuration_stops_the_host_naming_the_key_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let cases = [
        ("slotz = 3\n", "slotz"),
        ("slots = 0\n", "slots"),
        ("[defaults]\ntimeout = \"forever\"\n", "timeout"),
        ("plugins_dir = \"nowhere\"\n", "plugins_dir"),
    ];
    for (config, key) in cases {
        std::fs::write(
            dir.path().join("sluice.toml"),
            format!("database_url = \"sqlite://{}\"\n{config}", db.display()),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("run")
            .current_dir(dir.path())
            .env_remove("SLUICE_DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}: {stderr}");
        assert!(
            stderr.contains(key),
            "{config}: the error must name `{key}`: {stderr}"
        );
        assert!(
            !db.exists(),
            "{config}: a refused start must not create the database"
        );
    }
}

/// `sluice run` with 1,000 slots from a shell that ran `ulimit` with
/// `limits` first; stops it once it listens. Returns its output and, when it
/// listened, its "Max open files" line from `/proc`.
fn run_with_file_limits(limits: &str) -> (std::process::Output, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "database_url = \"sqlite://{}\"\ncache_dir = {:?}\nslots = 1000\nlisten = \"127.0.0.1:{port}\"\n",
            dir.path().join("queue.db").display(),
            support::target_dir().join("sluice-test-cache"),
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        support::adversary_wasm(),
        dir.path().join("plugins/adversary.wasm"),
    )
    .unwrap();
    let mut child = std::process::Command::new("sh")
        .args(["-c", &format!("ulimit {limits} && exec \"$0\" run")])
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(dir.path())
        .env_remove("SLUICE_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut limits_seen = None;
    while started.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            limits_seen = std::fs::read_to_string(format!("/proc/{}/limits", child.id()))
                .unwrap()
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .map(str::to_string);
            std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), limits_seen)
}

#[test]
fn many_slots_raise_the_soft_open_file_limit_or_refuse_a_low_hard_one() {
    // A soft limit of 512 is raised to the hard limit, when that fits 1,000
    // slots (it is 20,000 on the project's machines).
    let ours = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard = ours
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(4)?.parse::<u64>().ok());
    if hard.is_some_and(|hard| hard < 2000) {
        eprintln!("skipping the raise: this process's hard open-file limit is {hard:?}");
    } else {
        let (out, limits) = run_with_file_limits("-Sn 512");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let limits = limits.unwrap_or_else(|| panic!("the host never listened: {stderr}"));
        let fields: Vec<&str> = limits.split_whitespace().collect();
        let soft: u64 = fields[3].parse().unwrap();
        assert!(soft >= 1000, "soft open-file limit still {soft}: {limits}");
        assert_eq!(
            fields[3], fields[4],
            "soft limit not raised to the hard one: {limits}"
        );
        assert!(out.status.success(), "{stderr}");
    }

    // A hard limit below what the slots need stops it before it starts.
    let (out, limits) = run_with_file_limits("-n 512");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(limits.is_none(), "it started: {stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("slots = 1000") && stderr.contains("LimitNOFILE"),
        "the error must name the slots and how to raise the limit: {stderr}"
    );
}

#[test]
fn sluice_config_prints_the_effective_configuration_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        support::guest_wasm("sluice_plugin_webhook"),
        dir.path().join("plugins/webhook.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        r#"
database_url = "postgres://app:hunter2@db.internal/queue?sslpassword=pw0rd"
slots = 3
[tasks.webhook.config]
url = "https://hooks.example.com/in"
callback = "https://bot:t0ken@hooks.example.com/cb?sig=abc123"
signing_secret = "s3cr3t"
delivery_token = "tok3n"
max_tokens = "256"
[llm.providers.main]
kind = "openai"
base_url = "https://user:pa55@llm.internal/v1"
api_key_env = "MAIN_LLM_KEY"
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("config")
        .current_dir(dir.path())
        .env("SLUICE_LEASE", "45s")
        .env("MAIN_LLM_KEY", "sk-live-key")
        .env(
            "SLUICE_CACHE_DIR",
            support::target_dir().join("sluice-test-cache"),
        )
        .env_remove("SLUICE_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: toml::Value = toml::from_str(&stdout).expect("the output is TOML");
    assert_eq!(shown["slots"].as_integer(), Some(3), "the file applies");
    assert_eq!(
        shown["lease"].as_str(),
        Some("45s"),
        "the environment applies"
    );
    assert_eq!(
        shown["defaults"]["max_attempts"].as_integer(),
        Some(5),
        "defaults are shown"
    );
    for secret in [
        "hunter2",
        "pw0rd",
        "s3cr3t",
        "tok3n",
        "pa55",
        "t0ken",
        "abc123",
        "sk-live-key",
    ] {
        assert!(!stdout.contains(secret), "`{secret}` leaked:\n{stdout}");
    }
    assert!(stdout.contains("https://hooks.example.com/in"));
    assert!(stdout.contains("https://***:***@hooks.example.com/cb?sig=***"));
    assert!(stdout.contains("postgres://app:***@db.internal/queue"));
    assert_eq!(
        shown["tasks"]["webhook"]["config"]["max_tokens"].as_str(),
        Some("256"),
        "a count of tokens is not a secret"
    );
    assert!(
        stdout.contains("MAIN_LLM_KEY"),
        "the key's variable name is shown, not its value"
    );
}
