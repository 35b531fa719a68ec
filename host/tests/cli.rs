//! The author's commands, run as a user would: the real `sluice` binary.

mod support;

use std::process::{Command, Output};

use support::{adversary_wasm, plugin_dir, target_dir};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_CACHE_DIR", target_dir().join("sluice-test-cache"))
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("run sluice")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn adversary_bytes() -> Vec<u8> {
    std::fs::read(adversary_wasm()).unwrap()
}

#[test]
fn plugins_check_lists_each_plugin() {
    let dir = plugin_dir(&[("adversary.wasm", adversary_bytes())]);
    let out = sluice(&["plugins", "check", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ok"), "{text}");
    for expected in [
        "adversary 0.1.0",
        "item mode",
        "echo",
        "spin",
        "adversary.wasm",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
}

#[test]
fn plugins_check_prints_one_line_per_bad_plugin_and_fails() {
    let dir = plugin_dir(&[
        ("good.wasm", adversary_bytes()),
        ("text.wasm", b"not wasm".to_vec()),
        ("core.wasm", wat::parse_str("(module)").unwrap()),
    ]);
    let out = sluice(&["plugins", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 2, "{text}");
    assert!(errors.iter().any(|l| l.contains("text.wasm")), "{text}");
    assert!(errors.iter().any(|l| l.contains("core.wasm")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains("good.wasm")),
        "{text}"
    );
}

#[test]
fn plugins_check_of_a_missing_folder_says_so() {
    let out = sluice(&["plugins", "check", "/nonexistent/sluice-plugins"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/sluice-plugins does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_prints_the_outcome_as_json() {
    let wasm = adversary_wasm();
    let out = sluice(&[
        "exec",
        "--plugins",
        wasm.to_str().unwrap(),
        "--task",
        "echo",
        "--payload",
        r#"{"text":"hi"}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["output"]["text"], "hi");
    assert_eq!(report["plugin"], "adversary");
    assert_eq!(report["task_type"], "echo");
}

#[test]
fn exec_reads_the_payload_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.json");
    std::fs::write(&file, r#"{"from":"file"}"#).unwrap();
    let wasm = adversary_wasm();
    let payload = format!("@{}", file.display());
    let out = sluice(&[
        "exec",
        "--plugins",
        wasm.to_str().unwrap(),
        "--task",
        "echo",
        "--payload",
        &payload,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["output"]["from"], "file");
}

#[test]
fn exec_reports_a_timeout_and_exits_non_zero() {
    let wasm = adversary_wasm();
    let out = sluice(&[
        "exec",
        "--plugins",
        wasm.to_str().unwrap(),
        "--task",
        "spin",
        "--payload",
        "{}",
        "--timeout",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["outcome"], "timeout");
    assert_eq!(report["timeout_ms"], 500);
}

#[test]
fn exec_refuses_a_payload_that_is_not_json_before_running_anything() {
    let out = sluice(&[
        "exec",
        "--plugins",
        "/nonexistent",
        "--task",
        "echo",
        "--payload",
        "{not json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("payload 1 is not valid JSON"), "{err}");
    assert!(
        stdout(&out).is_empty(),
        "nothing ran, so nothing is printed"
    );
}

#[test]
fn exec_of_an_unknown_task_type_lists_the_available_ones() {
    let wasm = adversary_wasm();
    let out = sluice(&[
        "exec",
        "--plugins",
        wasm.to_str().unwrap(),
        "--task",
        "nope",
        "--payload",
        "{}",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("task type `nope`") && err.contains("echo"),
        "{err}"
    );
}

#[test]
fn guest_output_and_log_calls_become_host_log_lines() {
    let wasm = adversary_wasm();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "exec",
            "--plugins",
            wasm.to_str().unwrap(),
            "--task",
            "chatty",
            "--payload",
            "{}",
        ])
        .args(["--log-format", "json"])
        .env("SLUICE_CACHE_DIR", target_dir().join("sluice-test-cache"))
        .env("SLUICE_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &serde_json::Value| l["target"] == "sluice::guest")
        .collect();
    let find = |source: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["source"] == source)
            .unwrap_or_else(|| panic!("no {source} line in {lines:?}"))
    };
    assert_eq!(
        find("log")["fields"]["message"],
        "log import line for item 1"
    );
    assert_eq!(find("log")["level"], "WARN");
    assert_eq!(
        find("stdout")["fields"]["message"],
        "stdout line for item 1"
    );
    assert_eq!(find("stdout")["level"], "INFO");
    assert_eq!(
        find("stderr")["fields"]["message"],
        "stderr line without a newline"
    );
}

#[test]
fn without_address_space_for_the_pool_the_engine_falls_back_with_a_warning() {
    let wasm = adversary_wasm();
    // 3 GiB of address space cannot hold the instance pool's reservations.
    let script = format!(
        "ulimit -v 3000000 && exec '{}' exec --plugins '{}' --task echo --payload '{{\"a\":1}}'",
        env!("CARGO_BIN_EXE_sluice"),
        wasm.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("SLUICE_CACHE_DIR", target_dir().join("sluice-test-cache"))
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("falling back to on-demand allocation"),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["outcome"], "ok");
}
