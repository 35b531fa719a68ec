//! A test-only plugin whose task types misbehave on purpose.
//!
//! Each task type exercises one way a real plugin can try to hold the host hostage
//! (spin, allocate, recurse, panic, hang in an import, return too much) or escape
//! its sandbox. The host's tests assert that every one of them ends in the right
//! classified outcome, at its deadline, with the host unharmed. `echo` is the
//! well-behaved control. `llm-call` and `http-call` make the request their
//! payload describes, so the host's tests can drive the real imports.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "handler",
});

use serde_json::{Value, json};
use sluice::task::types::{Mode, NewItem};
use sluice::task::{config, http, llm, log};

struct Adversary;

const TASK_TYPES: &[&str] = &[
    "echo",
    "spin",
    "memory-bomb",
    "recursion",
    "huge-output",
    "panic",
    "hang-llm",
    "hang-http",
    "escape",
    "fail",
    "not-json",
    "config",
    "chatty",
    "enqueue-flood",
    "sleep",
    "llm-call",
    "http-call",
    "log-flood",
    "deep-output",
    "enqueue-to",
];

impl Guest for Adversary {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "adversary".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: TASK_TYPES.iter().map(|t| t.to_string()).collect(),
            mode: Mode::Item,
        }
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        let item = items
            .into_iter()
            .next()
            .ok_or_else(|| TaskError::Permanent("no item".into()))?;
        match item.task_type.as_str() {
            "echo" => echo(item),
            "spin" => spin(),
            "memory-bomb" => memory_bomb(),
            "recursion" => Ok(output(recurse(0, u64::MAX).to_string())),
            "huge-output" => Ok(output(huge_json(&item.payload))),
            "panic" => panic!("adversary panicked on purpose for item {}", item.id),
            "hang-llm" => call_llm(),
            "hang-http" => call_http(),
            "escape" => Ok(output(escape_report())),
            "fail" => fail(&item.payload),
            "not-json" => Ok(output("this is not JSON".into())),
            "config" => config_value(&item.payload),
            "chatty" => chatty(&item),
            "enqueue-flood" => Ok(enqueue_flood(&item)),
            "sleep" => sleep(item),
            "llm-call" => llm_call(&item.payload),
            "http-call" => http_call(&item.payload),
            "log-flood" => Ok(log_flood(&item.payload)),
            "deep-output" => Ok(output(deep_json(&item.payload))),
            "enqueue-to" => Ok(enqueue_to(&item)),
            other => Err(TaskError::Permanent(format!("unknown task type {other}"))),
        }
    }
}

fn output(json: String) -> Outcome {
    Outcome {
        output: Some(json),
        enqueue: Vec::new(),
    }
}

/// Returns the payload untouched, and enqueues a follow-up when the payload asks
/// for one (`"follow-up"`; with `"follow-up-nul"` its key ends in a NUL
/// character, which no database can store). The well-behaved control, and the
/// call the sandbox benchmark times.
fn echo(item: WorkItem) -> Result<Outcome, TaskError> {
    let key = if item.payload.contains("\"follow-up-nul\"") {
        Some(format!("{}\0", item.work_unit_key))
    } else if item.payload.contains("\"follow-up\"") {
        Some(item.work_unit_key.clone())
    } else {
        None
    };
    let enqueue = key
        .map(|work_unit_key| NewItem {
            task_type: "echo".into(),
            work_unit_key,
            payload: "{\"from\":\"echo\"}".into(),
        })
        .into_iter()
        .collect();
    Ok(Outcome {
        output: Some(item.payload),
        enqueue,
    })
}

/// Writes through every channel a guest has: the `log` import, stdout, stderr.
fn chatty(item: &WorkItem) -> Result<Outcome, TaskError> {
    log::log(
        log::Level::Warn,
        &format!("log import line for item {}", item.id),
    );
    println!("stdout line for item {}", item.id);
    eprint!("stderr line without a newline");
    Ok(output("null".into()))
}

/// As many tiny follow-up items as the payload (a number) says.
fn enqueue_flood(item: &WorkItem) -> Outcome {
    let count: usize = item.payload.trim().parse().unwrap_or(1_000_000);
    Outcome {
        output: None,
        enqueue: (0..count)
            .map(|_| NewItem {
                task_type: "t".into(),
                work_unit_key: "k".into(),
                payload: "1".into(),
            })
            .collect(),
    }
}

