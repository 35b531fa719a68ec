//! The on-disk cache of compiled plugins.
//!
//! Compiling a component with Cranelift takes from hundreds of milliseconds to
//! seconds; loading its precompiled form takes a millisecond. Entries are keyed
//! by the SHA-256 of the `.wasm` bytes and by the engine's compatibility hash
//! (wasmtime version, compiler settings, target), so a rebuilt plugin or an
//! upgraded host never loads stale code. Entries are written atomically
//! (temporary file, then rename) into a directory only its owner may write;
//! a cache that cannot be read or written only costs a recompile. Each use
//! refreshes an entry's modification time; whenever an entry is written,
//! entries unused for [`MAX_AGE`] are evicted, then the least recently used
//! ones until the cache holds at most [`MAX_BYTES`], so a host that reloads
//! plugins for months does not fill its disk.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries unused for this long are evicted.
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most the cache holds; the least recently used entries go first.
const MAX_BYTES: u64 = 1 << 30;

/// Hex SHA-256 of a plugin file: its identity in the cache and in reports.
pub(crate) fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn entry_path(dir: &Path, engine: &Engine, digest: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// The compiled component for `bytes`, from the cache when present.
pub(crate) fn compile(
    engine: &Engine,
    bytes: &[u8],
    digest: &str,
    dir: Option<&Path>,
) -> wasmtime::Result<Component> {
    let Some(dir) = dir else {
        return Component::new(engine, bytes);
    };
    let path = entry_path(dir, engine, digest);
    if let Ok(compiled) = std::fs::read(&path) {
        // Read, not mapped: a cache file replaced or truncated while mapped
        // would take the whole process down with SIGBUS.
        // SAFETY: the bytes were produced by `Component::serialize` of an engine
        // with the same compatibility hash (it is in the file name), in a
        // directory only the host writes to; wasmtime still checks the header.
        match unsafe { Component::deserialize(engine, &compiled) } {
            Ok(component) => {
                touch(&path);
                return Ok(component);
            }
            Err(err) => tracing::warn!(
                path = %path.display(),
                error = %format!("{err:#}"),
                "ignoring unreadable compiled-plugin cache entry"
            ),
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(err) = store(&path, &component) {
        tracing::warn!(
            path = %path.display(),
            error = %format!("{err:#}"),
            "cannot write the compiled-plugin cache; plugins will be recompiled on the next start"
        );
    }
    evict(dir, &path, SystemTime::now(), MAX_AGE, MAX_BYTES);
    Ok(component)
}

/// Marks an entry as used now (best effort: a read-only cache still works).
fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
}

/// Removes entries unused for longer than `max_age`, then the least recently
/// used ones until the rest fit in `max_bytes`; `keep` (just written) stays.
fn evict(dir: &Path, keep: &Path, now: SystemTime, max_age: Duration, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    entries.sort_by_key(|(used, _, _)| std::cmp::Reverse(*used));
    let mut total = 0u64;
    for (used, len, path) in entries {
        let stale = now.duration_since(used).unwrap_or_default() > max_age;
        total = total.saturating_add(len);
        if path != keep && (stale || total > max_bytes) {
            match std::fs::remove_file(&path) {
                Ok(()) => total -= len,
                Err(err) => {
                    tracing::debug!(path = %path.display(), error = %err, "cannot evict a compiled-plugin cache entry")
                }
            }
        }
    }
}

/// Writes an entry under a unique temporary name, then renames it into place,
/// so a reader (another thread or process) never sees half a file. The
/// directory is created readable by its owner only.
fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;

    let dir = path.parent().expect("cache entries live in a directory");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let serialized = component.serialize()?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&serialized)?;
    tmp.persist(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: &Path, name: &str, bytes: usize, age_days: u64, now: SystemTime) -> PathBuf {
        let path = dir.join(format!("{name}.cwasm"));
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        let used = now - Duration::from_secs(age_days * 24 * 3600);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(used)
            .unwrap();
        path
    }

    #[test]
    fn stale_entries_go_then_the_least_recently_used_beyond_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let fresh = entry(dir.path(), "fresh", 100, 0, now);
        let recent = entry(dir.path(), "recent", 100, 1, now);
        let older = entry(dir.path(), "older", 100, 2, now);
        let stale = entry(dir.path(), "stale", 10, 40, now);
        let just_written = entry(dir.path(), "new", 100, 50, now);
        std::fs::write(dir.path().join("notes.txt"), "not an entry").unwrap();
        evict(dir.path(), &just_written, now, MAX_AGE, 250);
        assert!(fresh.exists() && recent.exists(), "the most recent fit");
        assert!(!older.exists(), "over the size, the least recent goes");
        assert!(!stale.exists(), "unused for 40 days");
        assert!(just_written.exists(), "the entry just written stays");
        assert!(
            dir.path().join("notes.txt").exists(),
            "only entries are touched"
        );
    }
}
