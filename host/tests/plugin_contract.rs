//! Contract tests for plugins (`sluice plugins check --samples`): the
//! template and the bundled plugins pass with their own samples, and a plugin
//! that traps, times out or returns invalid output fails with a report that
//! names the sample line and what went wrong.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sluice::runtime::Registry;
use sluice::runtime::contract::{self, SampleResult, Verdict};
use sluice::runtime::registry;
use support::{adversary_wasm, guest_wasm, plugin_dir, runtime, target_dir, workspace_path};

const BUNDLED: [(&str, &str); 4] = [
    ("sluice_plugin_template", "examples/plugin-template"),
    ("sluice_plugin_representation", "plugins/representation"),
    ("sluice_plugin_summary", "plugins/summary"),
    ("sluice_plugin_webhook", "plugins/webhook"),
];

fn samples_of(folder: &str) -> String {
    std::fs::read_to_string(workspace_path(folder).join("samples.jsonl")).expect("samples file")
}

/// Samples for the adversary: one well-behaved call, one classified error,
/// three calls the contract forbids, and a task type nobody handles.
const ADVERSARY_SAMPLES: &str = r#"{"task_type":"echo","work_unit_key":"k","payload":{"fine":true}}
{"task_type":"fail","work_unit_key":"k","payload":"permanent"}
{"task_type":"panic","work_unit_key":"k","payload":{}}
{"task_type":"not-json","work_unit_key":"k","payload":{}}
{"task_type":"spin","work_unit_key":"k","payload":{}}
{"task_type":"nobody-handles-this","work_unit_key":"k","payload":{}}
"#;

async fn check(wasm: &[PathBuf], samples: &str, timeout: Duration) -> Vec<SampleResult> {
    let runtime = runtime(1);
    let mut plugins = Vec::new();
    for path in wasm {
        plugins.push(Arc::new(
            registry::load_file(&runtime, path)
                .await
                .expect("plugin loads"),
        ));
    }
    let samples = contract::parse_samples(samples).expect("samples parse");
    contract::run_samples(&Registry::from_plugins(plugins), &samples, timeout).await
}

#[tokio::test]
async fn the_template_passes_its_samples_with_each_error_kind_reported() {
    let results = check(
        &[guest_wasm("sluice_plugin_template")],
        &samples_of("examples/plugin-template"),
        Duration::from_secs(10),
    )
    .await;
    let report: Vec<String> = results.iter().map(ToString::to_string).collect();
    assert!(contract::all_passed(&results), "{report:#?}");
    assert_eq!(results.len(), 2, "{report:#?}");
    // The LLM is denied in a contract check: the SDK classifies that as
    // permanent and says where the operator grants it.
    assert!(
        report[0]
            .starts_with("pass   line 1 headline [key demo]: permanent: the LLM call was denied")
            && report[0].contains("[tasks.<task_type>.llm]"),
        "{}",
        report[0]
    );
    assert!(
        report[1].contains(
            "permanent: item 2: the payload does not have the expected shape: missing field `text`"
        ),
        "{}",
        report[1]
    );
}

#[tokio::test]
async fn bundled_plugins_pass_their_samples_with_outbound_calls_denied() {
    let wasm: Vec<PathBuf> = BUNDLED.iter().map(|(name, _)| guest_wasm(name)).collect();
    let samples: String = BUNDLED
        .iter()
        .map(|(_, folder)| samples_of(folder))
        .collect();
    let results = check(&wasm, &samples, Duration::from_secs(10)).await;
    let report: Vec<String> = results.iter().map(ToString::to_string).collect();
    assert!(contract::all_passed(&results), "{report:#?}");
    assert!(
        results.iter().all(|r| r.verdict == Verdict::Pass),
        "{report:#?}"
    );
    // The representation plugin is a batch plugin: one call per work unit.
    let representation: Vec<&SampleResult> = results
        .iter()
        .filter(|r| r.task_type == "representation")
        .collect();
    assert_eq!(representation.len(), 2, "{report:#?}");
    assert!(representation[0].lines.len() > 1, "{report:#?}");
    assert!(
        representation[0]
            .detail
            .contains("permanent: the LLM call was denied"),
        "{report:#?}"
    );
    let webhook = results.iter().find(|r| r.task_type == "webhook").unwrap();
    assert!(webhook.detail.contains("`url` is not set"), "{webhook}");
}

