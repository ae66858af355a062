//! [`FileSystem`]: the file operations the experiment store performs, behind
//! one small trait, so that a test can replace the disk (e.g. with
//! [`PowerLossFs`](super::power_loss::PowerLossFs)).
//!
//! The operations are the ones durability is made of: a file's bytes become
//! durable with [`WritableFile::sync`], a new, renamed or removed directory
//! entry with [`FileSystem::sync_dir`] of its parent. [`RealFs`] is the
//! operating system's file system and the default everywhere.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (symbolic link, device, ...).
    Other,
}

/// A file open for writing (see [`FileSystem::create`]).
pub trait WritableFile {
    /// Appends every byte of `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes the bytes written so far durable (`fsync`).
    fn sync(&mut self) -> io::Result<()>;
}

/// The file operations of the experiment store. Paths are absolute or
/// relative to the process's working directory, as for [`std::fs`].
pub trait FileSystem: fmt::Debug + Send + Sync {
    /// Creates (or truncates) the file at `path` for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile + '_>>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of directory `dir` durable (new, renamed and
    /// removed names): `fsync` of the directory.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates the directory `path` (its parent must exist).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Reads the whole file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The names and kinds of the entries of directory `dir`, sorted by name.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(String, EntryKind)>>;
    /// What is at `path` (`None`: nothing), following symbolic links.
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>>;
    /// Whether the store may take OS file locks ([`crate::imp::lock`]) at
    /// this file system's paths so that several processes can share an
    /// experiment: true for the real file system; a simulated one serves a
    /// single process and takes none.
    fn supports_locks(&self) -> bool {
        false
    }
}

/// The operating system's file system ([`std::fs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RealFs;

struct RealFile(File);

impl WritableFile for RealFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

fn kind_of(file_type: fs::FileType) -> EntryKind {
    if file_type.is_file() {
        EntryKind::File
    } else if file_type.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::Other
    }
}

impl FileSystem for RealFs {
    fn supports_locks(&self) -> bool {
        true
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile + '_>> {
        Ok(Box::new(RealFile(File::create(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_real_dir(dir)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(String, EntryKind)>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            entries.push((name, kind_of(entry.file_type()?)));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(kind_of(meta.file_type()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `fsync` of a directory. On Unix a failure is an error (the entries it
/// was to persist may be lost); elsewhere directories cannot be opened for
/// syncing and renames are persisted by the file system itself.
#[cfg(unix)]
fn sync_real_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_real_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// A shared [`FileSystem`]: what [`RunOptions`](crate::imp::RunOptions) and
/// the experiment store hold. Defaults to [`RealFs`]; two handles are equal
/// when they share one file system.
#[derive(Clone)]
pub struct FsHandle(pub Arc<dyn FileSystem>);

impl FsHandle {
    /// A handle on `fs`.
    pub fn new(fs: impl FileSystem + 'static) -> Self {
        Self(Arc::new(fs))
    }

    /// The file system.
    pub fn fs(&self) -> &dyn FileSystem {
        &*self.0
    }
}

/// The one handle on [`RealFs`] that every default handle shares.
static REAL_FS: std::sync::LazyLock<Arc<dyn FileSystem>> =
    std::sync::LazyLock::new(|| Arc::new(RealFs));

impl Default for FsHandle {
    /// The real file system (one shared handle, so defaults compare equal).
    fn default() -> Self {
        Self(REAL_FS.clone())
    }
}

impl fmt::Debug for FsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for FsHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The directory a path's entry lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and every missing ancestor, each made durable in its
/// parent (`sync_dir` of the parent after each creation).
pub fn create_dir_all_durable(fs: &dyn FileSystem, dir: &Path) -> io::Result<()> {
    match fs.kind(dir)? {
        Some(EntryKind::Dir) => return Ok(()),
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file is in the way of a directory",
            ));
        }
        None => {}
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all_durable(fs, parent)?;
    }
    match fs.create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    fs.sync_dir(parent_dir(dir))
}
