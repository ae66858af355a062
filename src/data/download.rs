//! The dataset cache directory, downloads (feature `download`) and archive
//! extraction.
//!
//! Downloads go to `<file>.part` next to their destination, are checked
//! against the expected size and MD5 where those are known, and are renamed
//! into place only when they pass: an interrupted download never leaves a
//! file that looks complete.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::DataError;
use super::md5::{Md5, to_hex};

/// Root of the dataset cache: `$BURN_LOTTERY_DATA` if set, else
/// `$XDG_CACHE_HOME/burn-lottery`, else `$HOME/.cache/burn-lottery`, else
/// `./burn-lottery-data`. Each dataset uses a subdirectory (`cifar10`,
/// `mnist`, `fashion-mnist`).
pub fn data_cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("BURN_LOTTERY_DATA") {
        PathBuf::from(dir)
    } else if let Some(dir) = var("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("burn-lottery")
    } else if let Some(home) = var("HOME") {
        PathBuf::from(home).join(".cache").join("burn-lottery")
    } else {
        PathBuf::from("burn-lottery-data")
    }
}

/// What a downloaded file must look like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpectedFile {
    /// Exact size in bytes, if known.
    pub size: Option<u64>,
    /// MD5 digest as 32 lowercase hex digits, if known.
    pub md5_hex: Option<&'static str>,
}

/// Downloads `url` to `dest`, checking it against `expected`.
///
/// `manual` completes the error message on failure: it says where to put the
/// file(s) by hand. Fails with [`DataError::DownloadFailed`] when the URL
/// cannot be fetched, [`DataError::ChecksumMismatch`] when the content is
/// wrong, and [`DataError::DownloadDisabled`] without the `download` feature.
pub fn download_file(
    url: &str,
    dest: &Path,
    expected: ExpectedFile,
    manual: &str,
) -> Result<(), DataError> {
    #[cfg(feature = "download")]
    {
        download_with_ureq(url, dest, expected, manual)
    }
    #[cfg(not(feature = "download"))]
    {
        let _ = (url, dest, expected);
        Err(DataError::DownloadDisabled {
            manual: manual.to_string(),
        })
    }
}

#[cfg(feature = "download")]
fn download_with_ureq(
    url: &str,
    dest: &Path,
    expected: ExpectedFile,
    manual: &str,
) -> Result<(), DataError> {
    use std::io::{BufWriter, Write};
    use std::time::Duration;

    let failed = |message: String| DataError::DownloadFailed {
        url: url.to_string(),
        message,
        manual: manual.to_string(),
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e, "cache directory"))?;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let mut body = response.into_body().into_reader();

    let part = part_path(dest);
    let result = (|| {
        let file = File::create(&part).map_err(|e| DataError::io(&part, e, "download target"))?;
        let mut writer = BufWriter::new(file);
        let mut hasher = Md5::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(failed(format!("after {size} bytes: {e}"))),
            };
            hasher.update(&buf[..n]);
            writer
                .write_all(&buf[..n])
                .map_err(|e| DataError::io(&part, e, "download target"))?;
            size += n as u64;
        }
        writer
            .flush()
            .map_err(|e| DataError::io(&part, e, "download target"))?;
        check_expected(dest, expected, size, &to_hex(&hasher.finish()))?;
        std::fs::rename(&part, dest).map_err(|e| DataError::io(dest, e, "download target"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// Checks a file's size and MD5 hex digest against `expected`.
#[cfg(feature = "download")]
fn check_expected(
    path: &Path,
    expected: ExpectedFile,
    size: u64,
    md5_hex: &str,
) -> Result<(), DataError> {
    if let Some(want) = expected.size
        && want != size
    {
        return Err(DataError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: format!("{want} bytes"),
            actual: format!("{size} bytes"),
        });
    }
    if let Some(want) = expected.md5_hex
        && !want.eq_ignore_ascii_case(md5_hex)
    {
        return Err(DataError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: format!("md5 {want}"),
            actual: format!("md5 {md5_hex}"),
        });
    }
    Ok(())
}

/// Size and MD5 (hex) of a file on disk.
pub fn file_size_and_md5(path: &Path) -> Result<(u64, String), DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e, "file to checksum"))?;
    let mut reader = BufReader::new(file);
    let mut hasher = Md5::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| DataError::io(path, e, "file to checksum"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, to_hex(&hasher.finish())))
}

/// Extracts a `.tar.gz` archive into `dest_dir` (entries escaping `dest_dir`
/// are refused by `tar`).
pub fn extract_tar_gz(archive: &Path, dest_dir: &Path) -> Result<(), DataError> {
    let file = File::open(archive).map_err(|e| DataError::io(archive, e, "archive"))?;
    std::fs::create_dir_all(dest_dir).map_err(|e| DataError::io(dest_dir, e, "directory"))?;
    let decoder = flate2::read::GzDecoder::new(BufReader::new(file));
    tar::Archive::new(decoder)
        .unpack(dest_dir)
        .map_err(|e| DataError::BadFormat {
            path: archive.to_path_buf(),
            message: format!("cannot extract into {}: {e}", dest_dir.display()),
        })
}

#[cfg(feature = "download")]
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}