#[tokio::test]
async fn traps_timeouts_and_invalid_output_fail_the_check() {
    let results = check(
        &[adversary_wasm()],
        ADVERSARY_SAMPLES,
        Duration::from_secs(1),
    )
    .await;
    let report: Vec<String> = results.iter().map(ToString::to_string).collect();
    assert!(!contract::all_passed(&results), "{report:#?}");
    let verdicts: Vec<(&str, Verdict)> = results
        .iter()
        .map(|r| (r.task_type.as_str(), r.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("echo", Verdict::Pass),
            ("fail", Verdict::Pass),
            ("panic", Verdict::Fail),
            ("not-json", Verdict::Fail),
            ("spin", Verdict::Fail),
            ("nobody-handles-this", Verdict::Skip),
        ]
    );
    assert!(report[1].contains("permanent: asked to fail permanently"));
    assert!(
        report[2].starts_with("fail   line 3 panic [key k]: trap (Unreachable)")
            && report[2].contains("adversary panicked on purpose"),
        "{}",
        report[2]
    );
    assert!(report[3].contains("invalid-output: `output` is not valid JSON"));
    assert!(report[4].contains("timeout: still running at its 1000 ms deadline"));
    assert!(report[5].contains("no plugin handles task type `nobody-handles-this`"));
}

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_CACHE_DIR", target_dir().join("sluice-test-cache"))
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("run sluice")
}

#[test]
fn the_cli_passes_the_template_and_fails_a_misbehaving_plugin() {
    let template = plugin_dir(&[(
        "template.wasm",
        std::fs::read(guest_wasm("sluice_plugin_template")).unwrap(),
    )]);
    let samples = workspace_path("examples/plugin-template/samples.jsonl");
    let out = sluice(&[
        "plugins",
        "check",
        template.path().to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("ok     headline 0.1.0 (item mode)"),
        "{text}"
    );
    assert_eq!(text.lines().filter(|l| l.starts_with("pass")).count(), 2);

    let adversary = plugin_dir(&[("adversary.wasm", std::fs::read(adversary_wasm()).unwrap())]);
    let bad_samples = adversary.path().join("samples.jsonl");
    std::fs::write(&bad_samples, ADVERSARY_SAMPLES).unwrap();
    let out = sluice(&[
        "plugins",
        "check",
        adversary.path().to_str().unwrap(),
        "--samples",
        bad_samples.to_str().unwrap(),
        "--timeout",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for expected in [
        "pass   line 1 echo",
        "fail   line 3 panic [key k]: trap",
        "fail   line 4 not-json [key k]: invalid-output",
        "fail   line 5 spin [key k]: timeout",
        "skip   line 6 nobody-handles-this",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
}

#[test]
fn a_bad_samples_file_is_refused_naming_the_line() {
    let dir = plugin_dir(&[(
        "template.wasm",
        std::fs::read(guest_wasm("sluice_plugin_template")).unwrap(),
    )]);
    let samples = dir.path().join("samples.jsonl");
    std::fs::write(
        &samples,
        "{\"task_type\":\"headline\",\"work_unit_key\":\"k\",\"payload\":{}}\n{\"task_type\":1}\n",
    )
    .unwrap();
    let out = sluice(&[
        "plugins",
        "check",
        dir.path().to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad samples file") && stderr.contains("line 2:"),
        "{stderr}"
    );
}

#[test]
fn the_template_under_exec_names_what_the_operator_must_set() {
    let template = guest_wasm("sluice_plugin_template");
    let exec = |extra: &[&str]| {
        let mut args = vec![
            "exec",
            "--plugins",
            template.to_str().unwrap(),
            "--task",
            "headline",
            "--payload",
            r#"{"text":"The river rose overnight."}"#,
        ];
        args.extend_from_slice(extra);
        let out = sluice(&args);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON report");
        assert_eq!(report["outcome"], "permanent", "{report}");
        assert_eq!(report["plugin"], "headline");
        report["message"].as_str().unwrap().to_string()
    };
    // Without [tasks.headline.llm] in the configuration, the call is denied.
    let denied = exec(&[]);
    assert!(denied.contains("[tasks.<task_type>.llm]"), "{denied}");
    // A malformed config value is named with its key, before any LLM call.
    let bad = exec(&["--set", "max_words=many"]);
    assert!(
        bad.contains("config value `max_words` must be a positive integer, got \"many\""),
        "{bad}"
    );
}
