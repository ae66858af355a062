//! Crash states sampled from the operations not durable yet.
//!
//! A real file system may write back what was not synced in any order: it
//! loses, keeps or tears each unsynced write independently and may apply a
//! later directory change (a rename, a new file) without an earlier data
//! write, unless an `fsync` ordered them: what a file's `fsync` or a
//! directory's `fsync` covered is durable before anything that follows.
//! [`PowerLossFs::sample_crash`] draws one such disk: the durable state, plus
//! any subset of the pending operations applied in their order, each data
//! write whole, cut at a block boundary (the file ends there), or with only
//! some of its blocks written (the others keep what the disk held, zeros
//! past the old end).

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{Image, Node, Pending, PowerLossFs, State};

/// The block sizes a torn write is cut at (a sector, a page).
const BLOCKS: [usize; 2] = [512, 4096];

/// One sampled disk after a power cut, and how it was drawn.
#[derive(Debug, Clone)]
pub struct CrashState {
    /// The seed it was drawn with (the same seed on the same state draws
    /// the same disk).
    pub seed: u64,
    /// What the disk holds.
    pub image: Image,
    /// The operations that were not durable at the cut.
    pub pending: usize,
    /// Of them, those applied whole.
    pub applied: usize,
    /// Data writes applied in part (cut at a block boundary, or some
    /// blocks only).
    pub torn: usize,
    /// The block size of the tears (512 or 4096 bytes).
    pub block: usize,
}

impl PowerLossFs {
    /// A disk a power cut now could leave, drawn with `seed`: what is
    /// durable, plus a random subset of the operations that are not (each
    /// state draws the probability of keeping one, so that some states keep
    /// almost nothing and others almost everything), each data write possibly
    /// torn (see the module docs of `power_loss::sampled`).
    pub fn sample_crash(&self, seed: u64) -> CrashState {
        let state = self.lock();
        let mut rng = StdRng::seed_from_u64(seed);
        let keep: f64 = rng.random_range(0.0..=1.0);
        let block = BLOCKS[rng.random_range(0..BLOCKS.len())];
        let mut disk = Disk::durable(&state);
        let (mut applied, mut torn) = (0, 0);
        for op in &state.pending {
            if !rng.random_bool(keep) {
                continue;
            }
            match op {
                Pending::Truncate { node } => {
                    disk.files.entry(*node).or_default().clear();
                    applied += 1;
                }
                Pending::Entries { dir, changes } => {
                    let entries = disk.dirs.entry(*dir).or_default();
                    for (name, node) in changes {
                        match node {
                            Some(node) => entries.insert(name.clone(), *node),
                            None => entries.remove(name),
                        };
                    }
                    applied += 1;
                }
                Pending::Write {
                    node,
                    offset,
                    bytes,
                } => {
                    let file = disk.files.entry(*node).or_default();
                    if write(file, *offset, bytes, block, &mut rng) {
                        torn += 1;
                    } else {
                        applied += 1;
                    }
                }
            }
        }
        CrashState {
            seed,
            image: disk.image(&state),
            pending: state.pending.len(),
            applied,
            torn,
            block,
        }
    }
}

/// Writes `bytes` at `offset` of `file`, whole or torn at a `block`
/// boundary; returns whether it was torn.
fn write(file: &mut Vec<u8>, offset: usize, bytes: &[u8], block: usize, rng: &mut StdRng) -> bool {
    let end = offset + bytes.len();
    // The block boundaries strictly inside the write.
    let boundaries: Vec<usize> = (offset / block + 1..)
        .map(|b| b * block)
        .take_while(|&b| b < end)
        .collect();
    match (boundaries.is_empty(), rng.random_range(0..3)) {
        (true, _) | (false, 0) => {
            put(file, offset, bytes);
            false
        }
        (false, 1) => {
            // The file ends at a boundary: the rest never reached the disk.
            let cut = boundaries[rng.random_range(0..boundaries.len())];
            put(file, offset, &bytes[..cut - offset]);
            true
        }
        _ => {
            // The file's size reached the disk, some of its blocks did not.
            if file.len() < end {
                file.resize(end, 0);
            }
            let starts = std::iter::once(offset).chain(boundaries.iter().copied());
            let stops = boundaries.iter().copied().chain(std::iter::once(end));
            for (start, stop) in starts.zip(stops) {
                if rng.random_bool(0.5) {
                    put(file, start, &bytes[start - offset..stop - offset]);
                }
            }
            true
        }
    }
}

/// Writes `bytes` at `offset` of `file` (zeros fill a gap before it).
fn put(file: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if file.len() < end {
        file.resize(end, 0);
    }
    file[offset..end].copy_from_slice(bytes);
}

/// The disk being drawn: bytes of files, entries of directories, by node.
struct Disk {
    files: HashMap<usize, Vec<u8>>,
    dirs: HashMap<usize, BTreeMap<String, usize>>,
}

