//! Build facts for `sluice_build_info`: the git commit the binary was built
//! from and the wasmtime version it embeds, as `SLUICE_BUILD_COMMIT` and
//! `SLUICE_BUILD_WASMTIME` at compile time.
//!
//! The commit comes from `SLUICE_BUILD_COMMIT` in the build's environment
//! when set (for builds from a source archive, or a container build without
//! `.git`), else from `git rev-parse`, else it is `unknown`. The wasmtime
//! version is read from the `Cargo.lock` the build resolved with, else it is
//! `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNKNOWN: &str = "unknown";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-env-changed=SLUICE_BUILD_COMMIT");
    let commit = match std::env::var("SLUICE_BUILD_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ => git_commit(&manifest_dir).unwrap_or_else(|| UNKNOWN.to_owned()),
    };
    println!("cargo:rustc-env=SLUICE_BUILD_COMMIT={commit}");
    let wasmtime = wasmtime_version(&manifest_dir).unwrap_or_else(|| UNKNOWN.to_owned());
    println!("cargo:rustc-env=SLUICE_BUILD_WASMTIME={wasmtime}");
}

/// `git` in `dir`, its output trimmed, or `None` if it fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// The short commit hash of `HEAD`, and reruns of this script when it moves.
fn git_commit(dir: &Path) -> Option<String> {
    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    // HEAD names the branch; the branch's ref (loose or packed) names the
    // commit. Only files that exist: a missing one would rerun every build.
    let mut watched = vec![git(dir, &["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(dir, &["rev-parse", "--symbolic-full-name", "HEAD"]) {
        watched.push(git(dir, &["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(dir, &["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        let path = dir.join(path);
        if path.is_file() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}

/// The version of the `wasmtime` package in the nearest `Cargo.lock` above
/// `dir` (the workspace's, or the package's own when built from crates.io).
fn wasmtime_version(dir: &Path) -> Option<String> {
    let lock = dir
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file())?;
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(lock).ok()?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == r#"name = "wasmtime""# {
            let version = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(version.trim_matches('"').to_owned());
        }
    }
    None
}
