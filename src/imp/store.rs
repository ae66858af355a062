//! The experiment directory: atomic files with a checksummed manifest.
//!
//! Every file of an experiment is written through [`ExperimentStore::write`]:
//! atomically (temporary file, fsync, rename), then recorded with its size
//! and hash ([`content_hash`], XXH3-64) in `manifest.json` (itself written
//! atomically). Reading goes
//! through [`ExperimentStore::read`], which refuses a file whose bytes no
//! longer match the manifest and names it.
//!
//! A process killed mid-write can leave a temporary file behind (see
//! [`crate::io::write_atomic`]); opening the experiment deletes such files.
//! A recorded file that is missing when the experiment is opened is
//! forgotten, so that deleting a file that fails its checksum has it
//! recomputed.
//!
//! Every operation goes through the store's [`FileSystem`] (the real one
//! unless [`ExperimentStore::open_in`] is given another), and a file is
//! recorded only once it is durable: its bytes and its directory entry are
//! synced, and so is every directory above it up to the experiment's
//! parent, so that a power cut cannot lose a file the manifest records.
//!
//! Several processes may share an experiment directory (see
//! [`lock`](super::lock)): each store update happens under the experiment
//! lock and merges into the manifest on disk, and a level is written by the
//! one process that holds its level lock ([`ExperimentStore::lock_level`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lock::{FileLock, LockError};
use crate::io::{
    EntryKind, FileSystem, FsHandle, checksum, content_hash, create_dir_all_durable,
    is_temporary_file_name, parent_dir, write_atomic_in,
};

const MANIFEST: &str = super::Layout::MANIFEST;
const CONFIG: &str = super::Layout::CONFIG;

/// Errors of the experiment directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file's bytes do not match the manifest (edited, truncated, corrupted).
    #[error(
        "{path} fails its checksum (expected {expected_bytes} bytes, {expected_hash}; found {actual_bytes} bytes, {actual_hash}): it was modified, corrupted or replaced; delete it to have it recomputed"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Size recorded in the manifest.
        expected_bytes: u64,
        /// Hash recorded in the manifest (`xxh3 <hex>`).
        expected_hash: String,
        /// Size found.
        actual_bytes: u64,
        /// Hash found.
        actual_hash: String,
    },
    /// A file the manifest lists is missing, or a file is not in the manifest.
    #[error("{path} is not recorded in the experiment manifest or is missing")]
    NotRecorded {
        /// The file.
        path: PathBuf,
    },
    /// The manifest itself cannot be parsed.
    #[error("{path} is not a valid manifest: {reason}")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// The directory holds an experiment with another configuration.
    #[error(
        "{path} holds an experiment with a different configuration; differing settings: {}",
        differences.join(", ")
    )]
    ConfigMismatch {
        /// The experiment directory.
        path: PathBuf,
        /// Dotted names of the settings that differ, with both values.
        differences: Vec<String>,
    },
    /// Another process writes the same part of the experiment.
    #[error(transparent)]
    Locked(LockError),
}

impl From<LockError> for StoreError {
    /// A lock held by another process is [`StoreError::Locked`]; a lock file
    /// that cannot be created or locked (an unwritable or full directory) is
    /// the I/O error it is, naming the lock file.
    fn from(error: LockError) -> Self {
        match error {
            LockError::Io { path, source } => Self::Io { path, source },
            held => Self::Locked(held),
        }
    }
}

/// One file's record in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Size in bytes.
    pub bytes: u64,
    /// [`content_hash`] (XXH3-64) of the contents, 16 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xxh3: Option<String>,
    /// CRC-32 of the contents: what manifests recorded before `xxh3`; still
    /// checked when a record has nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<u32>,
}

