//! Relative paths in a configuration file mean "next to this file", as
//! operators expect from `/etc/sluice/sluice.toml` saying `plugins_dir =
//! "plugins"`; the same path from the environment or the command line means
//! the working directory, as every other program reads it.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::Source;

use super::Config;

/// Rewrites `plugins_dir`, `cache_dir` and a SQLite `database_url` that
/// `figment` took from a file, and are relative, to start at that file's folder.
pub(super) fn resolve_against_file(config: &mut Config, figment: &Figment) {
    let folder_of = |key: &str| match figment.find_metadata(key)?.source.as_ref()? {
        Source::File(file) => file.parent().map(Path::to_path_buf),
        _ => None,
    };
    if let Some(folder) = folder_of("plugins_dir") {
        config.plugins_dir = folder.join(&config.plugins_dir);
    }
    if let (Some(cache_dir), Some(folder)) = (&config.cache_dir, folder_of("cache_dir")) {
        config.cache_dir = Some(folder.join(cache_dir));
    }
    if let Some(folder) = folder_of("database_url") {
        config.database_url = sqlite_url_relative_to(&config.database_url, &folder);
    }
}

/// The file a `sqlite:` URL names, as sqlx reads it (`sqlite://PATH` or
/// `sqlite:PATH`, then an optional `?query`); `None` for other databases and
/// in-memory ones.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let (path, query) = sqlite_parts(url)?;
    let in_memory = path.is_empty()
        || path == ":memory:"
        || query.is_some_and(|query| query.split('&').any(|pair| pair == "mode=memory"));
    (!in_memory).then(|| PathBuf::from(path))
}

/// (path, query) of a `sqlite:` URL, the path still percent-encoded.
fn sqlite_parts(url: &str) -> Option<(&str, Option<&str>)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    })
}

fn sqlite_url_relative_to(url: &str, folder: &Path) -> String {
    let Some((path, query)) = sqlite_parts(url) else {
        return url.to_owned();
    };
    if sqlite_file(url).is_none() || Path::new(path).is_absolute() {
        return url.to_owned();
    }
    // The folder is plain text, the path is URL text: encode what sqlx decodes.
    let folder = folder
        .to_string_lossy()
        .replace('%', "%25")
        .replace('?', "%3F");
    let joined = Path::new(&folder).join(path);
    match query {
        Some(query) => format!("sqlite://{}?{query}", joined.display()),
        None => format!("sqlite://{}", joined.display()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{sqlite_file, sqlite_url_relative_to};

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite://q.db"), Some(PathBuf::from("q.db")));
        assert_eq!(
            sqlite_file("sqlite:///var/q.db?mode=rwc"),
            Some(PathBuf::from("/var/q.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://db/q"), None);
    }

    #[test]
    fn relative_sqlite_paths_move_to_the_folder() {
        let folder = Path::new("/etc/sluice");
        for (url, resolved) in [
            ("sqlite://q.db", "sqlite:///etc/sluice/q.db"),
            (
                "sqlite:data/q.db?mode=rwc",
                "sqlite:///etc/sluice/data/q.db?mode=rwc",
            ),
            ("sqlite:///var/q.db", "sqlite:///var/q.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgres://db/q", "postgres://db/q"),
        ] {
            assert_eq!(sqlite_url_relative_to(url, folder), resolved, "{url}");
        }
    }
}
