//! [`PowerLossFs`]: an in-memory [`FileSystem`] that knows what a power cut
//! would keep, for crash tests in the spirit of SQLite's crash-test VFS.
//!
//! It tracks, besides what the processes see, what is durable: a file's
//! bytes as of its last [`WritableFile::sync`], a directory's entries as of
//! its last [`FileSystem::sync_dir`]. With [`PowerLossFs::recording`] it
//! computes after every operation the disk a power cut at that instant
//! would leave, under two [`CrashMode`]s, and keeps one [`CutPoint`] per
//! run of operations after which that disk is the same; a
//! test then reopens each with [`PowerLossFs::from_image`] and checks what
//! the program makes of it.
//!
//! A harsher model samples many disks per cut ([`PowerLossFs::sample_crash`],
//! in the spirit of the ALICE study, OSDI 2014): the file system keeps the
//! operations not yet durable in order, and a sampled crash applies any
//! subset of them, tearing each write at a block boundary or keeping only
//! some of its blocks. A [`Journal`] of a recording run replays it to any
//! operation ([`PowerLossFs::replay`]), and [`PowerLossFs::power_off_after`]
//! cuts the power of a run part way (every later operation fails), for a
//! second cut during recovery.
//!
//! Paths are absolute (`/a/b`); the root directory always exists.

mod sampled;

pub use sampled::CrashState;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use super::fs::{EntryKind, FileSystem, WritableFile};

/// What a power cut does to what was not made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashMode {
    /// Everything not synced is lost: files keep their last synced bytes
    /// (empty if never synced), directories their last synced entries.
    LoseUnsynced,
    /// Directory changes all reach the disk (as with a metadata journal),
    /// but file bytes not synced are torn: a file whose bytes changed since
    /// its last sync keeps only the first half of its current bytes.
    TearUnsynced,
}

/// The disk after a power cut: every path (relative to the root, `/`
/// separated) with its bytes, `None` for a directory.
pub type Image = BTreeMap<String, Option<Vec<u8>>>;

/// A power cut that one operation, or a run of consecutive operations
/// after which it leaves the same disk, could be followed by.
#[derive(Debug, Clone)]
pub struct CutPoint {
    /// 1-based number of the first operation after which the power is cut.
    pub operation: usize,
    /// The last operation after which a cut leaves the same disk.
    pub last_operation: usize,
    /// The operation, e.g. `sync_dir /out/exp`.
    pub description: String,
    /// How the unsynced state was treated.
    pub mode: CrashMode,
    /// What the disk holds afterwards.
    pub image: Image,
}

#[derive(Debug, Clone)]
enum Node {
    File {
        data: Vec<u8>,
        synced: Option<Vec<u8>>,
    },
    Dir {
        entries: BTreeMap<String, usize>,
        synced: BTreeMap<String, usize>,
    },
}

/// An operation not durable yet, in the order it was performed: a crash
/// may apply it or not (see [`PowerLossFs::sample_crash`]).
#[derive(Debug, Clone)]
enum Pending {
    /// `create` of an existing file cut its bytes to none.
    Truncate { node: usize },
    /// `bytes` written at `offset` of the file `node`.
    Write {
        node: usize,
        offset: usize,
        bytes: Vec<u8>,
    },
    /// Entries of directory `dir` set to a node or removed (`None`), all at
    /// once: a rename within one directory is one such operation.
    Entries {
        dir: usize,
        changes: Vec<(String, Option<usize>)>,
    },
}

impl Pending {
    fn is_data_of(&self, file: usize) -> bool {
        matches!(self, Pending::Truncate { node } | Pending::Write { node, .. } if *node == file)
    }

    fn is_entry_of(&self, directory: usize) -> bool {
        matches!(self, Pending::Entries { dir, .. } if *dir == directory)
    }
}

/// One operation as a [`Journal`] keeps it.
#[derive(Debug, Clone)]
enum Op {
    /// An operation that changes nothing (power on, a read), by its
    /// description.
    Nothing(String),
    Create(PathBuf),
    Write {
        node: usize,
        path: PathBuf,
        bytes: Vec<u8>,
    },
    Sync {
        node: usize,
        path: PathBuf,
    },
    Rename(PathBuf, PathBuf),
    SyncDir(PathBuf),
    CreateDir(PathBuf),
    Remove(PathBuf),
}