impl FileRecord {
    /// The record of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.len() as u64,
            xxh3: Some(format!("{:016x}", content_hash(bytes))),
            crc32: None,
        }
    }

    /// What the record's hash says about `bytes`: `(expected, found)` as
    /// `name:value` text, equal when they match.
    fn compare(&self, bytes: &[u8]) -> (String, String) {
        match (&self.xxh3, self.crc32) {
            (Some(hash), _) => (
                format!("xxh3 {hash}"),
                format!("xxh3 {:016x}", content_hash(bytes)),
            ),
            (None, Some(crc)) => (
                format!("crc32 {crc:08x}"),
                format!("crc32 {:08x}", checksum(bytes)),
            ),
            (None, None) => ("no hash".into(), "no hash".into()),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, FileRecord>,
}

/// An experiment directory.
#[derive(Debug)]
pub struct ExperimentStore {
    root: PathBuf,
    manifest: Manifest,
    fs: FsHandle,
    /// Directories whose entry in their parent this process has synced.
    durable_dirs: BTreeSet<PathBuf>,
    /// Level locks held by this store, by level directory.
    level_locks: BTreeMap<String, FileLock>,
}

impl ExperimentStore {
    /// Opens the experiment at `root`, creating it with `config` if it does
    /// not exist. An existing experiment must have been created with the same
    /// configuration: otherwise the differing settings are named.
    pub fn open(root: impl AsRef<Path>, config: &serde_json::Value) -> Result<Self, StoreError> {
        Self::open_normalized(root, config, |stored| stored)
    }

    /// [`ExperimentStore::open`], passing the stored configuration through
    /// `normalize` before comparing (e.g. a parse into the configuration type
    /// and back, so that options added later with a default compare equal).
    pub fn open_normalized(
        root: impl AsRef<Path>,
        config: &serde_json::Value,
        normalize: impl FnOnce(serde_json::Value) -> serde_json::Value,
    ) -> Result<Self, StoreError> {
        Self::open_in(FsHandle::default(), root, config, normalize)
    }

    /// [`ExperimentStore::open_normalized`] on the file system `fs`: every
    /// file operation of the store goes through it.
    pub fn open_in(
        fs: FsHandle,
        root: impl AsRef<Path>,
        config: &serde_json::Value,
        normalize: impl FnOnce(serde_json::Value) -> serde_json::Value,
    ) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let files = fs.fs();
        create_dir_all_durable(files, &root).map_err(io(&root))?;
        // The experiment directory may have been made by an interrupted
        // process that never synced its entry.
        files.sync_dir(parent_dir(&root)).map_err(io(&root))?;
        let _experiment = lock_experiment(files, &root)?;
        remove_temporary_files(files, &root)?;
        let manifest = load_manifest(files, &root)?;
        let mut durable_dirs = BTreeSet::new();
        durable_dirs.insert(root.clone());
        let mut store = Self {
            root,
            manifest,
            fs,
            durable_dirs,
            level_locks: BTreeMap::new(),
        };
        if store.manifest.files.contains_key(CONFIG) {
            let stored: serde_json::Value =
                serde_json::from_slice(&store.read(CONFIG)?).map_err(|e| {
                    StoreError::BadManifest {
                        path: store.root.join(CONFIG),
                        reason: e.to_string(),
                    }
                })?;
            let stored = normalize(stored);
            let mut differences = Vec::new();
            diff_values("", &stored, config, &mut differences);
            if !differences.is_empty() {
                return Err(StoreError::ConfigMismatch {
                    path: store.root.clone(),
                    differences,
                });
            }
        } else {
            let text = serde_json::to_vec_pretty(config).expect("JSON values serialize");
            store.write_locked(CONFIG, &text)?;
        }
        Ok(store)
    }

    /// The experiment directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a file of the experiment.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Whether `relative` was written and recorded.
    pub fn contains(&self, relative: &str) -> bool {
        self.manifest.files.contains_key(relative)
    }

    /// Writes a file atomically and records its checksum.
    pub fn write(&mut self, relative: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let _experiment = lock_experiment(self.fs.fs(), &self.root)?;
        self.write_locked(relative, bytes)
    }

    /// [`write`](Self::write) for a caller that holds the experiment lock.
    fn write_locked(&mut self, relative: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.root.join(relative);
        self.make_durable_dir(parent_dir(&path))?;
        write_atomic_in(self.fs.fs(), &path, bytes).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let record = FileRecord::of(bytes);
        self.update_manifest(|m| {
            m.files.insert(relative.to_string(), record);
        })
    }

    /// Reads a recorded file, verifying its size and checksum.
    pub fn read(&self, relative: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.root.join(relative);
        let record = self
            .manifest
            .files
            .get(relative)
            .ok_or_else(|| StoreError::NotRecorded { path: path.clone() })?;
        let bytes = self
            .fs
            .fs()
            .read(&path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => StoreError::NotRecorded { path: path.clone() },
                _ => StoreError::Io {
                    path: path.clone(),
                    source,
                },
            })?;
        let (expected_hash, actual_hash) = record.compare(&bytes);
        if bytes.len() as u64 != record.bytes || expected_hash != actual_hash {
            return Err(StoreError::Checksum {
                path,
                expected_bytes: record.bytes,
                expected_hash,
                actual_bytes: bytes.len() as u64,
                actual_hash,
            });
        }
        Ok(bytes)
    }

    /// Removes a file and its record (missing files are fine).
    pub fn remove(&mut self, relative: &str) -> Result<(), StoreError> {
        let path = self.root.join(relative);
        let _experiment = lock_experiment(self.fs.fs(), &self.root)?;
        self.refresh()?;
        if self.manifest.files.contains_key(relative) {
            self.update_manifest(|m| {
                m.files.remove(relative);
            })?;
        }
        match self.fs.fs().remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// The file system the store works on.
    pub fn file_system(&self) -> &FsHandle {
        &self.fs
    }

    /// Creates `dir` (inside the experiment) if needed and makes its entry,
    /// and every entry above it up to the experiment directory, durable
    /// (once per process and directory: one made by an interrupted process
    /// may exist without being durable).
    fn make_durable_dir(&mut self, dir: &Path) -> Result<(), StoreError> {
        if self.durable_dirs.contains(dir) || !dir.starts_with(&self.root) {
            return Ok(());
        }
        self.make_durable_dir(parent_dir(dir))?;
        let files = self.fs.fs();
        create_dir_all_durable(files, dir)
            .and_then(|()| files.sync_dir(parent_dir(dir)))
            .map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        self.durable_dirs.insert(dir.to_path_buf());
        Ok(())
    }

    /// Checks every recorded file; returns the first that fails.
    pub fn verify_all(&self) -> Result<(), StoreError> {
        self.verify_under("")
    }

    /// Checks every recorded file whose relative path starts with `prefix`
    /// (e.g. `main/level_02/`); returns the first that fails.
    pub fn verify_under(&self, prefix: &str) -> Result<(), StoreError> {
        for relative in self.manifest.files.keys() {
            if relative.starts_with(prefix) {
                self.read(relative)?;
            }
        }
        Ok(())
    }

    /// Opens an existing experiment for reading only: no lock, no file
    /// written or deleted (for reports and the analysis of finished levels
    /// while other processes write the experiment).
    pub fn open_read_only(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_read_only_in(FsHandle::default(), root)
    }

    /// [`ExperimentStore::open_read_only`] on the file system `fs`.
    pub fn open_read_only_in(fs: FsHandle, root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        let config = root.join(CONFIG);
        if !matches!(fs.fs().kind(&config), Ok(Some(EntryKind::File))) {
            return Err(StoreError::NotRecorded { path: config });
        }
        let manifest = load_manifest(fs.fs(), &root)?;
        Ok(Self {
            root,
            manifest,
            fs,
            durable_dirs: BTreeSet::new(),
            level_locks: BTreeMap::new(),
        })
    }

    /// Reads the manifest again from disk, to see the files other processes
    /// recorded since this store read it.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        self.manifest = load_manifest(self.fs.fs(), &self.root)?;
        Ok(())
    }

    /// Takes the lock of the level directory `level_dir` (e.g.
    /// `main/level_03`) for this store, unless it holds it already, then
    /// [`refresh`](Self::refresh)es the manifest. Another process holding it
    /// gives [`StoreError::Locked`] naming that process.
    pub fn lock_level(&mut self, level_dir: &str) -> Result<(), StoreError> {
        if self.fs.fs().supports_locks() && !self.level_locks.contains_key(level_dir) {
            let path = self.root.join(super::Layout::level_lock(level_dir));
            let lock = FileLock::try_acquire(&path)?;
            self.level_locks.insert(level_dir.to_string(), lock);
        }
        self.refresh()
    }

    /// Releases the lock of `level_dir` if this store holds it.
    pub fn unlock_level(&mut self, level_dir: &str) {
        self.level_locks.remove(level_dir);
    }

    /// Re-reads the manifest on disk, applies `change` and writes it back,
    /// keeping the records of other processes. The caller holds the
    /// experiment lock.
    fn update_manifest(&mut self, change: impl FnOnce(&mut Manifest)) -> Result<(), StoreError> {
        self.refresh()?;
        change(&mut self.manifest);
        self.save_manifest()
    }

    fn save_manifest(&self) -> Result<(), StoreError> {
        let path = self.root.join(MANIFEST);
        let text = serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes");
        write_atomic_in(self.fs.fs(), &path, &text)
            .map_err(|source| StoreError::Io { path, source })
    }
}

