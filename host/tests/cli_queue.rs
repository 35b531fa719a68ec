//! The queue commands, run as a producer or operator would: the real binary
//! against a real SQLite file (and Postgres where it matters).

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use sluice::store::{BatchLimits, Claimable, Failure, Gate, RetryPolicy};

fn sluice(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_DATABASE_URL", db)
        .env("SLUICE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs sluice in `dir` with no database or configuration but what `args` say.
fn sluice_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env_remove("SLUICE_DATABASE_URL")
        .env_remove("SLUICE_CONFIG")
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("run sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("queue.db").display())
}

#[test]
fn migrate_then_enqueue_from_flags_and_json_lines_then_status() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let out = sluice(&db, &["migrate"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied 10 migration"));
    assert!(text(&sluice(&db, &["migrate"], None).stdout).contains("up to date"));

    let out = sluice(
        &db,
        &[
            "enqueue",
            "--task",
            "echo",
            "--key",
            "conv-1",
            "--payload",
            r#"{"text":"hi"}"#,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(first["duplicate"], false);

    let lines = concat!(
        r#"{"task_type":"echo","work_unit_key":"conv-2","payload":{"text":"a"},"tokens":12}"#,
        "\n",
        "\n",
        r#"{"task_type":"summary","work_unit_key":"conv-2","payload":"b","dedupe_key":"s-1"}"#,
        "\n",
        r#"{"task_type":"summary","work_unit_key":"conv-3","payload":"c","dedupe_key":"s-1"}"#,
        "\n",
    );
    let out = sluice(&db, &["enqueue"], Some(lines));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["duplicate"], true, "same dedupe key as line 3");
    assert_eq!(results[2]["id"], results[1]["id"]);

    let out = sluice(&db, &["status", "--json"], None);
    let status: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let depth = |t: &str| {
        status["depths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["task_type"] == t && d["state"] == "pending")
            .map(|d| d["count"].as_i64().unwrap())
    };
    assert_eq!(depth("echo"), Some(2));
    assert_eq!(depth("summary"), Some(1));
    let table = text(&sluice(&db, &["status"], None).stdout);
    assert!(
        table.contains("echo") && table.contains("pending"),
        "{table}"
    );
}

#[test]
fn one_bad_json_line_enqueues_nothing_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    assert!(sluice(&db, &["migrate"], None).status.success());
    let cases = [
        (
            concat!(
                r#"{"task_type":"echo","work_unit_key":"k","payload":1}"#,
                "\n",
                "{oops\n"
            ),
            "line 2",
        ),
        (
            concat!(
                r#"{"task_type":"echo","work_unit_key":"k","payload":1}"#,
                "\n\n",
                r#"{"task_type":"echo","work_unit_key":" ","payload":1}"#,
                "\n"
            ),
            "line 3: work_unit_key is empty",
        ),
        (
            r#"{"task_type":"echo","work_unit_key":"k","payload":1,"extra":true}"#,
            "unknown field `extra`",
        ),
    ];
    for (input, expected) in cases {
        let out = sluice(&db, &["enqueue"], Some(input));
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(
            err.contains(expected) && err.contains("nothing was enqueued"),
            "{err}"
        );
    }
    let out = sluice(&db, &["status", "--json"], None);
    let status: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert!(
        status["depths"].as_array().unwrap().is_empty(),
        "nothing was written: {status}"
    );
}

#[tokio::test]
async fn dead_letters_are_listed_shown_retried_and_purged() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let store = sluice::store::open(&db, Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    let mut ids = Vec::new();
    for key in ["a", "b"] {
        let out = sluice(
            &db,
            &[
                "enqueue",
                "--task",
                "echo",
                "--key",
                key,
                "--payload",
                r#"{"n":1}"#,
            ],
            None,
        );
        let e: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        ids.push(e["id"].as_i64().unwrap());
        let gate = [Claimable {
            task_type: "echo".into(),
            gate: Gate::default(),
        }];
        let claim = store
            .claim("w", &gate, 1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        store
            .fetch_batch(
                &claim,
                BatchLimits {
                    max_items: 1,
                    max_tokens: 1,
                },
            )
            .await
            .unwrap();
        store
            .fail(
                &claim,
                &Failure::Permanent("malformed".into()),
                &RetryPolicy::default(),
            )
            .await
            .unwrap();
    }
    let listed = text(&sluice(&db, &["dead", "list", "--task", "echo"], None).stdout);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let shown = text(&sluice(&db, &["dead", "show", &ids[0].to_string()], None).stdout);
    for expected in [
        "task type:     echo",
        "last error:    malformed",
        "\"n\": 1",
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown}");
    }
    let out = sluice(&db, &["dead", "show", &ids[0].to_string(), "--json"], None);
    let item: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(item["last_error"], "malformed");
    assert_eq!(item["payload"]["n"], 1);

    let out = sluice(&db, &["dead", "retry"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "retry without a filter is refused"
    );
    assert!(text(&out.stderr).contains("--id ID, or --task TYPE"));

    let out = sluice(
        &db,
        &["dead", "retry", "--task", "echo", "--key", "a"],
        None,
    );
    assert!(
        text(&out.stdout).contains("retried 1"),
        "{}",
        text(&out.stderr)
    );
    let out = sluice(&db, &["dead", "purge", "--id", &ids[1].to_string()], None);
    assert!(text(&out.stdout).contains("purged 1"));
    assert!(
        text(&sluice(&db, &["dead", "list"], None).stdout)
            .trim()
            .is_empty()
    );
    let status = store.status().await.unwrap();
    assert!(
        status
            .depths
            .iter()
            .any(|d| d.state == "pending" && d.count == 1)
    );
}

#[test]
fn a_pending_migration_can_be_refused_instead_of_applied() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let out = sluice(
        &db,
        &[
            "enqueue",
            "--task",
            "echo",
            "--key",
            "k",
            "--payload",
            "{}",
            "--require-migrated",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("run `sluice migrate`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unreachable_database_fails_with_the_url_and_no_password() {
    let out = sluice(
        "postgres://app:hunter2@127.0.0.1:1/queue",
        &["status"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot connect to the database at postgres://app:***@127.0.0.1:1/queue"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

/// Runs `calls` one-item calls on unit `echo`/`conv` of a new queue at `db`,
/// each storing the output `{"seen": N}`.
async fn store_outputs(db: &str, calls: usize) {
    let store = sluice::store::open(db, Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    let items: Vec<sluice::store::NewItem> = (1..=calls)
        .map(|n| sluice::store::NewItem {
            task_type: "echo".into(),
            work_unit_key: "conv".into(),
            payload: format!(r#"{{"n":{n}}}"#),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect();
    store.enqueue(&items).await.unwrap();
    let gate = [Claimable {
        task_type: "echo".into(),
        gate: Gate::default(),
    }];
    let claim = store
        .claim("w", &gate, 1, Duration::from_secs(60))
        .await
        .unwrap()
        .remove(0);
    for n in 1..=calls {
        let batch = store
            .fetch_batch(
                &claim,
                BatchLimits {
                    max_items: 1,
                    max_tokens: 1,
                },
            )
            .await
            .unwrap();
        let output = format!(r#"{{"seen":{n}}}"#);
        store
            .complete(&claim, &[batch[0].id], Some(&output), &[], None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn outputs_prints_what_the_plugin_returned_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    store_outputs(&db, 2).await;
    let args = ["outputs", "--task", "echo", "--key", "conv", "--json"];
    let out = sluice(&db, &args, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["output"]["seen"], 1);
    assert_eq!(lines[1]["output"]["seen"], 2);
    assert!(lines[0]["item_ids"][0].as_i64() < lines[1]["item_ids"][0].as_i64());
    assert!(lines[0]["created_at_ms"].as_i64().is_some(), "{lines:?}");
}

/// Milliseconds since the epoch of an RFC 3339 time such as the CLI prints.
fn epoch_ms(rfc3339: &str) -> i64 {
    let time = humantime::parse_rfc3339(rfc3339)
        .unwrap_or_else(|err| panic!("{rfc3339:?} is not RFC 3339: {err}"));
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn dead_show_and_outputs_print_rfc3339_times_and_json_keeps_epoch_ms() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let store = sluice::store::open(&db, Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    let items: Vec<sluice::store::NewItem> = ["ok", "bad"]
        .iter()
        .map(|key| sluice::store::NewItem {
            task_type: "echo".into(),
            work_unit_key: key.to_string(),
            payload: "{}".into(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect();
    store.enqueue(&items).await.unwrap();
    let gate = [Claimable {
        task_type: "echo".into(),
        gate: Gate::default(),
    }];
    for claim in store
        .claim("w", &gate, 2, Duration::from_secs(60))
        .await
        .unwrap()
    {
        let batch = store
            .fetch_batch(
                &claim,
                BatchLimits {
                    max_items: 1,
                    max_tokens: 1,
                },
            )
            .await
            .unwrap();
        if claim.work_unit_key == "ok" {
            let ids = [batch[0].id];
            store
                .complete(&claim, &ids, Some(r#"{"done":true}"#), &[], None)
                .await
                .unwrap();
        } else {
            let failure = Failure::Permanent("malformed".into());
            let policy = RetryPolicy::default();
            store.fail(&claim, &failure, &policy).await.unwrap();
        }
    }

    let out = sluice(&db, &["outputs", "--task", "echo", "--key", "ok"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let shown = line.split_whitespace().next().unwrap_or_default();
    assert!(line.contains(r#"{"done":true}"#), "{line}");
    let args = ["outputs", "--task", "echo", "--key", "ok", "--json"];
    let json: serde_json::Value =
        serde_json::from_str(&text(&sluice(&db, &args, None).stdout)).unwrap();
    assert_eq!(
        Some(epoch_ms(shown)),
        json["created_at_ms"].as_i64(),
        "{line}"
    );

    let dead = store.dead_list(None, 1).await.unwrap().remove(0);
    let id = dead.id.to_string();
    let out = sluice(&db, &["dead", "show", &id], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let field = |name: &str| {
        let line = shown
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} line in {shown}"));
        epoch_ms(line[name.len()..].trim())
    };
    assert_eq!(field("created:"), dead.created_at_ms, "{shown}");
    assert_eq!(Some(field("dead since:")), dead.finished_at_ms, "{shown}");
    let failure = shown
        .lines()
        .find(|l| l.trim_start().starts_with("attempt 1 at "))
        .unwrap_or_else(|| panic!("no failure line in {shown}"));
    let at = failure.trim_start()["attempt 1 at ".len()..]
        .split(": ")
        .next()
        .unwrap();
    assert_eq!(
        Some(epoch_ms(at)),
        dead.errors[0]["at_ms"].as_i64(),
        "{shown}"
    );

    let out = sluice(&db, &["dead", "show", &id, "--json"], None);
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(json["created_at_ms"], dead.created_at_ms);
    assert_eq!(json["errors"][0]["at_ms"], dead.errors[0]["at_ms"]);
}

#[test]
fn read_only_verbs_refuse_a_sqlite_file_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    let file = dir.path().join("queue.db");
    let read_only: [&[&str]; 6] = [
        &["status"],
        &["outputs", "--task", "echo", "--key", "k"],
        &["dead", "list"],
        &["dead", "show", "1"],
        &["dead", "retry", "--id", "1"],
        &["dead", "purge", "--task", "echo"],
    ];
    for args in read_only {
        let out = sluice(&db, args, None);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{} does not exist", file.display()))
                && err.contains("check --database-url")
                && err.contains("`sluice migrate`"),
            "{args:?}: {err}"
        );
        let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(created.is_empty(), "{args:?} created {created:?}");
    }
    let out = sluice(
        &db,
        &["enqueue", "--task", "echo", "--key", "k", "--payload", "{}"],
        None,
    );
    assert!(
        out.status.success(),
        "enqueue creates: {}",
        text(&out.stderr)
    );
    let out = sluice(&db, &["status"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn read_only_verbs_refuse_a_postgres_schema_without_sluice_tables() {
    let empty = support::stores::postgres_empty().await;
    for args in [
        &["status"][..],
        &["outputs", "--task", "echo", "--key", "k"],
        &["dead", "list"],
    ] {
        let out = sluice(&empty.url, args, None);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("has no Sluice tables") && err.contains("`sluice migrate`"),
            "{args:?}: {err}"
        );
    }
    let pool = sqlx::PgPool::connect(&empty.url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(tables, 0, "nothing was created");
    let out = sluice(&empty.url, &["migrate"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sluice(&empty.url, &["status"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn database_options_may_follow_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    assert!(sluice(&db, &["migrate"], None).status.success());
    let cwd = tempfile::tempdir().unwrap();
    let config = cwd.path().join("elsewhere.toml");
    std::fs::write(&config, format!("database_url = \"{db}\"\n")).unwrap();
    let config = config.to_str().unwrap();

    let cases: [(&[&str], &str); 4] = [
        (&["dead", "list", "--database-url", &db], ""),
        (
            &["dead", "purge", "--task", "echo", "--config", config],
            "purged 0",
        ),
        (
            &[
                "dead",
                "retry",
                "--id",
                "7",
                "--database-url",
                &db,
                "--require-migrated",
            ],
            "retried 0",
        ),
        (&["status", "--config", config, "--json"], "\"depths\""),
    ];
    for (args, expected) in cases {
        let out = sluice_in(cwd.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(expected),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
    let out = sluice_in(cwd.path(), &["dead", "show", "7", "--database-url", &db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no dead letter with id 7"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !cwd.path().join("sluice.db").exists(),
        "the default database was not used"
    );
}

#[tokio::test]
async fn outputs_purge_deletes_the_outputs_older_than_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    store_outputs(&db, 3).await;
    let shown = |db: &str| {
        let out = sluice(db, &["outputs", "--task", "echo", "--key", "conv"], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().count()
    };

    let out = sluice(&db, &["outputs", "purge", "--older-than", "1day"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "purged 0 output(s) older than 1day"
    );
    assert_eq!(shown(&db), 3);

    let out = sluice(&db, &["outputs", "purge", "--older-than", "0s"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "purged 3 output(s) older than 0s");
    assert_eq!(shown(&db), 0);

    // Mistakes are refused with what to write instead.
    let out = sluice(&db, &["outputs", "purge", "--older-than", "soon"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("like 90days, 12h or 30m"),
        "{}",
        text(&out.stderr)
    );
    let out = sluice(&db, &["outputs", "purge"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--older-than"),
        "{}",
        text(&out.stderr)
    );
    let out = sluice(
        &db,
        &["outputs", "--task", "echo", "purge", "--older-than", "0s"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("by age alone"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pause_and_resume_a_task_type_for_every_host() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(&dir);
    assert!(sluice(&db, &["migrate"], None).status.success());

    let out = sluice(&db, &["pause", "summary"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("paused `summary`"),
        "{}",
        text(&out.stdout)
    );
    let out = sluice(&db, &["pause", "summary"], None);
    assert!(text(&out.stdout).contains("already paused"));
    let status = text(&sluice(&db, &["status"], None).stdout);
    assert!(
        status.contains("paused: summary") && status.contains("sluice resume summary"),
        "{status}"
    );
    let json = text(&sluice(&db, &["status", "--json"], None).stdout);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["paused"][0]["task_type"], "summary", "{json}");

    let out = sluice(&db, &["resume", "summary"], None);
    assert!(text(&out.stdout).contains("resumed `summary`"));
    let out = sluice(&db, &["resume", "summary"], None);
    assert!(text(&out.stdout).contains("was not paused"));
    assert!(!text(&sluice(&db, &["status"], None).stdout).contains("paused:"));

    // A blank task type is refused and changes nothing.
    let out = sluice(&db, &["pause", " "], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("task_type is empty"));
    assert!(!text(&sluice(&db, &["status"], None).stdout).contains("paused:"));
}
