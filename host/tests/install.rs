//! What an operator does first, as the README documents it: install the binary
//! with `cargo install --locked --path host` into a prefix, check its version,
//! generate the shell completions and manual pages, and run the host with
//! `deploy/sluice.toml` changed only where the paths point (a SQLite database
//! and the plugins in a temporary folder) until it is ready and stops cleanly
//! on SIGTERM. Also: the systemd unit outlasts the example's shutdown grace.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice::config::Config;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// A command that sees none of the caller's `SLUICE_*` variables.
fn clean(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SLUICE_") {
            command.env_remove(name);
        }
    }
    command
}

fn success(what: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Replaces the one line `old` of `text` with `new`.
fn replace_line(text: &str, old: &str, new: &str) -> String {
    assert_eq!(
        text.lines().filter(|line| *line == old).count(),
        1,
        "deploy/sluice.toml has no line `{old}`"
    );
    text.replacen(old, new, 1)
}

/// The status code of a plain GET, `None` while nothing answers.
fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_documented_install_runs_the_example_configuration() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let prefix = scratch.path().join("prefix");

    // The README's command; `--debug` and the workspace's target folder only
    // reuse what the test build compiled, `--offline` keeps it off the network.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut install = Command::new(cargo);
    // Not the variables cargo set for this test (`CARGO_PKG_NAME`, ...): build
    // scripts that read them would see another value than in a plain shell
    // and rebuild their crates on every run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            install.env_remove(&*name);
        }
    }
    let install = install
        .args(["install", "--locked", "--path"])
        .arg(repo().join("host"))
        .arg("--root")
        .arg(&prefix)
        .args(["--debug", "--offline"])
        .env("CARGO_TARGET_DIR", support::target_dir())
        .output()
        .expect("run cargo install");
    success("cargo install", install);
    let sluice = prefix.join("bin/sluice");

    let version = success(
        "sluice --version",
        clean(&sluice).arg("--version").output().unwrap(),
    );
    assert_eq!(
        version.trim(),
        format!("sluice {}", env!("CARGO_PKG_VERSION"))
    );

    for (shell, marker) in [
        ("bash", "_sluice()"),
        ("zsh", "#compdef sluice"),
        ("fish", "complete -c sluice"),
    ] {
        let script = success(
            &format!("sluice completions {shell}"),
            clean(&sluice)
                .args(["completions", shell])
                .output()
                .unwrap(),
        );
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("manpage"), "{shell} completes no verbs");
    }

    let page = success(
        "sluice manpage",
        clean(&sluice).arg("manpage").output().unwrap(),
    );
    assert!(page.contains(".TH sluice 1"), "{page}");
    assert!(page.contains("completions"), "{page}");
    let man = scratch.path().join("man/man1");
    let listed = success(
        "sluice manpage --dir",
        clean(&sluice)
            .args(["manpage", "--dir"])
            .arg(&man)
            .output()
            .unwrap(),
    );
    for name in [
        "sluice.1",
        "sluice-run.1",
        "sluice-dead.1",
        "sluice-bench-queue.1",
    ] {
        let path = man.join(name);
        assert!(path.is_file(), "no {name} in:\n{listed}");
        assert!(listed.contains(&path.display().to_string()), "{listed}");
    }
    assert!(read(&man.join("sluice-run.1")).contains("\\-\\-config"));

    // deploy/sluice.toml with its paths pointed into the scratch folder.
    let plugins = scratch.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for name in ["representation", "summary", "webhook"] {
        let wasm = support::guest_wasm(&format!("sluice_plugin_{name}"));
        std::fs::copy(wasm, plugins.join(format!("{name}.wasm"))).unwrap();
    }
    let mut config = read(&repo().join("deploy/sluice.toml"));
    for (old, new) in [
        (
            "database_url = \"sqlite:///var/lib/sluice/sluice.db\"",
            format!(
                "database_url = \"sqlite://{}\"",
                scratch.path().join("state/sluice.db").display()
            ),
        ),
        (
            "plugins_dir = \"/usr/local/lib/sluice/plugins\"",
            format!("plugins_dir = {:?}", plugins.display().to_string()),
        ),
        (
            "cache_dir = \"/var/cache/sluice\"",
            format!(
                "cache_dir = {:?}",
                support::target_dir()
                    .join("sluice-test-cache")
                    .display()
                    .to_string()
            ),
        ),
    ] {
        config = replace_line(&config, old, &new);
    }
    std::fs::create_dir(scratch.path().join("state")).unwrap();
    let config_file = scratch.path().join("sluice.toml");
    std::fs::write(&config_file, config).unwrap();

    // The listener's address is no path: a free port, through the environment.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let log = scratch.path().join("run.log");
    let mut host = clean(&sluice)
        .arg("run")
        .arg("--config")
        .arg(&config_file)
        .env("SLUICE_LISTEN", addr.to_string())
        .env("SLUICE_LOG", "info")
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start sluice run");
    let started = Instant::now();
    let ready = loop {
        if get_status(addr, "/readyz") == Some(200) {
            break true;
        }
        if started.elapsed() > Duration::from_secs(120) || host.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !ready {
        let _ = host.kill();
        let _ = host.wait();
        panic!("sluice run never became ready; its log:\n{}", read(&log));
    }
    eprintln!("ready after {:?}", started.elapsed());

    let kill = Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = host.try_wait().unwrap() {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(30) {
            let _ = host.kill();
            let _ = host.wait();
            panic!("sluice run ignored SIGTERM; its log:\n{}", read(&log));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = read(&log);
    assert!(status.success(), "sluice run exited with {status}:\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

/// The `TimeoutStopSec=` or `KillSignal=` of the unit file.
fn unit_setting<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("deploy/sluice.service sets no {key}"))
        .trim()
}

#[test]
fn the_service_unit_waits_longer_than_the_example_shutdown_grace() {
    let config: Config = toml::from_str(&read(&repo().join("deploy/sluice.toml")))
        .expect("deploy/sluice.toml parses");
    let unit = read(&repo().join("deploy/sluice.service"));
    assert_eq!(unit_setting(&unit, "KillSignal"), "SIGTERM");
    let stop_timeout = humantime::parse_duration(unit_setting(&unit, "TimeoutStopSec"))
        .expect("TimeoutStopSec is a duration");
    // The grace, then releasing the cancelled units and closing the database.
    assert!(
        stop_timeout >= config.shutdown_grace + Duration::from_secs(10),
        "TimeoutStopSec={stop_timeout:?} leaves no margin over shutdown_grace = {:?}",
        config.shutdown_grace
    );
    // The unit's own directories are where the example keeps its state.
    assert!(unit.contains("StateDirectory=sluice\n"));
    assert!(config.database_url.starts_with("sqlite:///var/lib/sluice/"));
    assert!(unit.contains("CacheDirectory=sluice\n"));
    assert_eq!(
        config.cache_dir.as_deref(),
        Some(Path::new("/var/cache/sluice"))
    );
    assert!(
        unit.contains("ExecStart=/usr/local/bin/sluice run --config /etc/sluice/sluice.toml\n")
    );
}