/// Writes as many lines as the payload (a number, default 10,000) says, each
/// 8 KiB, through the `log` import, stdout and stderr in turn.
fn log_flood(payload: &str) -> Outcome {
    let lines: usize = payload.trim().parse().unwrap_or(10_000);
    let line = "x".repeat(8 << 10);
    for i in 0..lines {
        match i % 3 {
            0 => log::log(log::Level::Info, &line),
            1 => println!("{line}"),
            _ => eprintln!("{line}"),
        }
    }
    output("null".into())
}

/// Arrays nested as many levels deep as the payload (a number) says.
fn deep_json(payload: &str) -> String {
    let depth: usize = payload.trim().parse().unwrap_or(100_000);
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// An output, and one follow-up item for the task type the payload (a JSON
/// string) names.
fn enqueue_to(item: &WorkItem) -> Outcome {
    Outcome {
        output: Some("{\"sent\":true}".into()),
        enqueue: vec![NewItem {
            task_type: item.payload.trim().trim_matches('"').into(),
            work_unit_key: item.work_unit_key.clone(),
            payload: "{\"from\":\"adversary\"}".into(),
        }],
    }
}

/// Sleeps for the payload's `"ms"` milliseconds (without using CPU), then
/// behaves like `echo`: a unit that takes a while and then succeeds.
fn sleep(item: WorkItem) -> Result<Outcome, TaskError> {
    let ms: u64 = item
        .payload
        .split("\"ms\"")
        .nth(1)
        .and_then(|rest| {
            let rest = rest.trim_start_matches([':', ' ']);
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .ok_or_else(|| TaskError::Permanent("sleep needs a payload like {\"ms\": 100}".into()))?;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    echo(item)
}

fn spin() -> Result<Outcome, TaskError> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn memory_bomb() -> Result<Outcome, TaskError> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the allocation is real, not just reserved.
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

/// Recursion that only `limit` ends; with `u64::MAX` it exhausts the wasm stack.
/// Its frames hold no addressable locals, so it overflows the wasm stack itself
/// rather than the shadow stack Rust keeps in linear memory.
fn recurse(depth: u64, limit: u64) -> u64 {
    if depth == std::hint::black_box(limit) {
        return depth;
    }
    recurse(depth + 1, limit).rotate_left(1) ^ depth
}

/// A JSON string of the size (in MiB) the payload names, default 20 MiB.
fn huge_json(payload: &str) -> String {
    let mib: usize = payload.trim().parse().unwrap_or(20);
    let mut s = String::with_capacity(mib * (1 << 20) + 2);
    s.push('"');
    s.extend(std::iter::repeat_n('x', mib * (1 << 20)));
    s.push('"');
    s
}

fn call_llm() -> Result<Outcome, TaskError> {
    let request = llm::Request {
        model: None,
        messages: vec![llm::Message {
            role: llm::Role::User,
            content: "hello".into(),
        }],
        max_tokens: Some(16),
        temperature: None,
        stop: Vec::new(),
        json_schema: None,
    };
    match llm::complete(&request) {
        Ok(response) => Ok(output(format!("{:?}", response.content))),
        Err(e) => Err(TaskError::Retryable(format!("llm: {e:?}"))),
    }
}

fn call_http() -> Result<Outcome, TaskError> {
    let request = http::Request {
        method: http::Method::Get,
        url: "https://example.com/".into(),
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    };
    match http::send(&request) {
        Ok(response) => Ok(output(response.status.to_string())),
        Err(e) => Err(TaskError::Retryable(format!("http: {e:?}"))),
    }
}

/// Makes the LLM request the payload describes: `{"model", "messages":
/// [{"role", "content"}], "max_tokens", "temperature", "stop", "json_schema"}`
/// (all optional; the schema is a JSON value). Returns `{"content", "model",
/// "input_tokens", "output_tokens", "finish"}`; a failed call returns the typed
/// error's debug text, as a permanent error for `denied`, `invalid-request`
/// and `response-too-large`, a retryable one otherwise.
fn llm_call(payload: &str) -> Result<Outcome, TaskError> {
    let spec: Value =
        serde_json::from_str(payload).map_err(|e| TaskError::Permanent(format!("payload: {e}")))?;
    let messages = match spec.get("messages").and_then(Value::as_array) {
        Some(messages) => messages
            .iter()
            .map(|m| llm::Message {
                role: match m.get("role").and_then(Value::as_str) {
                    Some("system") => llm::Role::System,
                    Some("assistant") => llm::Role::Assistant,
                    _ => llm::Role::User,
                },
                content: m
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
            })
            .collect(),
        None => vec![llm::Message {
            role: llm::Role::User,
            content: "hello".into(),
        }],
    };
    let request = llm::Request {
        model: spec.get("model").and_then(Value::as_str).map(Into::into),
        messages,
        max_tokens: spec
            .get("max_tokens")
            .and_then(Value::as_u64)
            .map(|n| n as u32),
        temperature: spec
            .get("temperature")
            .and_then(Value::as_f64)
            .map(|t| t as f32),
        stop: spec
            .get("stop")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(Value::as_str).map(Into::into).collect())
            .unwrap_or_default(),
        json_schema: spec.get("json_schema").map(Value::to_string),
    };
    match llm::complete(&request) {
        Ok(response) => Ok(output(
            json!({
                "content": response.content,
                "model": response.model,
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "finish": format!("{:?}", response.finish_reason),
            })
            .to_string(),
        )),
        Err(
            e @ (llm::Error::Denied(_)
            | llm::Error::InvalidRequest(_)
            | llm::Error::ResponseTooLarge),
        ) => Err(TaskError::Permanent(format!("llm: {e:?}"))),
        Err(e) => Err(TaskError::Retryable(format!("llm: {e:?}"))),
    }
}

/// Makes the HTTP request the payload describes: `{"method", "url",
/// "headers": [[name, value]], "body", "timeout_ms"}`. Returns `{"status",
/// "headers", "body", "body_len"}` (the body as lossy UTF-8); a failed call
/// returns the typed error's debug text, as a permanent error for `denied`
/// and `invalid-request`, a retryable one otherwise.
fn http_call(payload: &str) -> Result<Outcome, TaskError> {
    let spec: Value =
        serde_json::from_str(payload).map_err(|e| TaskError::Permanent(format!("payload: {e}")))?;
    let method = match spec.get("method").and_then(Value::as_str).unwrap_or("GET") {
        "HEAD" => http::Method::Head,
        "POST" => http::Method::Post,
        "PUT" => http::Method::Put,
        "PATCH" => http::Method::Patch,
        "DELETE" => http::Method::Delete,
        _ => http::Method::Get,
    };
    let headers = spec
        .get("headers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|pair| {
                    Some(http::Header {
                        name: pair.get(0)?.as_str()?.into(),
                        value: pair.get(1)?.as_str()?.into(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let request = http::Request {
        method,
        url: spec.get("url").and_then(Value::as_str).unwrap_or("").into(),
        headers,
        body: spec
            .get("body")
            .and_then(Value::as_str)
            .map(|b| b.as_bytes().to_vec()),
        timeout_ms: spec.get("timeout_ms").and_then(Value::as_u64),
    };
    match http::send(&request) {
        Ok(response) => Ok(output(
            json!({
                "status": response.status,
                "headers": response
                    .headers
                    .iter()
                    .map(|h| json!([h.name, h.value]))
                    .collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&response.body),
                "body_len": response.body.len(),
            })
            .to_string(),
        )),
        Err(e @ (http::Error::Denied(_) | http::Error::InvalidRequest(_))) => {
            Err(TaskError::Permanent(format!("http: {e:?}")))
        }
        Err(e) => Err(TaskError::Retryable(format!("http: {e:?}"))),
    }
}

/// Tries to reach outside the sandbox and reports what happened, as JSON:
/// `{"file": "...", "env": "...", "socket": "...", "args": N}`.
fn escape_report() -> String {
    let file = match std::fs::read_to_string("/etc/passwd") {
        Ok(_) => "read".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let env = match std::env::var("HOME") {
        Ok(v) => format!("read: {v}"),
        Err(e) => format!("error: {e}"),
    };
    let vars = std::env::vars().count();
    let socket = match std::net::TcpStream::connect("127.0.0.1:5432") {
        Ok(_) => "connected".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let args = std::env::args().count();
    format!(
        "{{\"file\":{},\"env\":{},\"vars\":{vars},\"socket\":{},\"args\":{args}}}",
        json_string(&file),
        json_string(&env),
        json_string(&socket)
    )
}

fn fail(payload: &str) -> Result<Outcome, TaskError> {
    if payload.contains("permanent") {
        Err(TaskError::Permanent("asked to fail permanently".into()))
    } else {
        Err(TaskError::Retryable("asked to fail, try again".into()))
    }
}

/// Returns the operator's value for the config key named by the payload (a JSON string).
fn config_value(payload: &str) -> Result<Outcome, TaskError> {
    let key = payload.trim().trim_matches('"');
    let value = config::get(key);
    Ok(output(match value {
        Some(v) => json_string(&v),
        None => "null".into(),
    }))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

export!(Adversary);
