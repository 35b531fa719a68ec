//! The README's demo command, run as a newcomer would (minus the build, which
//! the test command has done): it must produce observations for every peer,
//! summaries and webhook deliveries, and recover the LLM call it hangs on
//! purpose, with nothing dead-lettered.

mod support;

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_produces_observations_and_recovers_the_hung_call() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mock = support::target_dir().join("debug/mock-llm");
    assert!(
        mock.is_file(),
        "{} is missing: build it with `cargo build -p mock-llm` (scripts/test does)",
        mock.display()
    );
    let out = Command::new(root.join("scripts/demo"))
        .env("SLUICE_DEMO_SKIP_BUILD", "1")
        .env_remove("SLUICE_DATABASE_URL")
        .env_remove("SLUICE_CONFIG")
        .output()
        .expect("run scripts/demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the demo failed:\n{stdout}\n{stderr}");
    let section = |title: &str| -> String {
        stdout
            .split("### ")
            .find(|s| s.starts_with(title))
            .unwrap_or_else(|| panic!("no `{title}` section in:\n{stdout}"))
            .to_string()
    };
    let observations = section("observations");
    for peer in ["alice", "bob", "carol"] {
        let block = observations
            .split(&format!("{peer}:\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no observations for {peer}:\n{observations}"));
        assert!(
            block.trim_start().starts_with("- "),
            "{peer}: {observations}"
        );
    }
    assert_eq!(
        section("summaries")
            .matches("\"summary\":\"Summary")
            .count(),
        2
    );
    assert_eq!(section("webhook deliveries").matches("sha256=").count(), 2);
    let hung = section("the hung LLM call");
    assert!(
        hung.contains("the first call about friends/carol failed: timed out"),
        "{hung}"
    );
    assert!(hung.contains("no item was charged"), "{hung}");
    assert!(
        hung.contains("later calls completed every item of the unit"),
        "{hung}"
    );
    assert!(stdout.contains("demo complete"), "{stdout}");
}
