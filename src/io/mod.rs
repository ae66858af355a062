//! Crash-safe file writes, and the [`FileSystem`] they go through.
//!
//! Every file this crate writes goes through [`write_atomic`] (or
//! [`write_atomic_in`] on another [`FileSystem`]): the bytes go to a
//! temporary file in the same directory, are flushed to disk, the file is
//! renamed over the target and the directory is flushed too. A crash leaves either the old file or the new one,
//! never half of one; at worst a temporary file stays behind, which
//! [`is_temporary_file_name`] recognizes so that it can be cleaned up.

mod fs;
pub mod power_loss;

use std::io;
use std::path::Path;

pub use fs::{
    EntryKind, FileSystem, FsHandle, RealFs, WritableFile, create_dir_all_durable, parent_dir,
};

/// Marker between a target's name and the writer's process id in the name of
/// a temporary file: `.<name>.tmp-<pid>`.
const TEMP_MARKER: &str = ".tmp-";

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename,
/// fsync of the directory) on the operating system's file system.
///
/// The temporary file is `.<name>.tmp-<pid>` next to `path`; a process killed
/// mid-write leaves it behind (see [`is_temporary_file_name`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_in(&RealFs, path, bytes)
}

/// [`write_atomic`] on the file system `fs`. When it returns `Ok`, the new
/// contents are durable: the file's bytes were synced before the rename,
/// and the directory after it (an error of either sync is returned).
pub fn write_atomic_in(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}{TEMP_MARKER}{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs.create(&tmp)?;
        file.write_all(bytes)?;
        file.sync()?;
        drop(file);
        fs.rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs.remove_file(&tmp);
    }
    result?;
    // Persist the rename itself.
    fs.sync_dir(dir)
}

/// Whether `name` is the name of a temporary file of [`write_atomic`]
/// (`.<name>.tmp-<pid>`), e.g. one left behind by a killed process.
pub fn is_temporary_file_name(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(TEMP_MARKER).is_some_and(|(target, pid)| {
            target.len() > 1 && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

/// CRC-32 (IEEE) of `bytes`, the checksum stored in this crate's file formats.
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// XXH3-64 of `bytes`: the hash an experiment's manifest records for each
/// file.
///
/// Not CRC-32: the crate's binary formats end in the CRC-32 of what comes
/// before, and the CRC-32 of any such file is one constant (0x2144DF1C), so
/// a manifest of CRC-32s could tell two valid files of equal size apart by
/// nothing.
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_ending_in_their_crc_have_one_crc_but_distinct_hashes() {
        let framed = |body: &[u8]| {
            let mut bytes = body.to_vec();
            bytes.extend_from_slice(&checksum(body).to_le_bytes());
            bytes
        };
        let (a, b) = (framed(b"level one mask"), framed(b"level two mask"));
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(content_hash(&a), content_hash(&b));
    }

    #[test]
    fn temporary_file_names_are_recognized() {
        assert!(is_temporary_file_name(".mask.bin.tmp-1234"));
        assert!(!is_temporary_file_name("mask.bin"));
        assert!(!is_temporary_file_name(".mask.bin.tmp-"));
        assert!(!is_temporary_file_name(".mask.bin.tmp-12a"));
        assert!(!is_temporary_file_name("mask.bin.tmp-12"));
        assert!(!is_temporary_file_name("..tmp-12"));
    }
}
