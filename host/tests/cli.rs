//! The author's commands, run as a user would: the real `sluice` binary.

mod support;

use std::path::Path;
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

/// Runs sluice in `dir`, with no configuration but what is there and in `args`.
fn sluice_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("SLUICE_CACHE_DIR", target_dir().join("sluice-test-cache"))
        .env("SLUICE_LOG", "warn")
        .env_remove("SLUICE_DATABASE_URL")
        .env_remove("SLUICE_CONFIG")
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
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/sluice-plugins does not exist"),
        "{err}"
    );
    // The path is positional here: no talk of a --plugins flag.
    assert!(
        err.contains("sluice plugins check") && !err.contains("--plugins"),
        "{err}"
    );
}

#[test]
fn plugins_wit_hands_out_the_contract_this_host_implements() {
    let wit = std::fs::read_to_string(support::workspace_path("wit/task.wit")).unwrap();
    let out = sluice(&["plugins", "wit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), wit);
    let version = sluice::runtime::bindings::CONTRACT_VERSION;
    assert!(
        wit.contains(&format!("package sluice:task@{version};")),
        "CONTRACT_VERSION matches wit/task.wit"
    );
    // The SDK carries the same file.
    let sdk = std::fs::read_to_string(support::workspace_path("sdk/wit/task.wit")).unwrap();
    assert_eq!(sdk, wit);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("wit");
    let out = sluice(&["plugins", "wit", "--out", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(target.join("task.wit")).unwrap(),
        wit
    );
}

#[test]
fn plugins_check_accepts_a_single_file_as_exec_does() {
    let dir = plugin_dir(&[
        ("good.wasm", adversary_bytes()),
        ("text.wasm", b"not wasm".to_vec()),
    ]);
    let good = dir.path().join("good.wasm");
    let out = sluice(&["plugins", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("ok     adversary 0.1.0"),
        "{}",
        stdout(&out)
    );
    let bad = dir.path().join("text.wasm");
    let out = sluice(&["plugins", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("error") && stdout(&out).contains("text.wasm"),
        "{}",
        stdout(&out)
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

/// The `error:` line a refused command printed.
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    err.lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in {err}"))
        .to_string()
}

#[test]
fn config_refuses_what_run_refuses_with_the_same_error() {
    let plugins = plugin_dir(&[("adversary.wasm", adversary_bytes())]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let cases = [
        (
            "[tasks.echo.llm]\nprovider = \"nope\"\nmodel = \"m\"\n",
            "tasks.echo.llm.provider",
        ),
        ("[tasks.ehco]\nmax_attempts = 2\n", "tasks.ehco"),
        (
            "[llm.providers.main]\nkind = \"openai\"\napi_key_env = \"SLUICE_TEST_UNSET_KEY\"\n",
            "SLUICE_TEST_UNSET_KEY",
        ),
    ];
    for (section, key) in cases {
        std::fs::write(
            dir.path().join("sluice.toml"),
            format!(
                "database_url = \"sqlite://{}\"\nplugins_dir = \"{}\"\nlisten = \"off\"\n{section}",
                db.display(),
                plugins.path().display()
            ),
        )
        .unwrap();
        let config = sluice_in(dir.path(), &["config"]);
        let run = sluice_in(dir.path(), &["run"]);
        assert_eq!(
            config.status.code(),
            Some(2),
            "{section}: {}",
            stdout(&config)
        );
        assert_eq!(run.status.code(), Some(2), "{section}: {}", stderr(&run));
        assert!(error_line(&config).contains(key), "{}", error_line(&config));
        assert_eq!(error_line(&config), error_line(&run), "{section}");
        assert!(
            stdout(&config).is_empty(),
            "nothing is printed for a refused configuration"
        );
        assert!(
            !db.exists(),
            "{section}: neither command creates the database"
        );
    }
}

#[test]
fn relative_paths_in_the_config_file_start_at_its_folder() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("plugins")).unwrap();
    std::fs::copy(
        adversary_wasm(),
        folder.path().join("plugins/adversary.wasm"),
    )
    .unwrap();
    let file = folder.path().join("sluice.toml");
    std::fs::write(
        &file,
        "database_url = \"sqlite://data/queue.db\"\nplugins_dir = \"plugins\"\ncache_dir = \"cache\"\n",
    )
    .unwrap();
    std::fs::create_dir(folder.path().join("data")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = file.to_str().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["config", "--config", file])
        .current_dir(elsewhere.path())
        .env("SLUICE_LOG", "warn")
        .env_remove("SLUICE_CACHE_DIR")
        .env_remove("SLUICE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: toml::Value = toml::from_str(&stdout(&out)).unwrap();
    let folder_path = folder.path().display();
    assert_eq!(
        shown["plugins_dir"].as_str(),
        Some(format!("{folder_path}/plugins").as_str())
    );
    assert_eq!(
        shown["cache_dir"].as_str(),
        Some(format!("{folder_path}/cache").as_str())
    );
    assert_eq!(
        shown["database_url"].as_str(),
        Some(format!("sqlite://{folder_path}/data/queue.db").as_str())
    );

    let out = sluice_in(elsewhere.path(), &["migrate", "--config", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(folder.path().join("data/queue.db").is_file());
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing is written in the working directory"
    );

    // From the command line, a relative path is the working directory's.
    let out = sluice_in(
        elsewhere.path(),
        &[
            "migrate",
            "--config",
            file,
            "--database-url",
            "sqlite://here.db",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(elsewhere.path().join("here.db").is_file());
}

#[test]
fn configuration_mistakes_are_explained_in_sluices_words() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "slotz = 3\n",
            "`slotz`: is not a known key",
            "did you mean `slots`?",
        ),
        (
            "[defaults]\ntimeuot = \"1s\"\n",
            "`defaults.timeuot`",
            "did you mean `timeout`?",
        ),
        (
            "lease = \"soon\"\n",
            "`lease`: \"soon\" is not a duration",
            "\"500ms\", \"30s\", \"10m\"",
        ),
        (
            "[defaults]\nbackoff_max = 5\n",
            "`defaults.backoff_max`",
            "write a number and a unit",
        ),
    ];
    for (toml, what, hint) in cases {
        std::fs::write(dir.path().join("sluice.toml"), toml).unwrap();
        let out = sluice_in(dir.path(), &["config"]);
        assert_eq!(out.status.code(), Some(2));
        let err = error_line(&out);
        assert!(err.contains(what) && err.contains(hint), "{toml}: {err}");
        assert!(err.contains("sluice.toml"), "names the file: {err}");
    }
}
