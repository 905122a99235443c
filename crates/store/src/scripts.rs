//! A user's Sieve scripts, the one reader and writer of them, in Pigeonhole's layout so that a
//! home directory taken over from Dovecot keeps its filters:
//!
//! - every script is `~/sieve/NAME.sieve` (Pigeonhole's `sieve_dir`, `file:~/sieve`);
//! - the active one is the symbolic link `~/.dovecot.sieve -> sieve/NAME.sieve`
//!   (`active=~/.dovecot.sieve`), replaced atomically by renaming a new link over it;
//! - new contents are written in `~/sieve/tmp/`, fsync'd and renamed into place, as Pigeonhole
//!   saves them; compiled `NAME.svbin` files beside them are Pigeonhole's and are ignored.
//!
//! A plain file `~/.dovecot.sieve` (no link, as homes from before ManageSieve have) is what
//! Pigeonhole does with it: delivery runs it as the active script ([`ScriptStore::active`]
//! gives it without a name), it is not one of the listed scripts, and activating or
//! deactivating a script first copies it to `~/sieve/dovecot.orig.sieve` (replacing a script of
//! that name, as Pigeonhole's rescue does) and then replaces it with the link, so nothing the
//! user had is lost and the old filter shows up under that name.
//!
//! A link that points anywhere but into `~/sieve/` is no active script (Pigeonhole: "Invalid/
//! unknown path to storage"); activating a script repairs it. Script files are never read
//! through a symbolic link.
//!
//! Blocking: every call does file-system I/O and fsyncs; async callers run it on the blocking
//! pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::maildir::{create_dir_all_private, open_message_file, sync_dir, unique_name};

/// Pigeonhole's `sieve_max_script_size` default, and the largest script read unless
/// [`ScriptStore::with_max_script_bytes`] says otherwise.
pub const DEFAULT_MAX_SCRIPT_BYTES: u64 = 1024 * 1024;
/// Longest script name in characters (RFC 5804 1.6 asks servers to take at least 128).
pub const MAX_SCRIPT_NAME_CHARS: usize = 128;
/// Longest script name in bytes: with `.sieve` it must fit in a 255-byte file name.
const MAX_SCRIPT_NAME_BYTES: usize = 255 - SCRIPT_SUFFIX.len();

const SCRIPT_SUFFIX: &str = ".sieve";
const SCRIPT_DIR: &str = "sieve";
const ACTIVE_LINK: &str = ".dovecot.sieve";
/// Where Pigeonhole copies a plain `~/.dovecot.sieve` before replacing it with a link.
pub const RESCUED_SCRIPT_NAME: &str = "dovecot.orig";

/// The Sieve scripts of one home directory.
#[derive(Clone, Debug)]
pub struct ScriptStore {
    /// `~/sieve`, where the scripts are.
    dir: PathBuf,
    /// `~/.dovecot.sieve`, the link to the active script.
    active_link: PathBuf,
    /// The home directory, which holds the link.
    home: PathBuf,
    max_script_bytes: u64,
}

/// One script as LISTSCRIPTS shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptEntry {
    pub name: String,
    pub active: bool,
}

/// What delivery runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveScript {
    /// The script's name, or `None` for a plain `~/.dovecot.sieve` file.
    pub name: Option<String>,
    /// The file read, for messages to the user and the log.
    pub path: PathBuf,
    pub source: String,
}