impl Disk {
    /// What is durable (a file never synced is empty).
    fn durable(state: &State) -> Self {
        let mut disk = Disk {
            files: HashMap::new(),
            dirs: HashMap::new(),
        };
        for (n, node) in state.nodes.iter().enumerate() {
            match node {
                Node::File { synced, .. } => {
                    disk.files.insert(n, synced.clone().unwrap_or_default());
                }
                Node::Dir { synced, .. } => {
                    disk.dirs.insert(n, synced.clone());
                }
            }
        }
        disk
    }

    /// Every path reachable from the root.
    fn image(&self, state: &State) -> Image {
        let mut image = Image::new();
        let mut seen = HashSet::new();
        self.collect(state, 0, String::new(), &mut seen, &mut image);
        image
    }

    fn collect(
        &self,
        state: &State,
        node: usize,
        path: String,
        seen: &mut HashSet<usize>,
        out: &mut Image,
    ) {
        // A node reached twice (a directory in two places) is listed once.
        if !seen.insert(node) {
            return;
        }
        match &state.nodes[node] {
            Node::File { .. } => {
                out.insert(path, Some(self.files[&node].clone()));
            }
            Node::Dir { .. } => {
                if !path.is_empty() {
                    out.insert(path.clone(), None);
                }
                for (name, &child) in &self.dirs[&node] {
                    let child_path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}/{name}")
                    };
                    self.collect(state, child, child_path, seen, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FileSystem, write_atomic_in};
    use std::path::Path;

    #[test]
    fn sampled_crashes_choose_among_what_is_not_durable() {
        let fs = PowerLossFs::recording();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        write_atomic_in(&fs, Path::new("/d/durable"), b"kept").unwrap();
        assert_eq!(fs.pending_operations(), 0);
        let mut f = fs.create(Path::new("/d/new")).unwrap();
        f.write_all(&[7u8; 5000]).unwrap();
        drop(f);
        fs.rename(Path::new("/d/durable"), Path::new("/d/moved"))
            .unwrap();
        // The new entry, its bytes, the rename.
        assert_eq!(fs.pending_operations(), 3);
        let mut seen = HashSet::new();
        for seed in 0..400 {
            let crash = fs.sample_crash(seed);
            assert_eq!(crash.pending, 3);
            assert!(crash.applied + crash.torn <= 3);
            let image = &crash.image;
            // The rename is one operation: the file is in one place.
            let places = ["d/durable", "d/moved"]
                .iter()
                .filter(|p| image.get(**p) == Some(&Some(b"kept".to_vec())))
                .count();
            assert_eq!(places, 1, "{seed}: {:?}", image.keys());
            if let Some(Some(bytes)) = image.get("d/new") {
                // Whole, none, cut at a block, or blocks of it zeros.
                assert!(bytes.len() <= 5000);
                assert!(bytes.iter().all(|&b| b == 0 || b == 7));
                seen.insert((bytes.len(), bytes.contains(&0), bytes.contains(&7)));
            }
            assert_eq!(fs.sample_crash(seed).image, crash.image, "{seed}");
        }
        // An empty file (entry without data), the whole write, a cut at a
        // boundary, and some blocks zeros were all drawn.
        assert!(seen.contains(&(0, false, false)), "{seen:?}");
        assert!(seen.contains(&(5000, false, true)), "{seen:?}");
        assert!(
            seen.iter()
                .any(|&(n, _, _)| n > 0 && n < 5000 && n % 512 == 0)
        );
        assert!(seen.iter().any(|&(n, zeros, _)| n == 5000 && zeros));
    }

    #[test]
    fn a_replayed_journal_reaches_the_same_state_and_power_off_stops_a_run() {
        let fs = PowerLossFs::recording();
        fs.create_dir(Path::new("/d")).unwrap();
        write_atomic_in(&fs, Path::new("/d/a"), b"one").unwrap();
        write_atomic_in(&fs, Path::new("/d/a"), b"two").unwrap();
        let journal = fs.journal();
        assert_eq!(journal.len(), fs.operations().len());
        let replayed = PowerLossFs::default();
        replayed.replay(&journal, 6).unwrap();
        assert_eq!(replayed.operations(), fs.operations()[..6]);
        replayed.replay(&journal, journal.len()).unwrap();
        assert_eq!(replayed.current(), fs.current());
        assert_eq!(replayed.sample_crash(3).image, fs.sample_crash(3).image);
        assert!(replayed.replay(&journal, 2).is_err(), "cannot go back");
        // Cut after 2 operations: the third fails and changes nothing.
        let cut = PowerLossFs::default().power_off_after(2);
        cut.create_dir(Path::new("/x")).unwrap();
        cut.create_dir(Path::new("/y")).unwrap();
        assert!(cut.is_powered_off());
        assert!(cut.create_dir(Path::new("/z")).is_err());
        assert!(cut.read_dir(Path::new("/")).is_err());
        assert_eq!(cut.operations().len(), 2);
        assert_eq!(cut.pending_operations(), 2);
    }
}