/// Takes the experiment lock of the experiment at `root` (waiting), on a
/// file system with OS locks ([`FileSystem::supports_locks`]; a simulated
/// one serves a single process and takes none).
fn lock_experiment(fs: &dyn FileSystem, root: &Path) -> Result<Option<FileLock>, StoreError> {
    if !fs.supports_locks() {
        return Ok(None);
    }
    Ok(Some(FileLock::acquire(
        &root.join(super::Layout::EXPERIMENT_LOCK),
    )?))
}

/// The manifest on disk (empty when there is none yet), without the records
/// of files that were deleted: a user who deletes a file has it recomputed.
/// The store itself never leaves a record without its file: files are
/// written before they are recorded and forgotten before they are deleted.
fn load_manifest(fs: &dyn FileSystem, root: &Path) -> Result<Manifest, StoreError> {
    let path = root.join(MANIFEST);
    let mut manifest: Manifest = match fs.read(&path) {
        Ok(text) => serde_json::from_slice(&text).map_err(|e| StoreError::BadManifest {
            path: path.clone(),
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    manifest
        .files
        .retain(|relative, _| matches!(fs.kind(&root.join(relative)), Ok(Some(EntryKind::File))));
    Ok(manifest)
}

/// Deletes the temporary files of interrupted writes under `dir`.
fn remove_temporary_files(fs: &dyn FileSystem, dir: &Path) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    for (name, kind) in fs.read_dir(dir).map_err(io(dir))? {
        let path = dir.join(&name);
        if kind == EntryKind::Dir {
            remove_temporary_files(fs, &path)?;
        } else if kind == EntryKind::File && is_temporary_file_name(&name) {
            match fs.remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::Io { path, source: e });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Lists the leaves where two JSON values differ, as `name: old -> new`.
fn diff_values(
    prefix: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_values(&name, x, y, out),
                    (x, y) => out.push(format!(
                        "{name}: {} -> {}",
                        x.map_or("(absent)".into(), Value::to_string),
                        y.map_or("(absent)".into(), Value::to_string)
                    )),
                }
            }
        }
        (a, b) if a != b => out.push(format!(
            "{}: {a} -> {b}",
            if prefix.is_empty() { "(root)" } else { prefix }
        )),
        _ => {}
    }
}
