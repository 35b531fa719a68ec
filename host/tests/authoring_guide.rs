//! `docs/authoring.md`, followed literally: every command block of its first
//! section (marked `<!-- tested: LANGUAGE -->`) runs, as written, in a
//! scratch folder outside the repository, for Rust, Python and JavaScript.
//! So the Rust template builds as a crate outside the workspace against the
//! SDK, the Python and JavaScript examples build with their real toolchains
//! (componentize-py from PyPI in a virtual environment, componentize-js from
//! npm, both pinned and cached under `target/plugin-toolchains`), and each
//! plugin passes its contract test and runs under `sluice exec` and
//! `sluice run` against the mock LLM. The guide cannot drift from what works.
//!
//! The three run one after another: the guide's mock LLM listens on a fixed
//! port. Rust's compiled dependencies are cached in
//! `target/authoring-guide-build` (Cargo's build directory), so only the first
//! run compiles them.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{target_dir, workspace_path};

/// The shell blocks between `<!-- tested: NAME -->` and `<!-- /tested -->`,
/// in order.
fn tested_blocks(guide: &str, name: &str) -> Vec<String> {
    let marker = format!("<!-- tested: {name} -->");
    let mut blocks = Vec::new();
    let mut rest = guide;
    while let Some(start) = rest.find(&marker) {
        let section = &rest[start + marker.len()..];
        let end = section
            .find("<!-- /tested -->")
            .unwrap_or_else(|| panic!("{marker} is not closed"));
        let mut inside = &section[..end];
        while let Some(open) = inside.find("```sh\n") {
            let code = &inside[open + "```sh\n".len()..];
            let close = code.find("\n```").expect("a closed code block");
            blocks.push(code[..close].to_string());
            inside = &code[close + 4..];
        }
        rest = &section[end..];
    }
    assert!(!blocks.is_empty(), "no tested blocks for {name}");
    blocks
}

/// Runs the `language` walkthrough and then the common steps in a fresh
/// scratch folder; returns what they printed.
fn follow(language: &str) -> String {
    let guide = std::fs::read_to_string(workspace_path("docs/authoring.md")).unwrap();
    let mut script = String::from("set -euxo pipefail\n");
    for block in tested_blocks(&guide, language)
        .into_iter()
        .chain(tested_blocks(&guide, "all"))
    {
        script.push_str(&block);
        script.push('\n');
    }
    let scratch = tempfile::tempdir().unwrap();
    let sluice_bin = Path::new(env!("CARGO_BIN_EXE_sluice")).parent().unwrap();
    let mock_llm = target_dir().join("debug");
    assert!(
        mock_llm.join("mock-llm").is_file(),
        "build the mock LLM first: cargo build -p mock-llm (scripts/test does)"
    );
    let path = format!(
        "{}:{}:{}",
        sluice_bin.display(),
        mock_llm.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repo: PathBuf = workspace_path("").canonicalize().unwrap();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(scratch.path())
        .env("SLUICE", &repo)
        .env("PATH", path)
        // Everything the guide needs is in Cargo's cache once the workspace built.
        .env("CARGO_NET_OFFLINE", "true")
        .env(
            "CARGO_BUILD_BUILD_DIR",
            target_dir().join("authoring-guide-build"),
        )
        .env("SLUICE_TOOLS", target_dir().join("plugin-toolchains"))
        .env("SLUICE_CACHE_DIR", target_dir().join("sluice-test-cache"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("SLUICE_PLUGINS")
        .env_remove("SLUICE_DATABASE_URL")
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let group = child.id();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let output = std::thread::scope(|scope| {
        let out = scope.spawn(|| read_all(stdout));
        let err = scope.spawn(|| read_all(stderr));
        let status = child.wait().unwrap();
        (status, out.join().unwrap(), err.join().unwrap())
    });
    // Whatever the script left running (a failed run leaves the host and the mock).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let (status, stdout, stderr) = output;
    assert!(
        status.success(),
        "the {language} walkthrough failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}

fn read_all(mut from: impl std::io::Read) -> String {
    let mut text = String::new();
    from.read_to_string(&mut text).unwrap();
    text
}

/// What the common steps must have printed for a plugin named `headline`.
fn assert_ran(language: &str, stdout: &str) {
    let has = |what: &str| {
        assert!(
            stdout.contains(what),
            "{language}: missing {what:?} in\n{stdout}"
        )
    };
    has("ok     headline 0.1.0 (item mode) task types: headline");
    has("pass   line 1 headline [key demo]: permanent: the LLM call was denied");
    has("pass   line 2 headline [key demo]: permanent: item 2: the payload");
    let exec: serde_json::Value = stdout
        .lines()
        .find(|l| l.starts_with("{\"outcome\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("{language}: no exec report in\n{stdout}"));
    assert_eq!(exec["outcome"], "ok", "{language}: {exec}");
    assert_eq!(
        exec["output"]["audience"], "commuters",
        "{language}: {exec}"
    );
    assert_eq!(exec["output"]["mood"], "positive", "{language}: {exec}");
    assert_eq!(exec["output"]["model"], "mock-small", "{language}: {exec}");
    assert!(
        exec["output"]["headline"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{language}: {exec}"
    );
    // `sluice outputs` after `sluice run`: `TIME  items IDS  OUTPUT`.
    let stored: serde_json::Value = stdout
        .lines()
        .find(|l| l.contains("  items 1  "))
        .and_then(|l| l.split("  items 1  ").nth(1))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("{language}: no stored output in\n{stdout}"));
    assert_eq!(
        stored, exec["output"],
        "{language}: the host stored what exec returned"
    );
}

#[test]
fn the_guide_runs_as_written_in_rust_python_and_javascript() {
    for language in ["rust", "python", "js"] {
        let stdout = follow(language);
        assert_ran(language, &stdout);
    }
}

#[test]
fn every_tested_block_of_the_guide_is_found() {
    let guide = std::fs::read_to_string(workspace_path("docs/authoring.md")).unwrap();
    let all: usize = ["rust", "python", "js", "all"]
        .iter()
        .map(|name| tested_blocks(&guide, name).len())
        .sum();
    let marked = guide.matches("<!-- tested: ").count();
    assert_eq!(marked, 4, "one marked section per language and one common");
    let shell_blocks = guide.matches("```sh\n").count();
    // The one untested block shows how to deploy by hand.
    assert_eq!(
        all + 1,
        shell_blocks,
        "a shell block outside the tested sections"
    );
}