/// Every operation of a recording run ([`PowerLossFs::recording`]) with
/// the bytes it wrote: what [`PowerLossFs::replay`] performs again.
#[derive(Debug, Clone, Default)]
pub struct Journal(Vec<Op>);

impl Journal {
    /// The number of operations (the first is the power on).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no operation was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug)]
struct State {
    /// Node 0 is the root directory.
    nodes: Vec<Node>,
    operations: Vec<String>,
    /// `Some` while recording cut points.
    cuts: Option<Vec<CutPoint>>,
    /// Per mode, the hash of the last disk recorded and its cut point.
    last: HashMap<CrashMode, (u64, usize)>,
    /// The operations not durable yet, in order.
    pending: Vec<Pending>,
    /// `Some` while recording a [`Journal`].
    journal: Option<Vec<Op>>,
    /// After this many operations every further one fails.
    power_off_after: Option<usize>,
}

/// An in-memory file system that can compute the disk a power cut leaves.
#[derive(Debug)]
pub struct PowerLossFs {
    state: Mutex<State>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found", path.display()),
    )
}

fn names(path: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name.to_string_lossy().into_owned()),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: unsupported path", path.display()),
                ));
            }
        }
    }
    Ok(out)
}

impl State {
    fn lookup(&self, path: &Path) -> io::Result<Option<usize>> {
        let mut node = 0;
        for name in names(path)? {
            match &self.nodes[node] {
                Node::Dir { entries, .. } => match entries.get(&name) {
                    Some(&child) => node = child,
                    None => return Ok(None),
                },
                Node::File { .. } => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The directory holding `path`'s entry, and the entry's name.
    fn parent(&self, path: &Path) -> io::Result<(usize, String)> {
        let mut all = names(path)?;
        let name = all
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the root has no parent"))?;
        let parent: PathBuf = all.iter().collect();
        match self.lookup(&Path::new("/").join(parent))? {
            Some(dir) if matches!(self.nodes[dir], Node::Dir { .. }) => Ok((dir, name)),
            _ => Err(not_found(path)),
        }
    }

    fn entries(&mut self, dir: usize) -> &mut BTreeMap<String, usize> {
        match &mut self.nodes[dir] {
            Node::Dir { entries, .. } => entries,
            Node::File { .. } => unreachable!("parent() returns directories"),
        }
    }

    /// Fails once the power is off (see [`PowerLossFs::power_off_after`]).
    fn check_power(&self, path: &Path) -> io::Result<()> {
        match self.power_off_after {
            Some(limit) if self.operations.len() >= limit => Err(io::Error::other(format!(
                "{}: the power is off (simulated cut after operation {limit})",
                path.display()
            ))),
            _ => Ok(()),
        }
    }

    /// Performs `op`: changes what the processes see, notes what is not
    /// durable yet, counts the operation and journals it. Returns the node
    /// a `create` opened (0 otherwise).
    fn perform(&mut self, op: Op) -> io::Result<usize> {
        let (node, description) = match &op {
            Op::Nothing(description) => (0, description.clone()),
            Op::Create(path) => (
                self.create_file(path)?,
                format!("create {}", path.display()),
            ),
            Op::Write { node, path, bytes } => {
                self.write(*node, bytes);
                (
                    0,
                    format!("write {} ({} bytes)", path.display(), bytes.len()),
                )
            }
            Op::Sync { node, path } => {
                self.sync(*node);
                (0, format!("sync {}", path.display()))
            }
            Op::Rename(from, to) => {
                self.rename(from, to)?;
                (0, format!("rename {} -> {}", from.display(), to.display()))
            }
            Op::SyncDir(dir) => {
                self.sync_dir(dir)?;
                (0, format!("sync_dir {}", dir.display()))
            }
            Op::CreateDir(path) => {
                self.create_dir(path)?;
                (0, format!("create_dir {}", path.display()))
            }
            Op::Remove(path) => {
                self.remove(path)?;
                (0, format!("remove {}", path.display()))
            }
        };
        if let Some(journal) = &mut self.journal {
            journal.push(op);
        }
        self.operation(description);
        Ok(node)
    }

    fn create_file(&mut self, path: &Path) -> io::Result<usize> {
        let (dir, name) = self.parent(path)?;
        match self.entries(dir).get(&name).copied() {
            Some(node) => match &mut self.nodes[node] {
                Node::File { data, .. } => {
                    data.clear();
                    self.pending.push(Pending::Truncate { node });
                    Ok(node)
                }
                Node::Dir { .. } => Err(io::Error::other(format!(
                    "{}: is a directory",
                    path.display()
                ))),
            },
            None => {
                let node = self.nodes.len();
                self.nodes.push(Node::File {
                    data: Vec::new(),
                    synced: None,
                });
                self.link(dir, vec![(name, Some(node))]);
                Ok(node)
            }
        }
    }

    /// Sets (or removes) entries of `dir` at once, not durably.
    fn link(&mut self, dir: usize, changes: Vec<(String, Option<usize>)>) {
        let entries = self.entries(dir);
        for (name, node) in &changes {
            match node {
                Some(node) => entries.insert(name.clone(), *node),
                None => entries.remove(name),
            };
        }
        self.pending.push(Pending::Entries { dir, changes });
    }

    fn write(&mut self, node: usize, bytes: &[u8]) {
        if let Node::File { data, .. } = &mut self.nodes[node] {
            let offset = data.len();
            data.extend_from_slice(bytes);
            self.pending.push(Pending::Write {
                node,
                offset,
                bytes: bytes.to_vec(),
            });
        }
    }

    fn sync(&mut self, node: usize) {
        if let Node::File { data, synced } = &mut self.nodes[node] {
            *synced = Some(data.clone());
        }
        self.pending.retain(|p| !p.is_data_of(node));
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        let node = *self
            .entries(from_dir)
            .get(&from_name)
            .ok_or_else(|| not_found(from))?;
        if from_dir == to_dir {
            self.link(from_dir, vec![(from_name, None), (to_name, Some(node))]);
        } else {
            // Two directories: each change is durable with its own.
            self.link(from_dir, vec![(from_name, None)]);
            self.link(to_dir, vec![(to_name, Some(node))]);
        }
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        let node = self.lookup(dir)?.ok_or_else(|| not_found(dir))?;
        match &mut self.nodes[node] {
            Node::Dir { entries, synced } => *synced = entries.clone(),
            Node::File { .. } => {
                return Err(io::Error::other(format!(
                    "{}: not a directory",
                    dir.display()
                )));
            }
        }
        self.pending.retain(|p| !p.is_entry_of(node));
        Ok(())
    }

    fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        if self.entries(dir).contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", path.display()),
            ));
        }
        let node = self.nodes.len();
        self.nodes.push(Node::Dir {
            entries: BTreeMap::new(),
            synced: BTreeMap::new(),
        });
        self.link(dir, vec![(name, Some(node))]);
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        match self.entries(dir).get(&name).copied() {
            Some(node) if matches!(self.nodes[node], Node::File { .. }) => {
                self.link(dir, vec![(name, None)]);
                Ok(())
            }
            _ => Err(not_found(path)),
        }
    }

    /// The disk a power cut now would leave under `mode`.
    fn image(&self, mode: CrashMode) -> Image {
        let mut image = Image::new();
        self.collect(0, String::new(), mode, &mut image);
        image
    }

    fn collect(&self, node: usize, path: String, mode: CrashMode, out: &mut Image) {
        match &self.nodes[node] {
            Node::File { data, synced } => {
                let kept = match (mode, synced) {
                    (CrashMode::LoseUnsynced, synced) => synced.clone().unwrap_or_default(),
                    (CrashMode::TearUnsynced, Some(s)) if s == data => s.clone(),
                    (CrashMode::TearUnsynced, _) => data[..data.len() / 2].to_vec(),
                };
                out.insert(path, Some(kept));
            }
            Node::Dir { entries, synced } => {
                if !path.is_empty() {
                    out.insert(path.clone(), None);
                }
                let kept = match mode {
                    CrashMode::LoseUnsynced => synced,
                    CrashMode::TearUnsynced => entries,
                };
                for (name, &child) in kept {
                    let child_path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}/{name}")
                    };
                    self.collect(child, child_path, mode, out);
                }
            }
        }
    }

    /// Counts an operation and, when recording, the disk a cut after it
    /// would leave (a new cut point when it differs from the previous one).
    fn operation(&mut self, description: String) {
        self.operations.push(description.clone());
        let operation = self.operations.len();
        let Some(cuts) = &self.cuts else {
            return;
        };
        let mut new = Vec::new();
        let mut extended = Vec::new();
        for mode in [CrashMode::LoseUnsynced, CrashMode::TearUnsynced] {
            let image = self.image(mode);
            let bytes = serde_json::to_vec(&image).expect("images serialize");
            let hash = crate::io::content_hash(&bytes);
            match self.last.get(&mode) {
                Some(&(last, index)) if last == hash => extended.push(index),
                _ => {
                    self.last.insert(mode, (hash, cuts.len() + new.len()));
                    new.push(CutPoint {
                        operation,
                        last_operation: operation,
                        description: description.clone(),
                        mode,
                        image,
                    });
                }
            }
        }
        if let Some(cuts) = &mut self.cuts {
            for index in extended {
                cuts[index].last_operation = operation;
            }
            cuts.extend(new);
        }
    }
}

