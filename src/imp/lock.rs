//! Locks of an experiment directory, so that several processes (jobs of a
//! sweep on a cluster, or a user starting a run twice) can share one
//! experiment root safely.
//!
//! # Granularity
//!
//! A sweep trains the controls and stability copies of level `L` as jobs of
//! their own while the main line trains level `L + 1` in the same experiment
//! directory, so one lock for the whole directory would serialize them (or
//! turn them away). There are two kinds of lock instead, both OS file locks
//! ([`File::try_lock`]) under `<experiment>/locks/`:
//!
//! - **A level lock** per level directory (`locks/main.level_03.lock`, ...),
//!   taken with [`FileLock::try_acquire`] by the process that writes the
//!   level (its mask, progress checkpoints, final files) and held until the
//!   level is finished. A second writer of the same level gets
//!   [`LockError::Held`], which names the holder (host, pid, when it took
//!   the lock) from the `.holder` file written beside the lock.
//! - **The experiment lock** (`locks/experiment.lock`), taken with
//!   [`FileLock::acquire`] (waiting) for the moment of each store update:
//!   writing a file and recording it in `manifest.json` (read, modified and
//!   written back under the lock, so records of other processes are kept),
//!   removing one, and opening the experiment (creating `config.json`,
//!   deleting temporary files of interrupted writes: every store write
//!   happens under this lock, so a temporary file seen while holding it
//!   belongs to a dead writer). The shared rewind checkpoint is written by
//!   the main line's level 0 only, which its level lock makes unique.
//!
//! Readers (reports, the stability analysis of finished levels, ticket
//! export) take no lock: every file is replaced atomically, so a reader sees
//! a whole old or a whole new file.
//!
//! The OS releases a lock when its process ends, however it ends (`kill
//! -9` included), so a dead holder's lock is taken over by the next writer
//! without any staleness rule; its `.holder` file is simply overwritten.
//! On network file systems, file locks work where the file system supports
//! them (NFSv4, Lustre and GPFS with their default `flock` settings).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Who holds a lock: written beside the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Host name of the holder's machine.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// When the holder took the lock (seconds since the Unix epoch).
    pub since_unix: u64,
}

impl LockHolder {
    /// This process, now.
    pub fn current() -> Self {
        Self {
            host: host_name(),
            pid: std::process::id(),
            since_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {} (since Unix time {})",
            self.pid, self.host, self.since_unix
        )
    }
}

/// Errors of taking a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error("{} is being written by another process ({}); wait for it to finish, or stop it", .path.display(), .holder.as_ref().map_or_else(|| "holder unknown".to_string(), |h| h.to_string()))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder, as it recorded itself (`None` while it is still
        /// writing its record, or if the record cannot be read).
        holder: Option<LockHolder>,
    },
    /// The lock file could not be created or locked.
    #[error("lock {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// A held OS file lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock at `path` if no other process (or other handle in
    /// this process) holds it, and records this process as its holder in
    /// `<path>.holder`. A held lock gives [`LockError::Held`] naming the
    /// holder.
    pub fn try_acquire(path: &Path) -> Result<Self, LockError> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    holder: Self::holder(path),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(LockError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let lock = Self {
            file,
            path: path.to_path_buf(),
        };
        lock.record_holder()?;
        Ok(lock)
    }

    /// Takes the lock at `path`, waiting while another process holds it.
    /// For short critical sections (the experiment lock); records no holder.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let file = open_lock_file(path)?;
        file.lock().map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The holder recorded beside the lock at `path`, if readable. The
    /// record may be that of a holder that has since ended: only a failed
    /// [`try_acquire`](Self::try_acquire) says the lock is held.
    pub fn holder(path: &Path) -> Option<LockHolder> {
        let bytes = fs::read(holder_path(path)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record_holder(&self) -> Result<(), LockError> {
        let path = holder_path(&self.path);
        let json = serde_json::to_vec(&LockHolder::current()).expect("holder serializes");
        // Written in place (not through a temporary file): only the holder
        // writes it, and a reader that sees it half written reports the
        // holder as unknown.
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&path)?;
            file.write_all(&json)
        };
        write().map_err(|source| LockError::Io { path, source })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // The holder record goes first (while the lock is still held, so it
        // cannot be a successor's); a killed holder leaves it behind, and
        // the next holder overwrites it. Closing the file releases the lock
        // too; unlocking makes the release independent of when the handle
        // is closed.
        let _ = fs::remove_file(holder_path(&self.path));
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)
}

/// `<lock>.holder`.
fn holder_path(lock: &Path) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(".holder");
    PathBuf::from(name)
}

/// This machine's host name (`/proc/sys/kernel/hostname`, `$HOSTNAME` or
/// `%COMPUTERNAME%`), or `unknown`.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
