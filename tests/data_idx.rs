//! MNIST / Fashion-MNIST IDX reader: generated files (plain and gzip), every
//! bad-file error, the download path (offline), and the real Fashion-MNIST
//! files installed by Debian's `dataset-fashion-mnist`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use burn_lottery::data::idx::{
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
    read_idx_file, read_idx_pair,
};
use burn_lottery::data::{
    DataError, DataSource, Normalization, load_fashion_mnist, load_mnist, read_idx_dir,
};

const ROWS: usize = 5;
const COLS: usize = 4;

fn idx_images(n: usize, seed: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    for d in [n, ROWS, COLS] {
        b.extend_from_slice(&(d as u32).to_be_bytes());
    }
    b.extend((0..n * ROWS * COLS).map(|k| pixel(seed, k)));
    b
}

fn pixel(seed: usize, k: usize) -> u8 {
    ((seed * 17 + k * 13) % 256) as u8
}

fn idx_labels(n: usize, seed: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    b.extend_from_slice(&(n as u32).to_be_bytes());
    b.extend((0..n).map(|i| ((i + seed) % 10) as u8));
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes the four files: 9 training and 4 test samples.
fn write_idx_dir(dir: &Path, gz: bool, dotted: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let files = [
        (TRAIN_IMAGES, idx_images(9, 1)),
        (TRAIN_LABELS, idx_labels(9, 1)),
        (TEST_IMAGES, idx_images(4, 2)),
        (TEST_LABELS, idx_labels(4, 2)),
    ];
    for (stem, bytes) in files {
        let mut name = if dotted {
            stem.replacen("-idx", ".idx", 1)
        } else {
            stem.to_string()
        };
        let bytes = if gz {
            name.push_str(".gz");
            gzip(&bytes)
        } else {
            bytes
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn check_generated(splits: &burn_lottery::data::DatasetSplits) {
    assert_eq!(splits.train.len(), 9);
    assert_eq!(splits.test.len(), 4);
    assert_eq!(splits.train.image_shape(), [1, ROWS, COLS]);
    for i in 0..9 {
        assert_eq!(splits.train.label(i), ((i + 1) % 10) as u8);
        let img = splits.train.image(i);
        for (k, &v) in img.iter().enumerate() {
            assert_eq!(v, pixel(1, i * ROWS * COLS + k));
        }
    }
    assert_eq!(splits.test.label(3), 5);
    assert_eq!(splits.test.image(3)[7], pixel(2, 3 * ROWS * COLS + 7));
}

#[test]
fn reads_plain_gzip_and_dotted_names() {
    for (gz, dotted) in [(false, false), (true, false), (false, true), (true, true)] {
        let tmp = tempfile::tempdir().unwrap();
        write_idx_dir(tmp.path(), gz, dotted);
        let splits = read_idx_dir(tmp.path(), 10).unwrap();
        check_generated(&splits);
        let via_source = load_mnist(&DataSource::mnist().with_dir(tmp.path())).unwrap();
        assert_eq!(via_source.train, splits.train);
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn missing_file_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx_dir(tmp.path(), true, false);
    std::fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let err = read_idx_dir(tmp.path(), 10).unwrap_err();
    match &err {
        DataError::MissingFile { path, hint } => {
            assert_eq!(path, &tmp.path().join(TEST_LABELS));
            assert!(hint.contains(".gz"));
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    assert!(err.to_string().contains("t10k-labels-idx1-ubyte"));
}

#[test]
fn truncated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let full = idx_images(9, 1);
    // Cut in the pixel data.
    let p = write(tmp.path(), "a", &full[..full.len() - 3]);
    match read_idx_file(&p, IDX_IMAGES_MAGIC) {
        Err(DataError::Truncated {
            path,
            expected,
            actual,
        }) => {
            assert_eq!(path, p);
            assert_eq!(expected, full.len() as u64);
            assert_eq!(actual, full.len() as u64 - 3);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // Cut in the header.
    let p = write(tmp.path(), "b", &full[..10]);
    assert!(matches!(
        read_idx_file(&p, IDX_IMAGES_MAGIC),
        Err(DataError::Truncated {
            expected: 16,
            actual: 10,
            ..
        })
    ));
    // Shorter than the magic number.
    let p = write(tmp.path(), "c", &full[..2]);
    assert!(matches!(
        read_idx_file(&p, IDX_IMAGES_MAGIC),
        Err(DataError::Truncated {
            expected: 4,
            actual: 2,
            ..
        })
    ));
    // Truncated after gzip decompression: sizes are of the decompressed data.
    let p = write(tmp.path(), "d.gz", &gzip(&full[..full.len() - 1]));
    assert!(matches!(
        read_idx_file(&p, IDX_IMAGES_MAGIC),
        Err(DataError::Truncated { .. })
    ));
}

#[test]
fn trailing_bytes_are_a_format_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = idx_labels(9, 0);
    bytes.extend_from_slice(b"xyz");
    let p = write(tmp.path(), "labels", &bytes);
    match read_idx_file(&p, IDX_LABELS_MAGIC) {
        Err(DataError::BadFormat { path, message }) => {
            assert_eq!(path, p);
            assert!(message.contains("3 bytes"), "{message}");
        }
        other => panic!("expected BadFormat, got {other:?}"),
    }
}

#[test]
fn wrong_magic_and_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    // A labels file where the images file should be.
    let p = write(tmp.path(), "swapped", &idx_labels(9, 0));
    match read_idx_file(&p, IDX_IMAGES_MAGIC) {
        Err(DataError::WrongMagic {
            path,
            expected,
            found,
        }) => {
            assert_eq!(path, p);
            assert_eq!((expected, found), (0x803, 0x801));
        }
        other => panic!("expected WrongMagic, got {other:?}"),
    }
    let err = read_idx_file(&p, IDX_IMAGES_MAGIC).unwrap_err().to_string();
    assert!(
        err.contains("0x00000801") && err.contains("0x00000803"),
        "{err}"
    );
    // Text.
    let p = write(tmp.path(), "text", b"<html>404 not found</html>");
    assert!(matches!(
        read_idx_file(&p, IDX_LABELS_MAGIC),
        Err(DataError::WrongMagic {
            found: 0x3c68_746d,
            ..
        })
    ));
}

#[test]
fn bad_gzip_is_a_gzip_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Gzip magic followed by garbage.
    let p = write(
        tmp.path(),
        "garbage.gz",
        b"\x1f\x8b\x08\x00garbage garbage garbage",
    );
    match read_idx_file(&p, IDX_IMAGES_MAGIC) {
        Err(DataError::Gzip { path, .. }) => assert_eq!(path, p),
        other => panic!("expected Gzip, got {other:?}"),
    }
    // A gzip stream cut in half.
    let gz = gzip(&idx_images(50, 3));
    let p = write(tmp.path(), "cut.gz", &gz[..gz.len() / 2]);
    assert!(matches!(
        read_idx_file(&p, IDX_IMAGES_MAGIC),
        Err(DataError::Gzip { .. })
    ));
    // A corrupted byte in the compressed data: CRC or inflate error.
    let mut corrupt = gzip(&idx_images(50, 3));
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x55;
    let p = write(tmp.path(), "corrupt.gz", &corrupt);
    assert!(read_idx_file(&p, IDX_IMAGES_MAGIC).is_err());
}

#[test]
fn count_mismatch_names_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    let images = write(tmp.path(), "img", &idx_images(9, 0));
    let labels = write(tmp.path(), "lbl", &idx_labels(8, 0));
    let err = read_idx_pair(&images, &labels, 10).unwrap_err();
    match &err {
        DataError::CountMismatch {
            images_path,
            images: n_images,
            labels_path,
            labels: n_labels,
        } => {
            assert_eq!(images_path, &images);
            assert_eq!(labels_path, &labels);
            assert_eq!((*n_images, *n_labels), (9, 8));
        }
        other => panic!("expected CountMismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("img") && message.contains("lbl"));
}

#[test]
fn bad_label_value() {
    let tmp = tempfile::tempdir().unwrap();
    let images = write(tmp.path(), "img", &idx_images(9, 0));
    let mut lbl = idx_labels(9, 0);
    lbl[8 + 6] = 42;
    let labels = write(tmp.path(), "lbl", &lbl);
    match read_idx_pair(&images, &labels, 10) {
        Err(DataError::BadLabel {
            path,
            index,
            label,
            num_classes,
        }) => {
            assert_eq!(path, labels);
            assert_eq!((index, label, num_classes), (6, 42, 10));
        }
        other => panic!("expected BadLabel, got {other:?}"),
    }
}

#[test]
fn download_failure_is_offline_and_says_where_to_put_files() {
    let tmp = tempfile::tempdir().unwrap();
    let source = DataSource::fashion_mnist()
        .without_dir()
        .with_cache_dir(tmp.path())
        .with_url("http://127.0.0.1:9/");
    match load_fashion_mnist(&source) {
        Err(err @ DataError::DownloadFailed { .. }) => {
            let DataError::DownloadFailed { url, manual, .. } = &err else {
                unreachable!()
            };
            assert_eq!(url, "http://127.0.0.1:9/train-images-idx3-ubyte.gz");
            assert!(manual.contains(&tmp.path().display().to_string()));
            assert!(manual.contains("FASHION_MNIST_DIR"));
            assert!(err.to_string().contains("127.0.0.1:9"));
        }
        other => panic!("expected DownloadFailed, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// Serves `files` (URL path -> body) until the test ends.
fn serve_files(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = match files.get(&path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/mnist")
}

#[test]
fn downloads_into_the_cache_then_reads_from_it() {
    let files: HashMap<String, Vec<u8>> = [
        (TRAIN_IMAGES, idx_images(9, 1)),
        (TRAIN_LABELS, idx_labels(9, 1)),
        (TEST_IMAGES, idx_images(4, 2)),
        (TEST_LABELS, idx_labels(4, 2)),
    ]
    .into_iter()
    .map(|(stem, bytes)| (format!("/mnist/{stem}.gz"), gzip(&bytes)))
    .collect();
    let url = serve_files(files);
    let tmp = tempfile::tempdir().unwrap();
    let source = DataSource::mnist()
        .without_dir()
        .with_cache_dir(tmp.path().join("mnist"))
        .with_url(&url);
    let splits = load_mnist(&source).unwrap();
    check_generated(&splits);
    assert!(
        tmp.path()
            .join("mnist")
            .join("train-images-idx3-ubyte.gz")
            .is_file()
    );
    // Second time: from the cache, without the network.
    let offline = source.clone().with_url("http://127.0.0.1:9/");
    let again = load_mnist(&offline).unwrap();
    assert_eq!(again.train, splits.train);
}

#[test]
fn corrupt_downloads_are_reported_and_deleted() {
    let mut files: HashMap<String, Vec<u8>> = [
        (TRAIN_IMAGES, idx_images(9, 1)),
        (TRAIN_LABELS, idx_labels(9, 1)),
        (TEST_IMAGES, idx_images(4, 2)),
        (TEST_LABELS, idx_labels(4, 2)),
    ]
    .into_iter()
    .map(|(stem, bytes)| (format!("/mnist/{stem}.gz"), gzip(&bytes)))
    .collect();
    let gz = files.get_mut("/mnist/t10k-images-idx3-ubyte.gz").unwrap();
    let half = gz.len() / 2;
    gz.truncate(half);
    let url = serve_files(files);
    let tmp = tempfile::tempdir().unwrap();
    let source = DataSource::mnist()
        .without_dir()
        .with_cache_dir(tmp.path())
        .with_url(&url);
    match load_mnist(&source) {
        Err(DataError::Gzip { path, .. }) => {
            assert_eq!(path, tmp.path().join("t10k-images-idx3-ubyte.gz"))
        }
        other => panic!("expected Gzip, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// CI installs `dataset-fashion-mnist`; this test fails (does not skip)
/// without it.
#[test]
fn real_fashion_mnist_from_debian() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(
        dir.is_dir(),
        "{} is missing: apt-get install dataset-fashion-mnist",
        dir.display()
    );
    let splits = read_idx_dir(dir, 10).unwrap();
    assert_eq!(splits.train.len(), 60_000);
    assert_eq!(splits.test.len(), 10_000);
    assert_eq!(splits.train.image_shape(), [1, 28, 28]);
    assert_eq!(splits.test.image_shape(), [1, 28, 28]);
    // Fashion-MNIST is balanced.
    assert_eq!(splits.train.class_counts(), vec![6_000; 10]);
    assert_eq!(splits.test.class_counts(), vec![1_000; 10]);
    // The usual training-set statistics: mean 0.2860, std 0.3530.
    let norm = Normalization::from_dataset(&splits.train);
    assert!((norm.mean()[0] - 0.2860).abs() < 5e-4, "{:?}", norm.mean());
    assert!((norm.std()[0] - 0.3530).abs() < 5e-4, "{:?}", norm.std());
    // The default source finds it (unless FASHION_MNIST_DIR points elsewhere).
    if std::env::var_os("FASHION_MNIST_DIR").is_none() {
        let via_default = load_fashion_mnist(&DataSource::fashion_mnist()).unwrap();
        assert_eq!(via_default.test, splits.test);
    }
}
