//! The plugin registry: every `*.wasm` in a folder, validated and ready to run.
//!
//! Loading a plugin checks, in order, that the file is a WebAssembly component
//! (not a core module, not truncated), that it was built against a compatible
//! version of the `sluice:task` contract and imports nothing else but WASI, that
//! it exports the `handler` world, and that `describe` returns a sensible
//! description. Compiled code is cached on disk ([`super::cache`]), and each
//! plugin keeps an `InstancePre` so a call only has to instantiate. Two plugins
//! claiming one task type are refused: which one runs must never be a guess.
//!
//! [`rescan`] is the same load against the plugins already running, for hot
//! reload: unchanged files keep their loaded plugin, and a file that fails
//! changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION, HandlerPre, types};
use super::cache;
use super::engine::Runtime;
use super::sandbox::HostState;
use crate::imports::DenyAll;

/// How long `describe` may take at load time.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a plugin wants its items delivered (the WIT `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginMode {
    Batch,
    Item,
}

impl PluginMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Item => "item",
        }
    }
}

/// A loaded, validated plugin.
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub task_types: Vec<String>,
    pub mode: PluginMode,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Hex SHA-256 of the file.
    pub digest: String,
    pub(crate) pre: HandlerPre<HostState>,
}

/// Why a plugin (or the plugins folder) could not be loaded. Each message names
/// the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(
        "plugins folder {} does not exist: create it, or point --plugins at the folder holding your .wasm files",
        .0.display()
    )]
    MissingDir(PathBuf),
    #[error("cannot read plugins folder {}: {cause}", path.display())]
    ReadDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: cannot read: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: not a WebAssembly file (it does not start with the `\\0asm` magic bytes)", .0.display())]
    NotWasm(PathBuf),
    #[error(
        "{}: is a core WebAssembly module, not a component; build plugins with \
         `cargo build --target wasm32-wasip2`, which produces a component",
        .0.display()
    )]
    CoreModule(PathBuf),
    #[error("{}: cannot be compiled, the file may be truncated or corrupt (rebuild it): {reason}", path.display())]
    Compile { path: PathBuf, reason: String },
    #[error(
        "{}: was built against {found}, but this host implements {CONTRACT_PACKAGE}@{CONTRACT_VERSION}; \
         rebuild the plugin against the wit/ folder of this Sluice release",
        path.display()
    )]
    IncompatibleContract { path: PathBuf, found: String },
    #[error("{}: does not implement the {CONTRACT_PACKAGE} `handler` world: {reason}", path.display())]
    WrongWorld { path: PathBuf, reason: String },
    #[error(
        "{}: imports `{name}`, but plugins reach the network only through {CONTRACT_PACKAGE}'s \
         `http` and `llm` imports, which the operator allows per task type; rebuild without \
         WASI HTTP: with componentize-js pass `--disable http --disable fetch-event`, with \
         componentize-py target the `handler` world of wit/ (not `wasi:http/proxy`), and in \
         Rust drop the dependency that brings it (docs/authoring.md, \"The sandbox\")",
        path.display()
    )]
    WasiHttp { path: PathBuf, name: String },
    #[error("{}: describe() failed: {reason}", path.display())]
    Describe { path: PathBuf, reason: String },
    #[error(
        "task type `{task_type}` is claimed by both {} and {}: remove one of them from the plugins folder",
        first.display(), second.display()
    )]
    DuplicateTaskType {
        task_type: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// Everything found in a plugins folder: what loaded, and what did not.
pub struct LoadReport {
    pub plugins: Vec<Arc<Plugin>>,
    pub errors: Vec<PluginError>,
}

/// The plugins a host runs, by task type.
pub struct Registry {
    plugins: Vec<Arc<Plugin>>,
    by_task_type: BTreeMap<String, Arc<Plugin>>,
}

impl Registry {
    /// Loads every plugin in `dir`; any bad plugin fails the whole load.
    pub async fn load(runtime: &Runtime, dir: &Path) -> Result<Self, Vec<PluginError>> {
        let report = scan(runtime, dir).await.map_err(|e| vec![e])?;
        if !report.errors.is_empty() {
            return Err(report.errors);
        }
        Ok(Self::from_plugins(report.plugins))
    }

    /// A registry of already-loaded plugins (their task types must not overlap:
    /// [`scan`] guarantees that).
    pub fn from_plugins(plugins: Vec<Arc<Plugin>>) -> Self {
        let by_task_type = plugins
            .iter()
            .flat_map(|p| p.task_types.iter().map(move |t| (t.clone(), p.clone())))
            .collect();
        Self {
            plugins,
            by_task_type,
        }
    }

    /// The plugin handling `task_type`, if one is loaded.
    pub fn get(&self, task_type: &str) -> Option<&Arc<Plugin>> {
        self.by_task_type.get(task_type)
    }

    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// Every task type some plugin handles, sorted.
    pub fn task_types(&self) -> impl Iterator<Item = &str> {
        self.by_task_type.keys().map(String::as_str)
    }
}

/// Loads every `*.wasm` in `dir` (sorted by name, so duplicate reports are
/// stable), collecting per-file errors instead of stopping at the first.
pub async fn scan(runtime: &Runtime, dir: &Path) -> Result<LoadReport, PluginError> {
    let files = wasm_files(dir)?;
    let mut report = LoadReport {
        plugins: Vec::new(),
        errors: Vec::new(),
    };
    let mut owners: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let plugin = match load_file(runtime, &path).await {
            Ok(plugin) => plugin,
            Err(err) => {
                report.errors.push(err);
                continue;
            }
        };
        let duplicates: Vec<PluginError> = plugin
            .task_types
            .iter()
            .filter_map(|t| {
                owners.get(t).map(|first| PluginError::DuplicateTaskType {
                    task_type: t.clone(),
                    first: first.clone(),
                    second: path.clone(),
                })
            })
            .collect();
        if duplicates.is_empty() {
            for t in &plugin.task_types {
                owners.insert(t.clone(), path.clone());
            }
            report.plugins.push(Arc::new(plugin));
        } else {
            report.errors.extend(duplicates);
        }
    }
    Ok(report)
}