/// How much of a quota the scripts take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptUsage {
    pub scripts: usize,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The name breaks RFC 5804's rules (or has a '/', or is too long).
    #[error("invalid script name: {0}")]
    InvalidName(&'static str),
    #[error("there is no script named {0:?}")]
    NotFound(String),
    #[error("a script named {0:?} already exists")]
    AlreadyExists(String),
    /// RFC 5804 2.10: the active script cannot be deleted.
    #[error("script {0:?} is active")]
    Active(String),
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// Scripts are UTF-8 (RFC 5228 2.1).
    #[error("{} is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    /// `~/.dovecot.sieve` is neither a link nor a regular file: someone must look at it.
    #[error("{} is neither a symbolic link nor a regular file", path.display())]
    ActiveLinkUnusable { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl ScriptError {
    fn io(path: &Path, source: io::Error) -> ScriptError {
        ScriptError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checks a script name against RFC 5804 1.6 (no control characters, no U+2028/U+2029, not
/// empty) and the file system (no '/', at most [`MAX_SCRIPT_NAME_CHARS`] characters and a
/// file name's length).
///
/// # Errors
///
/// `InvalidName` saying what is wrong.
pub fn check_script_name(name: &str) -> Result<(), ScriptError> {
    if name.is_empty() {
        return Err(ScriptError::InvalidName("empty"));
    }
    if name.chars().count() > MAX_SCRIPT_NAME_CHARS || name.len() > MAX_SCRIPT_NAME_BYTES {
        return Err(ScriptError::InvalidName("too long"));
    }
    // `char::is_control` is exactly U+0000-001F, U+007F and U+0080-009F.
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(ScriptError::InvalidName("control character"));
    }
    if name.contains('/') {
        return Err(ScriptError::InvalidName("'/' is not allowed"));
    }
    Ok(())
}

impl ScriptStore {
    /// The scripts of the home directory `home` (nothing is created until a script is
    /// written).
    pub fn new(home: &Path) -> ScriptStore {
        ScriptStore {
            dir: home.join(SCRIPT_DIR),
            active_link: home.join(ACTIVE_LINK),
            home: home.to_path_buf(),
            max_script_bytes: DEFAULT_MAX_SCRIPT_BYTES,
        }
    }

    /// Reads scripts up to `max` bytes ([`ScriptError::TooLarge`] above it).
    #[must_use]
    pub fn with_max_script_bytes(mut self, max: u64) -> ScriptStore {
        self.max_script_bytes = max;
        self
    }

    /// The scripts in `~/sieve`, by name, and which one is active.
    ///
    /// # Errors
    ///
    /// `Io` when the directory or the link cannot be read.
    pub fn list(&self) -> Result<Vec<ScriptEntry>, ScriptError> {
        let active = self.active_name()?;
        let mut scripts: Vec<ScriptEntry> = self
            .script_files()?
            .into_iter()
            .map(|(name, _)| ScriptEntry {
                active: active.as_deref() == Some(name.as_str()),
                name,
            })
            .collect();
        scripts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(scripts)
    }

    /// Whether a script of this name exists.
    ///
    /// # Errors
    ///
    /// `InvalidName`; `Io` when it cannot be looked at.
    pub fn exists(&self, name: &str) -> Result<bool, ScriptError> {
        let path = self.script_path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(meta.file_type().is_file()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(ScriptError::io(&path, err)),
        }
    }

    /// A script's contents.
    ///
    /// # Errors
    ///
    /// `NotFound`, `InvalidName`, `TooLarge`, `Io`.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, ScriptError> {
        let path = self.script_path(name)?;
        match self.read_limited(&path) {
            Err(ScriptError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(ScriptError::NotFound(name.to_owned()))
            }
            other => other,
        }
    }

    /// Writes a script, replacing one of the same name (the active one stays active): the
    /// bytes go to a file in `~/sieve/tmp`, which is fsync'd and renamed into place, and the
    /// directory is fsync'd, so a reader sees the old script or the new one, never a part.
    ///
    /// # Errors
    ///
    /// `InvalidName`; `Io` when a directory cannot be made or the file written.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<(), ScriptError> {
        let path = self.script_path(name)?;
        let tmp_dir = self.dir.join("tmp");
        create_dir_all_private(&tmp_dir).map_err(|err| ScriptError::io(&tmp_dir, err))?;
        let tmp = tmp_dir.join(unique_name("sieve"));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(err) = written {
            let _ = fs::remove_file(&tmp);
            return Err(ScriptError::io(&tmp, err));
        }
        if let Err(err) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(ScriptError::io(&path, err));
        }
        sync_dir(&self.dir).map_err(|err| ScriptError::io(&self.dir, err))
    }

    /// Deletes a script; the active one is refused (RFC 5804 2.10).
    ///
    /// # Errors
    ///
    /// `Active`, `NotFound`, `InvalidName`, `Io`.
    pub fn delete(&self, name: &str) -> Result<(), ScriptError> {
        let path = self.script_path(name)?;
        if self.active_name()?.as_deref() == Some(name) {
            return Err(ScriptError::Active(name.to_owned()));
        }
        if !self.exists(name)? {
            return Err(ScriptError::NotFound(name.to_owned()));
        }
        fs::remove_file(&path).map_err(|err| ScriptError::io(&path, err))?;
        // Pigeonhole's compiled form of it, if any, is stale now.
        let _ = fs::remove_file(self.dir.join(format!("{name}.svbin")));
        sync_dir(&self.dir).map_err(|err| ScriptError::io(&self.dir, err))
    }

    /// Renames a script; when it was active, the new name is active (RFC 5804 2.11.1). The
    /// file is linked under the new name first (which fails if the name is taken), the active
    /// link moved, then the old name removed: the active link never dangles.
    ///
    /// # Errors
    ///
    /// `NotFound` (no `old`), `AlreadyExists` (`new` taken), `InvalidName`, `Io`.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), ScriptError> {
        let old_path = self.script_path(old)?;
        let new_path = self.script_path(new)?;
        if !self.exists(old)? {
            return Err(ScriptError::NotFound(old.to_owned()));
        }
        if old == new {
            return Err(ScriptError::AlreadyExists(new.to_owned()));
        }
        let was_active = self.active_name()?.as_deref() == Some(old);
        match fs::hard_link(&old_path, &new_path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ScriptError::AlreadyExists(new.to_owned()));
            }
            Err(err) => return Err(ScriptError::io(&new_path, err)),
        }
        sync_dir(&self.dir).map_err(|err| ScriptError::io(&self.dir, err))?;
        if was_active {
            self.set_active(Some(new))?;
        }
        fs::remove_file(&old_path).map_err(|err| ScriptError::io(&old_path, err))?;
        let _ = fs::remove_file(self.dir.join(format!("{old}.svbin")));
        sync_dir(&self.dir).map_err(|err| ScriptError::io(&self.dir, err))
    }

    /// Makes `name` the active script, or none with `None`. A plain `~/.dovecot.sieve` is
    /// first saved as `dovecot.orig` (see the module's documentation). The new link is made
    /// beside the old one and renamed over it, so delivery sees the old script or the new.
    ///
    /// # Errors
    ///
    /// `NotFound` (no such script), `InvalidName`, `ActiveLinkUnusable`, `Io`.
    pub fn set_active(&self, name: Option<&str>) -> Result<(), ScriptError> {
        let target = match name {
            Some(name) => {
                self.script_path(name)?;
                if !self.exists(name)? {
                    return Err(ScriptError::NotFound(name.to_owned()));
                }
                Some(Path::new(SCRIPT_DIR).join(format!("{name}{SCRIPT_SUFFIX}")))
            }
            None => None,
        };
        self.rescue_plain_active_file()?;
        match target {
            Some(target) => {
                let new_link = self
                    .home
                    .join(format!("{ACTIVE_LINK}-new.{}", unique_name("link")));
                std::os::unix::fs::symlink(&target, &new_link)
                    .map_err(|err| ScriptError::io(&new_link, err))?;
                if let Err(err) = fs::rename(&new_link, &self.active_link) {
                    let _ = fs::remove_file(&new_link);
                    return Err(ScriptError::io(&self.active_link, err));
                }
            }
            None => match fs::remove_file(&self.active_link) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(err) => return Err(ScriptError::io(&self.active_link, err)),
            },
        }
        sync_dir(&self.home).map_err(|err| ScriptError::io(&self.home, err))
    }

    /// The script delivery runs: the one `~/.dovecot.sieve` links to, or that file itself when
    /// it is a plain file; `None` when there is none (no link, a link out of `~/sieve`, or to a
    /// script that does not exist).
    ///
    /// # Errors
    ///
    /// `TooLarge`, `NotText`, `ActiveLinkUnusable`, `Io`.
    pub fn active(&self) -> Result<Option<ActiveScript>, ScriptError> {
        let (name, path) = match self.active_state()? {
            Active::None => return Ok(None),
            Active::PlainFile => (None, self.active_link.clone()),
            Active::Link(name) => {
                let path = self.script_path(&name)?;
                (Some(name), path)
            }
        };
        let bytes = match self.read_limited(&path) {
            Ok(bytes) => bytes,
            Err(ScriptError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        match String::from_utf8(bytes) {
            Ok(source) => Ok(Some(ActiveScript { name, path, source })),
            Err(_) => Err(ScriptError::NotText { path }),
        }
    }

    /// The name of the active script, if it is one of the scripts in `~/sieve`.
    ///
    /// # Errors
    ///
    /// `ActiveLinkUnusable`, `Io` when the link cannot be read.
    pub fn active_name(&self) -> Result<Option<String>, ScriptError> {
        match self.active_state()? {
            Active::Link(name) => Ok(Some(name)),
            Active::None | Active::PlainFile => Ok(None),
        }
    }

    /// How many scripts there are and their total size, for quotas.
    ///
    /// # Errors
    ///
    /// `Io` when `~/sieve` cannot be read.
    pub fn usage(&self) -> Result<ScriptUsage, ScriptError> {
        let files = self.script_files()?;
        Ok(ScriptUsage {
            scripts: files.len(),
            bytes: files.iter().map(|(_, size)| size).sum(),
        })
    }

    /// The size of a script, `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// `InvalidName`, `Io`.
    pub fn size(&self, name: &str) -> Result<Option<u64>, ScriptError> {
        let path = self.script_path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(ScriptError::io(&path, err)),
        }
    }

    fn script_path(&self, name: &str) -> Result<PathBuf, ScriptError> {
        check_script_name(name)?;
        Ok(self.dir.join(format!("{name}{SCRIPT_SUFFIX}")))
    }

    /// The regular `*.sieve` files in `~/sieve` with a valid name, and their sizes.
    fn script_files(&self) -> Result<Vec<(String, u64)>, ScriptError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(ScriptError::io(&self.dir, err)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| ScriptError::io(&self.dir, err))?;
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .and_then(|file_name| file_name.strip_suffix(SCRIPT_SUFFIX))
            else {
                continue;
            };
            if check_script_name(name).is_err() {
                continue;
            }
            // `DirEntry::metadata` does not follow links: a link is no script.
            match entry.metadata() {
                Ok(meta) if meta.file_type().is_file() => files.push((name.to_owned(), meta.len())),
                Ok(_) => {}
                // Deleted since the listing.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(ScriptError::io(&entry.path(), err)),
            }
        }
        Ok(files)
    }

    /// What `~/.dovecot.sieve` is.
    fn active_state(&self) -> Result<Active, ScriptError> {
        let meta = match fs::symlink_metadata(&self.active_link) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Active::None),
            Err(err) => return Err(ScriptError::io(&self.active_link, err)),
        };
        if meta.file_type().is_file() {
            return Ok(Active::PlainFile);
        }
        if !meta.file_type().is_symlink() {
            return Err(ScriptError::ActiveLinkUnusable {
                path: self.active_link.clone(),
            });
        }
        let target = match fs::read_link(&self.active_link) {
            Ok(target) => target,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Active::None),
            Err(err) => return Err(ScriptError::io(&self.active_link, err)),
        };
        match self.script_name_of_link(&target) {
            Some(name) => Ok(Active::Link(name)),
            None => {
                tracing::warn!(
                    link = %self.active_link.display(),
                    target = %target.display(),
                    "the active Sieve script link points out of the script directory; no script is active"
                );
                Ok(Active::None)
            }
        }
    }

    /// The script a link target names: it must be `NAME.sieve` in `~/sieve`, written relative
    /// to the home (Pigeonhole writes `sieve/NAME.sieve`) or absolute.
    fn script_name_of_link(&self, target: &Path) -> Option<String> {
        let file_name = target.file_name()?.to_str()?;
        let name = file_name.strip_suffix(SCRIPT_SUFFIX)?;
        check_script_name(name).ok()?;
        let parent = target.parent()?;
        let parent = if parent.is_absolute() {
            parent.to_path_buf()
        } else {
            self.home.join(parent)
        };
        (normalize(&parent)? == normalize(&self.dir)?).then(|| name.to_owned())
    }

    /// Pigeonhole's rescue of a plain `~/.dovecot.sieve` before it is replaced or removed.
    fn rescue_plain_active_file(&self) -> Result<(), ScriptError> {
        match self.active_state()? {
            Active::PlainFile => {}
            Active::None | Active::Link(_) => return Ok(()),
        }
        let mut source = Vec::new();
        open_message_file(&self.active_link)
            .and_then(|mut file| file.read_to_end(&mut source))
            .map_err(|err| ScriptError::io(&self.active_link, err))?;
        self.put(RESCUED_SCRIPT_NAME, &source)?;
        tracing::info!(
            from = %self.active_link.display(),
            to = %self.dir.join(format!("{RESCUED_SCRIPT_NAME}{SCRIPT_SUFFIX}")).display(),
            "moved the plain active Sieve script file into the script directory"
        );
        Ok(())
    }

    /// Reads a regular file (never through a link) of at most `max_script_bytes`.
    fn read_limited(&self, path: &Path) -> Result<Vec<u8>, ScriptError> {
        let file: File = open_message_file(path).map_err(|err| ScriptError::io(path, err))?;
        let mut bytes = Vec::new();
        file.take(self.max_script_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|err| ScriptError::io(path, err))?;
        if bytes.len() as u64 > self.max_script_bytes {
            return Err(ScriptError::TooLarge {
                path: path.to_path_buf(),
                limit: self.max_script_bytes,
            });
        }
        Ok(bytes)
    }
}