impl Default for PowerLossFs {
    fn default() -> Self {
        Self::from_image(&Image::new())
    }
}

impl PowerLossFs {
    /// An empty file system that records a [`CutPoint`] for every distinct
    /// disk a power cut after one of its operations would leave.
    pub fn recording() -> Self {
        let fs = Self::default();
        {
            let mut state = fs.lock();
            state.cuts = Some(Vec::new());
            state.journal = Some(Vec::new());
            state
                .perform(Op::Nothing("power on".into()))
                .expect("power on changes nothing");
        }
        fs
    }

    /// The file system as a power cut left it: everything in `image`, all
    /// of it durable.
    pub fn from_image(image: &Image) -> Self {
        let mut state = State {
            nodes: vec![Node::Dir {
                entries: BTreeMap::new(),
                synced: BTreeMap::new(),
            }],
            operations: Vec::new(),
            cuts: None,
            last: HashMap::new(),
            pending: Vec::new(),
            journal: None,
            power_off_after: None,
        };
        // Parents come before their children in a sorted image.
        for (path, contents) in image {
            let path = Path::new("/").join(path);
            let (dir, name) = state.parent(&path).expect("an image's parents exist");
            let node = state.nodes.len();
            state.nodes.push(match contents {
                Some(bytes) => Node::File {
                    data: bytes.clone(),
                    synced: Some(bytes.clone()),
                },
                None => Node::Dir {
                    entries: BTreeMap::new(),
                    synced: BTreeMap::new(),
                },
            });
            if let Node::Dir { entries, synced } = &mut state.nodes[dir] {
                entries.insert(name.clone(), node);
                synced.insert(name, node);
            }
        }
        Self {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cut points recorded so far (see [`PowerLossFs::recording`]).
    pub fn cut_points(&self) -> Vec<CutPoint> {
        self.lock().cuts.clone().unwrap_or_default()
    }

    /// The operations performed so far, in order.
    pub fn operations(&self) -> Vec<String> {
        self.lock().operations.clone()
    }

    /// The operations of this recording run with the bytes they wrote
    /// (empty unless made with [`PowerLossFs::recording`]).
    pub fn journal(&self) -> Journal {
        Journal(self.lock().journal.clone().unwrap_or_default())
    }

    /// Performs the operations of `journal` from this file system's next
    /// one up to `operations` in all: on [`PowerLossFs::default`], the
    /// recording run's file system as it was after its operation
    /// `operations` (what a cut there finds). An error when it is already
    /// past `operations` or the journal is shorter.
    pub fn replay(&self, journal: &Journal, operations: usize) -> io::Result<()> {
        let mut state = self.lock();
        let done = state.operations.len();
        let ops = journal.0.get(done..operations).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot replay to operation {operations}: {done} done, {} journaled",
                    journal.len()
                ),
            )
        })?;
        for op in ops {
            state.perform(op.clone())?;
        }
        Ok(())
    }

    /// This file system with its power cut after `operations` operations
    /// (counted from its creation): every later operation fails with an
    /// I/O error and changes nothing, so the state left is the one at the
    /// cut (see [`PowerLossFs::sample_crash`]).
    pub fn power_off_after(self, operations: usize) -> Self {
        self.lock().power_off_after = Some(operations);
        self
    }

    /// Whether the power is off (see [`PowerLossFs::power_off_after`]).
    pub fn is_powered_off(&self) -> bool {
        let state = self.lock();
        state
            .power_off_after
            .is_some_and(|limit| state.operations.len() >= limit)
    }

    /// How many operations are not durable yet (what a sampled crash
    /// chooses among).
    pub fn pending_operations(&self) -> usize {
        self.lock().pending.len()
    }

    /// What the processes see now (not only what is durable).
    pub fn current(&self) -> Image {
        let state = self.lock();
        let mut image = Image::new();
        // A power cut that keeps every directory change and finds every
        // file synced is what is visible now.
        let mut visible = State {
            nodes: state.nodes.clone(),
            operations: Vec::new(),
            cuts: None,
            last: HashMap::new(),
            pending: Vec::new(),
            journal: None,
            power_off_after: None,
        };
        for node in &mut visible.nodes {
            if let Node::File { data, synced } = node {
                *synced = Some(data.clone());
            }
        }
        visible.collect(0, String::new(), CrashMode::TearUnsynced, &mut image);
        image
    }
}