/// What a [`rescan`] changed, one entry per file.
pub enum Change {
    Added(Arc<Plugin>),
    Replaced { old: Arc<Plugin>, new: Arc<Plugin> },
    Removed(Arc<Plugin>),
}

/// The outcome of a [`rescan`]: the plugins to run from now on, what changed,
/// and the files refused (each keeps its previous version, if it had one).
pub struct Rescan {
    pub plugins: Vec<Arc<Plugin>>,
    pub changes: Vec<Change>,
    pub refused: Vec<PluginError>,
}

/// Rescans `dir` against `current`, the plugins running now. A file whose
/// bytes did not change keeps its loaded plugin; a changed or new file is
/// compiled and checked like at start; a file that is gone drops its plugin.
/// A file that fails to load, or whose task types another file already
/// handles, is refused and changes nothing: its previous version (if any)
/// keeps serving. A missing or unreadable folder is an error and changes
/// nothing either.
pub async fn rescan(
    runtime: &Runtime,
    dir: &Path,
    current: &[Arc<Plugin>],
) -> Result<Rescan, PluginError> {
    let files = wasm_files(dir)?;
    let mut before: BTreeMap<&Path, &Arc<Plugin>> =
        current.iter().map(|p| (p.path.as_path(), p)).collect();
    let mut result = Rescan {
        plugins: Vec::new(),
        changes: Vec::new(),
        refused: Vec::new(),
    };
    let mut owners: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let old = before.remove(path.as_path()).cloned();
        let unchanged = match (&old, std::fs::read(&path)) {
            (Some(old), Ok(bytes)) => cache::digest(&bytes) == old.digest,
            _ => false,
        };
        let mut candidates = Vec::new();
        if unchanged {
            candidates.extend(old.clone());
        } else {
            match load_file(runtime, &path).await {
                Ok(plugin) => candidates.push(Arc::new(plugin)),
                Err(err) => result.refused.push(err),
            }
            candidates.extend(old.clone());
        }
        let mut kept = false;
        for candidate in candidates {
            let clash = candidate
                .task_types
                .iter()
                .find_map(|t| owners.get(t).map(|first| (t.clone(), first.clone())));
            if let Some((task_type, first)) = clash {
                result.refused.push(PluginError::DuplicateTaskType {
                    task_type,
                    first,
                    second: path.clone(),
                });
                continue;
            }
            for t in &candidate.task_types {
                owners.insert(t.clone(), path.clone());
            }
            match &old {
                None => result.changes.push(Change::Added(candidate.clone())),
                Some(old) if !Arc::ptr_eq(old, &candidate) => {
                    result.changes.push(Change::Replaced {
                        old: old.clone(),
                        new: candidate.clone(),
                    })
                }
                Some(_) => {}
            }
            result.plugins.push(candidate);
            kept = true;
            break;
        }
        if let (false, Some(old)) = (kept, old) {
            result.changes.push(Change::Removed(old));
        }
    }
    result.changes.extend(
        before
            .into_values()
            .map(|gone| Change::Removed(gone.clone())),
    );
    Ok(result)
}

/// A `*.wasm` file whose name does not start with `.`: a file being deployed
/// can be written under a hidden name, then renamed into place.
pub fn is_plugin_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
        && path
            .file_name()
            .is_some_and(|name| !name.to_string_lossy().starts_with('.'))
}

fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    if !dir.is_dir() {
        return Err(PluginError::MissingDir(dir.to_path_buf()));
    }
    let read_dir_error = |cause| PluginError::ReadDir {
        path: dir.to_path_buf(),
        cause,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
        let path = entry.map_err(read_dir_error)?.path();
        if is_plugin_file(&path) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads and validates one plugin file.
pub async fn load_file(runtime: &Runtime, path: &Path) -> Result<Plugin, PluginError> {
    let bytes = std::fs::read(path).map_err(|cause| PluginError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    check_header(path, &bytes)?;
    let digest = cache::digest(&bytes);
    let component = {
        let (engine, cache_dir) = (runtime.engine().clone(), runtime.config().cache_dir.clone());
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || {
            cache::compile(&engine, &bytes, &digest, cache_dir.as_deref())
        })
        .await
        .expect("the compile task does not panic")
        .map_err(|err| PluginError::Compile {
            path: path.to_path_buf(),
            reason: format!("{err:#}"),
        })?
    };
    check_imports(runtime, path, &component)?;
    let wrong_world = |err: wasmtime::Error| PluginError::WrongWorld {
        path: path.to_path_buf(),
        reason: format!("{err:#}"),
    };
    let instance_pre = runtime
        .linker()
        .instantiate_pre(&component)
        .map_err(wrong_world)?;
    let pre = HandlerPre::new(instance_pre).map_err(wrong_world)?;
    let info = super::call::describe(&pre, Arc::new(DenyAll), DESCRIBE_TIMEOUT)
        .await
        .map_err(|reason| PluginError::Describe {
            path: path.to_path_buf(),
            reason,
        })?;
    let describe_error = |reason: String| PluginError::Describe {
        path: path.to_path_buf(),
        reason,
    };
    validate_info(&info).map_err(describe_error)?;
    Ok(Plugin {
        name: info.name,
        version: info.version,
        task_types: info.task_types,
        mode: match info.mode {
            types::Mode::Batch => PluginMode::Batch,
            types::Mode::Item => PluginMode::Item,
        },
        path: path.to_path_buf(),
        digest,
        pre,
    })
}

/// Tells a component from a core module (or anything else) by its preamble.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(PluginError::NotWasm(path.to_path_buf()));
    }
    if bytes[4..8] == CORE_MODULE_VERSION {
        return Err(PluginError::CoreModule(path.to_path_buf()));
    }
    Ok(())
}

/// Refuses imports from another version of the contract or from packages the
/// host does not provide, with a message that names them. (The linker would
/// refuse them too, but in terms only a wasmtime developer would recognize.)
fn check_imports(
    runtime: &Runtime,
    path: &Path,
    component: &wasmtime::component::Component,
) -> Result<(), PluginError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(runtime.engine()) {
        if let Some(interface) = name.strip_prefix(&format!("{CONTRACT_PACKAGE}/")) {
            let version = interface.split_once('@').map(|(_, v)| v).unwrap_or("");
            if !compatible(version, CONTRACT_VERSION) {
                let found = if version.is_empty() {
                    format!("an unversioned {CONTRACT_PACKAGE}")
                } else {
                    format!("{CONTRACT_PACKAGE}@{version}")
                };
                return Err(PluginError::IncompatibleContract {
                    path: path.to_path_buf(),
                    found,
                });
            }
        } else if name.starts_with("wasi:http/") {
            return Err(PluginError::WasiHttp {
                path: path.to_path_buf(),
                name: name.to_string(),
            });
        } else if !name.starts_with("wasi:") {
            return Err(PluginError::WrongWorld {
                path: path.to_path_buf(),
                reason: format!(
                    "it imports `{name}`, which Sluice does not provide; plugins may import \
                     only {CONTRACT_PACKAGE} and WASI interfaces"
                ),
            });
        }
    }
    Ok(())
}

/// Semver compatibility: same major, and for 0.x the same minor.
fn compatible(found: &str, ours: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(found), parse(ours)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

fn validate_info(info: &types::PluginInfo) -> Result<(), String> {
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
    };
    if !valid_name(&info.name) {
        return Err(format!(
            "plugin name {:?} must be 1 to 128 characters of letters, digits and -_.:/",
            info.name
        ));
    }
    if info.task_types.is_empty() {
        return Err("it declares no task types".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &info.task_types {
        if !valid_name(t) {
            return Err(format!(
                "task type {t:?} must be 1 to 128 characters of letters, digits and -_.:/"
            ));
        }
        if !seen.insert(t) {
            return Err(format!("it declares task type `{t}` twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn contract_versions_follow_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("", "0.1.0"));
    }
}
