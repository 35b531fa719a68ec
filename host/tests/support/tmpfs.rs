//! A small tmpfs for one test, so a test can fill a disk without filling the
//! machine's: mounted on a temporary folder (root only: tests and CI run as
//! root), filled on demand by a filler file, freed by deleting it, and lazily
//! unmounted when dropped, also while a failed test unwinds with files open.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes the filler file until the file system is full; returns its size.
    pub fn fill(&self) -> u64 {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("create the filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut written = std::fs::metadata(self.filler()).map_or(0, |m| m.len());
        // Big chunks, then single pages, then bytes: every byte ends up used.
        for size in [chunk.len(), 4096, 1] {
            loop {
                match file.write(&chunk[..size]) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                    Err(e) => panic!("filling the tmpfs: {e}"),
                }
            }
        }
        let _ = file.flush();
        written
    }

    /// Deletes the filler: the space is back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("delete the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}