enum Active {
    None,
    PlainFile,
    /// A link to this script in `~/sieve`.
    Link(String),
}

/// `path` without `.` and `..` components, worked out on the text (as Pigeonhole's
/// `t_normpath_to`); `None` when `..` climbs above the root or a relative start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                _ => return None,
            },
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const KEEP: &str = "keep;\n";
    const JUNK: &str = "require \"fileinto\";\nfileinto \"Junk\";\n";

    fn names(store: &ScriptStore) -> Vec<(String, bool)> {
        store
            .list()
            .unwrap()
            .into_iter()
            .map(|entry| (entry.name, entry.active))
            .collect()
    }

    #[test]
    fn scripts_are_files_in_the_sieve_directory_and_the_active_one_a_relative_link() {
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path());
        assert_eq!(names(&store), vec![]);
        assert_eq!(store.active().unwrap(), None);

        store.put("junk", JUNK.as_bytes()).unwrap();
        store.put("vacation", KEEP.as_bytes()).unwrap();
        assert_eq!(
            fs::read_to_string(home.path().join("sieve/junk.sieve")).unwrap(),
            JUNK
        );
        assert_eq!(
            names(&store),
            vec![("junk".into(), false), ("vacation".into(), false)]
        );

        store.set_active(Some("junk")).unwrap();
        let link = home.path().join(".dovecot.sieve");
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("sieve/junk.sieve"));
        assert_eq!(
            names(&store),
            vec![("junk".into(), true), ("vacation".into(), false)]
        );
        let active = store.active().unwrap().unwrap();
        assert_eq!(active.name.as_deref(), Some("junk"));
        assert_eq!(active.source, JUNK);

        store.set_active(Some("vacation")).unwrap();
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("sieve/vacation.sieve")
        );
        // No temporary link or file is left behind.
        let home_entries: Vec<_> = fs::read_dir(home.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(home_entries.len(), 2, "{home_entries:?}");
        assert_eq!(
            fs::read_dir(home.path().join("sieve/tmp")).unwrap().count(),
            0
        );

        store.set_active(None).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
        assert_eq!(store.active().unwrap(), None);
        // Deactivating with nothing active is fine.
        store.set_active(None).unwrap();
    }

    #[test]
    fn put_replaces_and_the_active_script_stays_active() {
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path());
        store.put("main", KEEP.as_bytes()).unwrap();
        store.set_active(Some("main")).unwrap();
        store.put("main", JUNK.as_bytes()).unwrap();
        assert_eq!(store.get("main").unwrap(), JUNK.as_bytes());
        assert_eq!(store.active().unwrap().unwrap().source, JUNK);
    }

    #[test]
    fn the_active_script_cannot_be_deleted() {
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path());
        store.put("a", KEEP.as_bytes()).unwrap();
        store.put("b", KEEP.as_bytes()).unwrap();
        fs::write(home.path().join("sieve/b.svbin"), b"compiled").unwrap();
        store.set_active(Some("a")).unwrap();
        assert!(matches!(store.delete("a"), Err(ScriptError::Active(_))));
        store.delete("b").unwrap();
        assert!(!home.path().join("sieve/b.svbin").exists());
        assert!(matches!(store.delete("b"), Err(ScriptError::NotFound(_))));
        assert!(matches!(store.get("b"), Err(ScriptError::NotFound(_))));
        assert_eq!(names(&store), vec![("a".into(), true)]);
    }

    #[test]
    fn rename_keeps_the_link_right() {
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path());
        store.put("old", JUNK.as_bytes()).unwrap();
        store.put("other", KEEP.as_bytes()).unwrap();
        store.set_active(Some("old")).unwrap();

        assert!(matches!(
            store.rename("old", "other"),
            Err(ScriptError::AlreadyExists(_))
        ));
        assert!(matches!(
            store.rename("missing", "x"),
            Err(ScriptError::NotFound(_))
        ));
        store.rename("old", "new").unwrap();
        assert_eq!(
            names(&store),
            vec![("new".into(), true), ("other".into(), false)]
        );
        assert_eq!(
            fs::read_link(home.path().join(".dovecot.sieve")).unwrap(),
            Path::new("sieve/new.sieve")
        );
        assert_eq!(store.active().unwrap().unwrap().source, JUNK);

        // An inactive script renamed leaves the active one alone.
        store.rename("other", "renamed").unwrap();
        assert_eq!(
            names(&store),
            vec![("new".into(), true), ("renamed".into(), false)]
        );
    }

    #[test]
    fn a_plain_dovecot_sieve_file_is_the_active_script_and_is_rescued_on_activation() {
        let home = tempfile::tempdir().unwrap();
        let legacy =
            "require \"fileinto\";\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\n";
        fs::write(home.path().join(".dovecot.sieve"), legacy).unwrap();
        fs::write(home.path().join(".dovecot.svbin"), b"compiled").unwrap();
        let store = ScriptStore::new(home.path());

        // Delivery runs it; it is no listed script, and nothing is marked active.
        let active = store.active().unwrap().unwrap();
        assert_eq!(active.name, None);
        assert_eq!(active.source, legacy);
        assert_eq!(names(&store), vec![]);
        assert_eq!(store.active_name().unwrap(), None);

        store.put("new", KEEP.as_bytes()).unwrap();
        store.set_active(Some("new")).unwrap();
        assert_eq!(
            names(&store),
            vec![("dovecot.orig".into(), false), ("new".into(), true)]
        );
        assert_eq!(
            fs::read_to_string(home.path().join("sieve/dovecot.orig.sieve")).unwrap(),
            legacy
        );
        assert_eq!(store.active().unwrap().unwrap().source, KEEP);
    }

    #[test]
    fn deactivating_a_plain_file_rescues_it_too() {
        let home = tempfile::tempdir().unwrap();
        fs::write(home.path().join(".dovecot.sieve"), KEEP).unwrap();
        let store = ScriptStore::new(home.path());
        store.set_active(None).unwrap();
        assert_eq!(store.active().unwrap(), None);
        assert_eq!(names(&store), vec![("dovecot.orig".into(), false)]);
    }

    #[test]
    fn links_out_of_the_script_directory_are_no_active_script() {
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path());
        store.put("a", KEEP.as_bytes()).unwrap();
        let link = home.path().join(".dovecot.sieve");
        let elsewhere = home.path().join("elsewhere.sieve");
        fs::write(&elsewhere, JUNK).unwrap();
        symlink(&elsewhere, &link).unwrap();
        assert_eq!(store.active().unwrap(), None);
        assert_eq!(names(&store), vec![("a".into(), false)]);

        // Absolute, and with `..` that comes back: still the script directory.
        fs::remove_file(&link).unwrap();
        symlink(home.path().join("sieve/../sieve/a.sieve"), &link).unwrap();
        assert_eq!(store.active_name().unwrap().as_deref(), Some("a"));

        // To a script that does not exist.
        fs::remove_file(&link).unwrap();
        symlink("sieve/gone.sieve", &link).unwrap();
        assert_eq!(store.active().unwrap(), None);

        // Activation repairs it.
        store.set_active(Some("a")).unwrap();
        assert_eq!(store.active().unwrap().unwrap().source, KEEP);
    }

    #[test]
    fn script_files_are_never_read_through_links() {
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path());
        store.put("a", KEEP.as_bytes()).unwrap();
        let secret = home.path().join("secret");
        fs::write(&secret, "secret").unwrap();
        symlink(&secret, home.path().join("sieve/evil.sieve")).unwrap();
        assert_eq!(names(&store), vec![("a".into(), false)]);
        assert!(store.get("evil").is_err());
        assert!(matches!(
            store.set_active(Some("evil")),
            Err(ScriptError::NotFound(_))
        ));
    }

    #[test]
    fn names_follow_rfc_5804() {
        for good in ["a", "Spam filter", "über", "x.y", "..", &"n".repeat(128)] {
            check_script_name(good).unwrap();
        }
        for bad in [
            "",
            "a/b",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "c1\u{85}",
            "line\u{2028}sep",
            &"n".repeat(129),
            &"ü".repeat(128),
        ] {
            assert!(
                matches!(check_script_name(bad), Err(ScriptError::InvalidName(_))),
                "{bad:?}"
            );
        }
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path());
        assert!(matches!(
            store.put("../escape", b"keep;"),
            Err(ScriptError::InvalidName(_))
        ));
    }

    #[test]
    fn usage_counts_scripts_and_bytes_and_reads_are_bounded() {
        let home = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(home.path()).with_max_script_bytes(10);
        assert_eq!(store.usage().unwrap(), ScriptUsage::default());
        store.put("a", b"keep;").unwrap();
        store.put("b", b"discard;").unwrap();
        store.put("big", &[b'#'; 11]).unwrap();
        // Not scripts: Pigeonhole's compiled files and the temporary directory.
        fs::write(home.path().join("sieve/a.svbin"), b"xxxxxxxx").unwrap();
        assert_eq!(
            store.usage().unwrap(),
            ScriptUsage {
                scripts: 3,
                bytes: 5 + 8 + 11
            }
        );
        assert_eq!(store.size("b").unwrap(), Some(8));
        assert_eq!(store.size("c").unwrap(), None);
        assert!(matches!(
            store.get("big"),
            Err(ScriptError::TooLarge { .. })
        ));
        store.put("latin1", b"# \xe9\nkeep;").unwrap();
        store.set_active(Some("latin1")).unwrap();
        assert!(matches!(store.active(), Err(ScriptError::NotText { .. })));
    }
}
