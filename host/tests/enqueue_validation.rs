//! One validation for every door and both backends: the same bad items,
//! written as JSON the way producers write them, are refused by the store on
//! SQLite and on Postgres, by `sluice enqueue` (which names the line) and by
//! the Postgres SQL function `sluice_enqueue_many` (which names the item),
//! each with an error that names the field at fault, and nothing is written.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use sluice::store::{NewItem, Store};
use support::stores::{self, TestStore};

const GOOD: &str = r#"{"task_type":"echo","work_unit_key":"k","payload":{"n":1}}"#;

/// A bad item as JSON, what every door's error must say, and whether the
/// Postgres JSON parser refuses it before any Sluice code sees it (`\u0000`
/// and lone surrogates cannot be `jsonb`, so the SQL door's error is
/// Postgres's own).
struct Case {
    json: String,
    says: &'static str,
    jsonb_refuses: bool,
}

fn case(json: impl Into<String>, says: &'static str) -> Case {
    Case {
        json: json.into(),
        says,
        jsonb_refuses: false,
    }
}

fn item_with(field: &str, value: serde_json::Value) -> String {
    let mut item: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    item[field] = value;
    item.to_string()
}

fn nested(depth: usize) -> serde_json::Value {
    let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    serde_json::from_str(&text).unwrap()
}

