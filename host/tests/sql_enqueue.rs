//! Producers enqueue on Postgres with SQL inside their own transactions:
//! `sluice_enqueue` and `sluice_enqueue_many`, called from application code
//! and from a trigger, against the real database and a running host.

mod support;

use std::time::{Duration, Instant};

use support::host::{self, count, fast_config, wait_until};
use support::stores::{self, TestStore};

/// The application's own table, in the same schema as the queue.
async fn app_table(pool: &sqlx::PgPool) {
    sqlx::query("CREATE TABLE messages (id bigserial PRIMARY KEY, conversation text NOT NULL, body text NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
}

async fn save_message_and_enqueue(pool: &sqlx::PgPool, commit: bool) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let message: i64 = sqlx::query_scalar(
        "INSERT INTO messages (conversation, body) VALUES ('conv-1', 'hello') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let item: i64 = sqlx::query_scalar(
        "SELECT sluice_enqueue('echo', 'conv-1', jsonb_build_object('message_id', $1::bigint))",
    )
    .bind(message)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_in_the_applications_transaction_commits_or_rolls_back_with_it() {
    let t = stores::postgres().await;
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    app_table(&pool).await;
    // A host that polls only every minute: only the wake at commit can make
    // it start the item within seconds.
    let mut config = fast_config(2);
    config.poll_interval = Duration::from_secs(60);
    let host = host::start(t.store.clone(), config, host::network(&fast_config(2))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    save_message_and_enqueue(&pool, false).await;
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(messages, 0);
    let status = t.store.status().await.unwrap();
    assert!(
        status.depths.is_empty(),
        "a rollback leaves no item: {:?}",
        status.depths
    );
    let units: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice_units")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(units, 0, "nor a unit");

    let committed = Instant::now();
    save_message_and_enqueue(&pool, true).await;
    wait_until(
        "the committed item is done",
        Duration::from_secs(10),
        || async { count(&*t.store, "echo", "done").await == 1 },
    )
    .await;
    assert!(
        committed.elapsed() < Duration::from_secs(10),
        "woken at commit, not by the 60 s poll"
    );
    let outputs = t.store.outputs("echo", "conv-1").await.unwrap();
    assert_eq!(outputs.len(), 1, "processed once");
    host.shutdown(Duration::from_secs(5)).await;
}

/// The trigger example of README.md, "Enqueue with SQL".
const TRIGGER: &str = r#"
CREATE FUNCTION messages_enqueue_representation() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sluice_enqueue(
        task_type     => 'echo',
        work_unit_key => NEW.conversation,
        payload       => jsonb_build_object('message_id', NEW.id, 'body', NEW.body),
        tokens        => length(NEW.body) / 4);
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_enqueue_representation
    AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_enqueue_representation();
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_on_an_application_table_enqueues_in_its_transaction() {
    let t = stores::postgres().await;
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    app_table(&pool).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(TRIGGER))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO messages (conversation, body) VALUES ('a', 'one'), ('b', 'two'), ('a', 'three')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let host = host::start(
        t.store.clone(),
        fast_config(2),
        host::network(&fast_config(2)),
    )
    .await;
    wait_until(
        "the three items are done",
        Duration::from_secs(20),
        || async { count(&*t.store, "echo", "done").await == 3 },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;
    // Unit `a` ran its items in message order.
    let outputs = t.store.outputs("echo", "a").await.unwrap();
    let ids: Vec<Vec<i64>> = outputs.iter().map(|o| o.item_ids.clone()).collect();
    assert_eq!(ids.concat().len(), 2);
    assert!(ids.concat().windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_sql_functions_raises_and_writes_nothing() {
    let t = stores::postgres().await;
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    app_table(&pool).await;
    let cases = [
        ("SELECT sluice_enqueue('', 'k', '{}')", "task_type is empty"),
        (
            "SELECT sluice_enqueue(repeat('t', 8000), 'k', '{}')",
            "task_type is 8000 bytes",
        ),
        (
            "SELECT sluice_enqueue('echo', repeat('k', 10240), '{}')",
            "work_unit_key is 10240 bytes",
        ),
        (
            "SELECT sluice_enqueue('echo', 'k', NULL)",
            "payload is missing",
        ),
        (
            "SELECT sluice_enqueue('echo', 'k', '{}', tokens => -1)",
            "tokens is -1",
        ),
        (
            "SELECT sluice_enqueue('echo', 'k', '{}', run_after => now(), delay => '1 minute')",
            "give run_after or delay, not both",
        ),
        (
            "SELECT sluice_enqueue('echo', 'k', '{}', delay => '-5 minutes')",
            "delay is",
        ),
        (
            "SELECT * FROM sluice_enqueue_many('{}')",
            "items must be a JSON array",
        ),
        (
            r#"SELECT * FROM sluice_enqueue_many('[{"task_type":"echo","work_unit_key":"k","payload":1},{"task_type":"echo"}]')"#,
            "item 2: work_unit_key is empty",
        ),
    ];
    for (sql, says) in cases {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO messages (conversation, body) VALUES ('c', 'x')")
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .expect_err(sql)
            .to_string();
        assert!(err.contains(says), "{sql}: {err}");
        assert!(err.contains("nothing was enqueued"), "{sql}: {err}");
        // The producer's transaction is aborted, and with it its own row:
        // committing it rolls it back.
        tx.commit().await.unwrap();
    }
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(messages, 0);
    assert!(t.store.status().await.unwrap().depths.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_keys_and_batches_work_as_on_the_other_doors() {
    let t = stores::postgres().await;
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    let first: i64 =
        sqlx::query_scalar("SELECT sluice_enqueue('echo', 'k', '1', dedupe_key => 'd')")
            .fetch_one(&pool)
            .await
            .unwrap();
    let again: i64 =
        sqlx::query_scalar("SELECT sluice_enqueue('echo', 'k', '2', dedupe_key => 'd')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(first, again, "a pending item with the dedupe key keeps it");
    let rows: Vec<(i64, bool)> = sqlx::query_as(
        r#"SELECT id, duplicate FROM sluice_enqueue_many('[
            {"task_type":"echo","work_unit_key":"k","payload":3},
            {"task_type":"echo","work_unit_key":"k","payload":4,"dedupe_key":"d"},
            {"task_type":"echo","work_unit_key":"j","payload":5,"dedupe_key":"e","tokens":7},
            {"task_type":"echo","work_unit_key":"j","payload":6,"dedupe_key":"e"},
            {"task_type":"echo","work_unit_key":"j","payload":7,"delay":"1h"}]')"#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let duplicates: Vec<bool> = rows.iter().map(|r| r.1).collect();
    assert_eq!(duplicates, [false, true, false, true, false]);
    assert_eq!(rows[1].0, first);
    assert_eq!(rows[2].0, rows[3].0);
    assert!(rows[0].0 > first && rows[2].0 > rows[0].0 && rows[4].0 > rows[2].0);
    assert_eq!(count(&*t.store, "echo", "pending").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_item_from_sql_is_not_fetched_early_and_holds_its_unit() {
    let t: TestStore = stores::postgres().await;
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    let enqueued = Instant::now();
    sqlx::query(
        "SELECT sluice_enqueue('echo', 'k', '1', delay => '1500 milliseconds'),
                sluice_enqueue('echo', 'k', '2')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let claimable = vec![sluice::store::Claimable {
        task_type: "echo".into(),
        gate: Default::default(),
    }];
    let lease = Duration::from_secs(30);
    let claim = loop {
        if let Some(claim) = t
            .store
            .claim("w", &claimable, 1, lease)
            .await
            .unwrap()
            .pop()
        {
            break claim;
        }
        assert!(
            enqueued.elapsed() < Duration::from_secs(20),
            "never claimed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        enqueued.elapsed() >= Duration::from_millis(1_500),
        "claimed early"
    );
    let all = sluice::store::BatchLimits {
        max_items: 10,
        max_tokens: u64::MAX,
    };
    let batch = t.store.fetch_batch(&claim, all).await.unwrap();
    let payloads: Vec<&str> = batch.iter().map(|i| i.payload.as_str()).collect();
    assert_eq!(payloads, ["1", "2"], "the later item waited behind it");
}
