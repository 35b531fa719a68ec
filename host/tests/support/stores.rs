//! Real databases for store tests: a SQLite file in a temporary folder, or a
//! fresh schema in the local PostgreSQL, one per test so tests run in parallel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sluice::store::{self, Store, StoreOptions};

/// The local PostgreSQL every machine (and CI) has.
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A migrated store plus what it takes to reach its database directly.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// A URL that reaches the same database (and schema).
    pub url: String,
    _cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema(String),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Schema(schema) = self {
            let schema = schema.clone();
            // Drop the schema on a thread of its own: this may run inside a
            // runtime, or while a failed test unwinds.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let pool = sqlx::PgPool::connect(POSTGRES_URL).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&pool)
                    .await?;
                    Ok::<_, sqlx::Error>(())
                })
                .map_err(std::io::Error::other)
            })
            .join();
        }
    }
}

pub async fn sqlite() -> TestStore {
    sqlite_with(StoreOptions::default()).await
}

pub async fn sqlite_with(options: StoreOptions) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    let store = store::open(&url, options).await.expect("open sqlite");
    store.migrate().await.expect("migrate sqlite");
    TestStore {
        store,
        url,
        _cleanup: Cleanup::Dir(dir),
    }
}

pub async fn postgres() -> TestStore {
    postgres_with(StoreOptions::default()).await
}

pub async fn postgres_with(options: StoreOptions) -> TestStore {
    let empty = postgres_empty().await;
    let store = store::open(&empty.url, options)
        .await
        .expect("open postgres");
    store.migrate().await.expect("migrate postgres");
    TestStore {
        store,
        url: empty.url,
        _cleanup: empty._cleanup,
    }
}

/// A fresh Postgres schema with nothing in it, dropped with the value.
pub struct EmptySchema {
    /// A URL whose `search_path` is the schema.
    pub url: String,
    _cleanup: Cleanup,
}

pub async fn postgres_empty() -> EmptySchema {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "sluice_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let admin = sqlx::PgPool::connect(POSTGRES_URL)
        .await
        .expect("the local PostgreSQL is up (scripts/ensure-postgres)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    EmptySchema {
        url: format!("{POSTGRES_URL}?options=-c%20search_path%3D{schema}"),
        _cleanup: Cleanup::Schema(schema),
    }
}

impl TestStore {
    /// Runs `sql` on the test database directly (outside the `Store` API)
    /// and returns every row's columns as text: cast each column to `TEXT`
    /// in `sql`, which then reads the same on SQLite and Postgres.
    pub async fn text_rows(&self, sql: &'static str) -> Vec<Vec<Option<String>>> {
        use sqlx::Row;
        fn columns<R: Row>(rows: Vec<R>) -> Vec<Vec<Option<String>>>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get(i).expect("a text column"))
                        .collect()
                })
                .collect()
        }
        if self.url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
            let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
            pool.close().await;
            columns(rows)
        } else {
            let pool = sqlx::SqlitePool::connect(&self.url).await.expect("connect");
            let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
            pool.close().await;
            columns(rows)
        }
    }
}