fn cases() -> Vec<Case> {
    use serde_json::json;
    let mut cases = vec![
        case(item_with("task_type", json!("")), "task_type is empty"),
        case(item_with("task_type", json!(" \t")), "task_type is empty"),
        case(
            item_with("task_type", json!("t".repeat(200))),
            "task_type is 200 bytes, over the limit of 128",
        ),
        case(
            item_with("task_type", json!("t".repeat(8000))),
            "task_type is 8000 bytes",
        ),
        case(
            item_with("task_type", json!("a\nb")),
            "task_type contains a control character",
        ),
        case(item_with("task_type", json!(7)), "task_type"),
        case(
            item_with("work_unit_key", json!("")),
            "work_unit_key is empty",
        ),
        case(
            item_with("work_unit_key", json!("k".repeat(10 * 1024))),
            "work_unit_key is 10240 bytes, over the limit of 1024",
        ),
        case(item_with("dedupe_key", json!(" ")), "dedupe_key is empty"),
        case(
            item_with("dedupe_key", json!("d".repeat(2000))),
            "dedupe_key is 2000 bytes",
        ),
        case(r#"{"task_type":"echo","work_unit_key":"k"}"#, "payload"),
        case(
            item_with("payload", nested(65)),
            "payload nests deeper than 64 levels",
        ),
        case(
            r#"{"task_type":"echo","work_unit_key":"k","payload":1e400}"#,
            "number out of range",
        ),
        case(
            item_with("payload", json!("x".repeat(1_100_000))),
            "payload is 1100002 bytes, over the limit of 1048576",
        ),
        case(item_with("tokens", json!(-1)), "tokens"),
        case(item_with("tokens", json!(1.5)), "tokens"),
        case(item_with("tokens", json!(5_000_000_000u64)), "tokens"),
        case(item_with("tokens", json!("3")), "tokens"),
        case(item_with("extra", json!(true)), "unknown field `extra`"),
        case(
            r#"{"task_type":"echo","work_unit_key":"k","payload":1,"run_after":"2030-01-01T00:00:00Z","delay":"5s"}"#,
            "give run_after or delay, not both",
        ),
        case(
            item_with("run_after", json!("tomorrow")),
            "run_after `tomorrow` is not an RFC 3339 time",
        ),
        case(
            item_with("run_after", json!("10000-01-01T00:00:00Z")),
            "run_after",
        ),
        case(
            item_with("delay", json!("soon")),
            "delay `soon` is not a duration",
        ),
        case(
            item_with("delay", json!("5 fortnights")),
            "delay `5 fortnights` is not a duration",
        ),
        case(item_with("delay", json!("4000d")), "delay is"),
        case(
            "[]",
            "a JSON object with task_type, work_unit_key and payload",
        ),
    ];
    for (json, says) in [
        (
            r#"{"task_type":"echo","work_unit_key":"k","payload":"a\u0000b"}"#,
            "payload contains a NUL character",
        ),
        (
            r#"{"task_type":"echo","work_unit_key":"k","payload":{"a\u0000":1}}"#,
            "payload contains a NUL character",
        ),
        (
            r#"{"task_type":"echo","work_unit_key":"k","payload":"\ud800"}"#,
            "payload is not valid JSON",
        ),
        (
            r#"{"task_type":"echo","work_unit_key":"k\u0000","payload":1}"#,
            "work_unit_key contains a NUL character",
        ),
        (
            r#"{"task_type":"ec\u0000ho","work_unit_key":"k","payload":1}"#,
            "task_type contains a NUL character",
        ),
    ] {
        cases.push(Case {
            json: json.into(),
            says,
            jsonb_refuses: true,
        });
    }
    cases
}

/// The JSON door of the store: parse as every JSON door does, then enqueue
/// behind a good item.
async fn refused_by_store(t: &TestStore) {
    for case in cases() {
        let parsed: Result<NewItem, _> = serde_json::from_str(&case.json);
        let message = match parsed {
            Err(err) => err.to_string(),
            Ok(bad) => {
                let good: NewItem = serde_json::from_str(GOOD).unwrap();
                let err = t
                    .store
                    .enqueue(&[good, bad])
                    .await
                    .expect_err(&case.json[..80.min(case.json.len())]);
                let message = err.to_string();
                assert!(message.starts_with("item 1: "), "{message}");
                assert!(message.ends_with("nothing was enqueued"), "{message}");
                message
            }
        };
        assert!(
            message.contains(case.says),
            "expected `{}`: {message}",
            case.says
        );
    }
    assert_nothing_written(&*t.store).await;
}

async fn assert_nothing_written(store: &dyn Store) {
    let status = store.status().await.unwrap();
    assert!(
        status.depths.is_empty(),
        "nothing was enqueued: {:?}",
        status.depths
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_refuses_every_bad_item_on_sqlite() {
    refused_by_store(&stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_refuses_every_bad_item_on_postgres() {
    refused_by_store(&stores::postgres().await).await;
}

/// `sluice enqueue` with a good line 1 and the bad item on line 2.
fn refused_by_cli(t: &TestStore) {
    for case in cases() {
        let input = format!("{GOOD}\n{}\n", case.json);
        let err = enqueue_cli(&t.url, input.as_bytes());
        assert!(err.contains("line 2: "), "{err}");
        assert!(err.contains(case.says), "expected `{}`: {err}", case.says);
        assert!(err.contains("nothing was enqueued"), "{err}");
        assert!(
            !err.contains("at line 6"),
            "no Postgres source lines: {err}"
        );
    }
    let mut not_utf8 = format!("{GOOD}\n").into_bytes();
    not_utf8
        .extend_from_slice(b"{\"task_type\":\"echo\",\"work_unit_key\":\"k\xff\",\"payload\":1}\n");
    let err = enqueue_cli(&t.url, &not_utf8);
    assert!(err.contains("line 2: not UTF-8"), "{err}");
}

/// Runs `sluice enqueue` on `input`; it must fail, and its stderr is returned.
fn enqueue_cli(url: &str, input: &[u8]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["enqueue", "--database-url", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_every_bad_line_on_sqlite() {
    let t = stores::sqlite().await;
    tokio::task::block_in_place(|| refused_by_cli(&t));
    assert_nothing_written(&*t.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_every_bad_line_on_postgres() {
    let t = stores::postgres().await;
    tokio::task::block_in_place(|| refused_by_cli(&t));
    assert_nothing_written(&*t.store).await;
}

/// `sluice_enqueue_many` with a good item first and the bad one second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_function_refuses_every_bad_item_and_names_it() {
    let t = stores::postgres().await;
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    for case in cases() {
        let items = format!("[{GOOD},{}]", case.json);
        let err = sqlx::query("SELECT * FROM sluice_enqueue_many($1::jsonb)")
            .bind(&items)
            .fetch_all(&pool)
            .await
            .expect_err(&case.json[..80.min(case.json.len())])
            .to_string();
        if case.jsonb_refuses {
            assert!(err.contains("json") || err.contains("Unicode"), "{err}");
        } else {
            assert!(
                err.contains("item 2: "),
                "{}: {err}",
                &case.json[..80.min(case.json.len())]
            );
            assert!(err.contains(case.says), "expected `{}`: {err}", case.says);
            assert!(err.contains("nothing was enqueued"), "{err}");
        }
    }
    assert_nothing_written(&*t.store).await;
}