struct SimFile<'a> {
    fs: &'a PowerLossFs,
    node: usize,
    path: PathBuf,
}

impl WritableFile for SimFile<'_> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.fs.lock();
        state.check_power(&self.path)?;
        state.perform(Op::Write {
            node: self.node,
            path: self.path.clone(),
            bytes: bytes.to_vec(),
        })?;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.fs.lock();
        state.check_power(&self.path)?;
        state.perform(Op::Sync {
            node: self.node,
            path: self.path.clone(),
        })?;
        Ok(())
    }
}

impl PowerLossFs {
    /// Performs `op` (on `path`) unless the power is off.
    fn perform(&self, path: &Path, op: Op) -> io::Result<usize> {
        let mut state = self.lock();
        state.check_power(path)?;
        state.perform(op)
    }
}

impl FileSystem for PowerLossFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile + '_>> {
        let node = self.perform(path, Op::Create(path.to_path_buf()))?;
        Ok(Box::new(SimFile {
            fs: self,
            node,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.perform(from, Op::Rename(from.to_path_buf(), to.to_path_buf()))?;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.perform(dir, Op::SyncDir(dir.to_path_buf()))?;
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.perform(path, Op::CreateDir(path.to_path_buf()))?;
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.perform(path, Op::Remove(path.to_path_buf()))?;
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.lock();
        state.check_power(path)?;
        let bytes = match state.lookup(path)?.map(|n| &state.nodes[n]) {
            Some(Node::File { data, .. }) => data.clone(),
            _ => return Err(not_found(path)),
        };
        state.perform(Op::Nothing(format!("read {}", path.display())))?;
        Ok(bytes)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(String, EntryKind)>> {
        let mut state = self.lock();
        state.check_power(dir)?;
        let listing = match state.lookup(dir)?.map(|n| &state.nodes[n]) {
            Some(Node::Dir { entries, .. }) => entries
                .iter()
                .map(|(name, &node)| {
                    let kind = match state.nodes[node] {
                        Node::File { .. } => EntryKind::File,
                        Node::Dir { .. } => EntryKind::Dir,
                    };
                    (name.clone(), kind)
                })
                .collect(),
            _ => return Err(not_found(dir)),
        };
        state.perform(Op::Nothing(format!("read_dir {}", dir.display())))?;
        Ok(listing)
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        let state = self.lock();
        state.check_power(path)?;
        Ok(state.lookup(path)?.map(|n| match state.nodes[n] {
            Node::File { .. } => EntryKind::File,
            Node::Dir { .. } => EntryKind::Dir,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::write_atomic_in;

    #[test]
    fn a_cut_keeps_only_what_was_synced() {
        let fs = PowerLossFs::recording();
        fs.create_dir(Path::new("/d")).unwrap();
        let mut f = fs.create(Path::new("/d/a")).unwrap();
        f.write_all(b"hello").unwrap();
        drop(f);
        // Not synced: lost entirely, or torn with the entry kept.
        let lose = fs.lock().image(CrashMode::LoseUnsynced);
        assert!(lose.is_empty(), "{lose:?}");
        let tear = fs.lock().image(CrashMode::TearUnsynced);
        assert_eq!(tear.get("d/a"), Some(&Some(b"he".to_vec())));
        fs.sync_dir(Path::new("/")).unwrap();
        write_atomic_in(&fs, Path::new("/d/b"), b"durable").unwrap();
        // /d/b's entry was synced in /d, but /d's own entry was synced
        // before /d/b existed: both survive a cut.
        let lose = fs.lock().image(CrashMode::LoseUnsynced);
        assert_eq!(lose.get("d/b"), Some(&Some(b"durable".to_vec())));
        assert_eq!(
            lose.get("d/a"),
            Some(&Some(Vec::new())),
            "a's entry was synced with d, its bytes were not"
        );
        assert!(fs.cut_points().len() > 4);
        let reopened = PowerLossFs::from_image(&lose);
        assert_eq!(reopened.read(Path::new("/d/b")).unwrap(), b"durable");
    }
}
