//! Helpers for the outbound tests: a `Network` against the mock LLM server,
//! call contexts, requests, a capture of log output, and a tiny HTTP server
//! whose paths answer, redirect, send big bodies or hang.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice::flow::{BreakerConfig, BudgetConfig};
use sluice::imports::CallContext;
use sluice::outbound::{
    LlmConfig, LlmTimeouts, Network, ProviderConfig, ProviderKind, RetryConfig, TaskHttpConfig,
    TaskLlmConfig, TaskOutbound, TimeoutOverrides, UsageMeter,
};
use sluice::runtime::bindings::llm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The API key the tests configure; it must never show up anywhere.
pub const KEY_MARKER: &str = "sk-MARKER-4f1c9e0d-never-print-me";
/// The environment variable the tests name for it.
pub const KEY_ENV: &str = "SLUICE_TEST_LLM_KEY";
/// Slack allowed past a bound: generous, since CI machines stall.
pub const MARGIN: Duration = Duration::from_secs(5);

/// Timeouts short enough for tests: connect 2s, first byte 2s, idle 1s, total 3s.
pub fn short_timeouts() -> LlmTimeouts {
    LlmTimeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_secs(2),
        idle: Duration::from_secs(1),
        total: Duration::from_secs(3),
    }
}

/// `[llm]` with one provider `mock` at `base_url`, short timeouts, 2 quick
/// retries and a 1 MiB reply cap.
pub fn llm_config(base_url: &str, kind: ProviderKind, stream: bool) -> LlmConfig {
    let mut providers = BTreeMap::new();
    providers.insert(
        "mock".to_owned(),
        ProviderConfig {
            kind,
            base_url: Some(base_url.to_owned()),
            api_key_env: Some(KEY_ENV.to_owned()),
            stream,
            timeouts: TimeoutOverrides::default(),
            // Tests of retries, timeouts and faults want every request to
            // reach the mock; the breaker's own tests turn it on.
            breaker: BreakerConfig {
                failures: 0,
                ..BreakerConfig::default()
            },
            budget: BudgetConfig::default(),
            models: BTreeMap::new(),
        },
    );
    LlmConfig {
        providers,
        timeouts: short_timeouts(),
        retry: RetryConfig {
            max_retries: 2,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        max_response_bytes: 1 << 20,
    }
}

/// `[tasks.<task_type>]` granting the `mock` provider with `model`.
pub fn llm_task(task_type: &str, model: &str) -> BTreeMap<String, TaskOutbound> {
    let mut tasks = BTreeMap::new();
    tasks.insert(
        task_type.to_owned(),
        TaskOutbound {
            llm: TaskLlmConfig {
                provider: Some("mock".into()),
                model: Some(model.into()),
                fallback_model: None,
                allowed_models: Vec::new(),
            },
            http: TaskHttpConfig::default(),
        },
    );
    tasks
}

/// `[tasks.<task_type>.http]` as given.
pub fn http_task(task_type: &str, http: TaskHttpConfig) -> BTreeMap<String, TaskOutbound> {
    let mut tasks = BTreeMap::new();
    tasks.insert(
        task_type.to_owned(),
        TaskOutbound {
            llm: TaskLlmConfig::default(),
            http,
        },
    );
    tasks
}

/// A `Network` whose only environment variable is the marker key.
pub fn network(llm: &LlmConfig, tasks: &BTreeMap<String, TaskOutbound>) -> Network {
    Network::with_env(llm, tasks, |name| {
        (name == KEY_ENV).then(|| KEY_MARKER.to_owned())
    })
    .expect("valid outbound configuration")
}

/// The context of a call of `task_type` with `timeout` left.
pub fn call(task_type: &str, timeout: Duration) -> CallContext {
    CallContext {
        plugin: "test".into(),
        task_type: task_type.into(),
        deadline: Instant::now() + timeout,
        usage: UsageMeter::default(),
    }
}

/// A one-message request.
pub fn ask(text: &str) -> llm::Request {
    llm::Request {
        model: None,
        messages: vec![llm::Message {
            role: llm::Role::User,
            content: text.into(),
        }],
        max_tokens: None,
        temperature: None,
        stop: Vec::new(),
        json_schema: None,
    }
}

/// Everything written to it, shared with the test that reads it back.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Captures every log line at every level, from every thread, for the rest
/// of this test process (nextest runs each test in its own process).
pub fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber of the process");
    captured
}

/// A tiny HTTP/1.1 server for the `http` import's tests. Paths:
/// - `/hello`: 200 `hello`
/// - `/redirect?URL`: 302 to URL
/// - `/big/N`: 200 with N bytes, with a Content-Length
/// - `/big-chunked/N`: 200 with N bytes, chunked
/// - `/hang`: never answers
pub struct TestServer {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match socket.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    seen.lock().unwrap().push(path.clone());
                    let response: Vec<u8> = if path == "/hello" {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-test: yes\r\nconnection: close\r\n\r\nhello".to_vec()
                    } else if let Some(to) = path.strip_prefix("/redirect?") {
                        format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes()
                    } else if let Some(n) = path.strip_prefix("/big/") {
                        let n: usize = n.parse().unwrap();
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n"
                        )
                        .into_bytes();
                        r.extend(std::iter::repeat_n(b'x', n));
                        r
                    } else if let Some(n) = path.strip_prefix("/big-chunked/") {
                        let n: usize = n.parse().unwrap();
                        let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
                        let mut left = n;
                        while left > 0 {
                            let size = left.min(64 << 10);
                            r.extend(format!("{size:x}\r\n").as_bytes());
                            r.extend(std::iter::repeat_n(b'x', size));
                            r.extend(b"\r\n");
                            left -= size;
                        }
                        r.extend(b"0\r\n\r\n");
                        r
                    } else if path == "/hang" {
                        std::future::pending::<()>().await;
                        unreachable!()
                    } else {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    };
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { addr, hits, task }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}
