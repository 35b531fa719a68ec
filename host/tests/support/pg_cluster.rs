//! A private PostgreSQL cluster for one test: `initdb` in a temporary folder,
//! a free port, and a server the test may crash and restart at will without
//! disturbing the tests that share the machine's PostgreSQL.
//!
//! `initdb` refuses to run as root (tests and CI do), so when the test runs as
//! root every `initdb`/`pg_ctl` runs as the `postgres` user on a folder that
//! user owns. The cluster is stopped (`-m immediate`) and its folder removed
//! when the value is dropped, also while a failed test unwinds.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

/// The folder holding `initdb` and `pg_ctl`: `$SLUICE_TEST_PG_BIN`, or the
/// newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries in /usr/lib/postgresql (or set SLUICE_TEST_PG_BIN)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("a PostgreSQL version with bin/pg_ctl under /usr/lib/postgresql")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    assert!(out.status.success(), "no `postgres` user to run initdb as");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

impl PgCluster {
    /// `initdb`, configure and start a cluster; `settings` are extra
    /// `postgresql.conf` lines.
    pub fn start(settings: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0);
        if as_postgres {
            std::os::unix::fs::chown(dir.path(), Some(id_of("-u")), Some(id_of("-g")))
                .expect("hand the cluster folder to the postgres user");
        }
        let cluster = Self {
            bin: bin_dir(),
            port: free_port(),
            as_postgres,
            dir,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 100\nshared_buffers = '32MB'\nfsync = off\n{settings}\n",
            cluster.port,
            cluster.dir.path().display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .expect("configure the cluster");
        cluster.pg_ctl_start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Crashes the server (`pg_ctl stop -m immediate`: no checkpoint, no
    /// flush of WAL still in memory), waits `down`, and starts it again
    /// (crash recovery), returning once it accepts connections.
    pub fn crash_and_restart(&self, down: Duration) {
        self.pg_ctl_stop();
        std::thread::sleep(down);
        self.pg_ctl_start();
    }

    fn pg_ctl_start(&self) {
        let data = self.data();
        let log = self.log();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    fn pg_ctl_stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed ({}):\n{}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.server_log(),
        );
    }

    /// The server's log so far (for failure messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}
