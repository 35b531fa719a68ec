//! The real `sluice run` binary as a child process: a folder with the test
//! plugin and a `sluice.toml`, and ways to stop it (SIGTERM) or kill it
//! (SIGKILL). Its log goes to a file in the folder, shown when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A folder a host runs in: `plugins/` with the adversary plugin and the config.
pub struct HostDir {
    pub dir: tempfile::TempDir,
}

impl HostDir {
    /// `config` is the body of `sluice.toml`; the database URL, plugins folder
    /// and compile cache are added.
    pub fn new(database_url: &str, config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::copy(super::adversary_wasm(), plugins.join("adversary.wasm")).unwrap();
        let cache = super::target_dir().join("sluice-test-cache");
        std::fs::write(
            dir.path().join("sluice.toml"),
            format!(
                "database_url = {database_url:?}\ncache_dir = {:?}\nlisten = \"off\"\n{config}",
                cache.display().to_string()
            ),
        )
        .unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `sluice run` here; `name` labels its log file.
    pub fn start(&self, name: &str) -> HostProcess {
        self.start_with(name, &[], &[])
    }

    /// Starts `sluice run` with `args` after `run` and `env` set; its stderr
    /// goes to a file (not a terminal).
    pub fn start_with(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> HostProcess {
        let log = self.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("run")
            .args(args)
            .current_dir(self.path())
            .env("SLUICE_LOG", "info,sqlx=warn")
            .env_remove("SLUICE_DATABASE_URL")
            .env_remove("NO_COLOR")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sluice run");
        HostProcess { child, log }
    }
}

/// A running `sluice run`. Killed when dropped, so a failing test leaves nothing.
pub struct HostProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl HostProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (such as `-HUP`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// SIGTERM, then waits (up to `limit`) for the process to exit.
    pub fn terminate(mut self, limit: Duration) -> ExitStatus {
        self.signal("-TERM");
        self.wait(limit)
    }

    /// SIGKILL: no shutdown, no release, nothing.
    pub fn kill9(mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "sluice run did not exit within {limit:?}; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            if std::thread::panicking() {
                eprintln!("--- {} ---\n{}", self.log.display(), self.log_text());
            }
        }
    }
}
