//! What the host adds to one outbound call: an `llm.complete` through
//! `Network` to the in-process mock LLM server (request body, HTTP over
//! loopback, reply parsing, accounting), streamed and not, and an allowed
//! `http.send`. The mock answers at once, so the figure is the host's own
//! overhead plus a loopback round trip; recorded in BENCHMARKS.md. The
//! `llm_schema_*` pair prices the schema cache: the same structured-output
//! call with the schema already compiled (hit) and with a new schema text on
//! every call (miss: parse, limit checks, compile on a schema thread).
//!
//! Run with `SLUICE_LOG=off cargo bench --bench outbound`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mock_llm::{MockLlm, Options};
use sluice::imports::Outbound;
use sluice::outbound::{ProviderKind, TaskHttpConfig};
use sluice::runtime::bindings::http;
use support::outbound::{TestServer, ask, call, http_task, llm_config, llm_task, network};

fn llm_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mock = tokio.block_on(MockLlm::start(Options::default())).unwrap();
    for (name, kind, stream) in [
        ("outbound/llm_openai", ProviderKind::OpenAi, false),
        ("outbound/llm_openai_stream", ProviderKind::OpenAi, true),
        (
            "outbound/llm_anthropic_stream",
            ProviderKind::Anthropic,
            true,
        ),
    ] {
        let net = network(
            &llm_config(&mock.base_url(), kind, stream),
            &llm_task("t", "m"),
        );
        c.bench_function(name, |b| {
            b.iter(|| {
                let ctx = call("t", Duration::from_secs(30));
                tokio
                    .block_on(net.llm(&ctx, ask("Alice met Bob. They talked about the weather.")))
                    .unwrap()
            })
        });
    }
}

/// A structured-output schema of the usual size, with one pattern; `salt`
/// makes its text distinct.
fn schema(salt: u64) -> String {
    serde_json::json!({
        "$comment": format!("variant {salt}"),
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "observations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "id": {"type": "string", "pattern": "^[^\\n]*$"}
                    },
                    "required": ["text", "confidence"]
                }
            }
        },
        "required": ["summary", "observations"]
    })
    .to_string()
}

fn llm_schema_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mock = tokio.block_on(MockLlm::start(Options::default())).unwrap();
    let net = network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, false),
        &llm_task("t", "m"),
    );
    let structured = |text: String| {
        let mut request = ask("Alice met Bob. They talked about the weather.");
        request.json_schema = Some(text);
        request
    };
    c.bench_function("outbound/llm_schema_hit", |b| {
        let text = schema(0);
        b.iter(|| {
            let ctx = call("t", Duration::from_secs(30));
            tokio
                .block_on(net.llm(&ctx, structured(text.clone())))
                .unwrap()
        })
    });
    let mut salt = 0;
    c.bench_function("outbound/llm_schema_miss", |b| {
        b.iter(|| {
            salt += 1;
            let ctx = call("t", Duration::from_secs(30));
            tokio
                .block_on(net.llm(&ctx, structured(schema(salt))))
                .unwrap()
        })
    });
}

fn http_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = tokio.block_on(TestServer::start());
    let config = TaskHttpConfig {
        allow_hosts: vec!["127.0.0.1:*".into()],
        allow_private: vec!["127.0.0.1".into()],
        ..TaskHttpConfig::default()
    };
    let net = network(
        &llm_config("http://127.0.0.1:9/v1", ProviderKind::OpenAi, false),
        &http_task("t", config),
    );
    let url = server.url("/hello");
    c.bench_function("outbound/http_get", |b| {
        b.iter(|| {
            let request = http::Request {
                method: http::Method::Get,
                url: url.clone(),
                headers: Vec::new(),
                body: None,
                timeout_ms: None,
            };
            let ctx = call("t", Duration::from_secs(30));
            tokio.block_on(net.http(&ctx, request)).unwrap()
        })
    });
}

criterion_group!(benches, llm_call, llm_schema_call, http_call);
criterion_main!(benches);
