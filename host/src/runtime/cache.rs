//! The on-disk cache of compiled plugins.
//!
//! Compiling a component with Cranelift takes from hundreds of milliseconds to
//! seconds; loading its precompiled form takes a millisecond. Entries are keyed
//! by the SHA-256 of the `.wasm` bytes and by the engine's compatibility hash
//! (wasmtime version, compiler settings, target), so a rebuilt plugin or an
//! upgraded host never loads stale code. Entries are written atomically
//! (temporary file, then rename) into a directory only its owner may write;
//! a cache that cannot be read or written only costs a recompile. Entries are
//! never evicted: a few MiB per plugin build.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

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
            Ok(component) => return Ok(component),
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
    Ok(component)
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
