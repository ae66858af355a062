//! CIFAR-10 reader, download path and MD5, on files the tests write in the
//! official binary format.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use burn_lottery::data::cifar::{
    CIFAR10_RECORD_LEN, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, read_cifar10_file,
};
use burn_lottery::data::download::{
    ExpectedFile, download_file, extract_tar_gz, file_size_and_md5,
};
use burn_lottery::data::md5::{Md5, md5, to_hex};
use burn_lottery::data::{DataError, DataSource, load_cifar10, read_cifar10_dir};

const RECORDS: usize = 7;

/// Pixel `k` of record `r` in file `f`.
fn pixel(f: usize, r: usize, k: usize) -> u8 {
    ((f * 53 + r * 31 + k * 7 + k / 1024) % 256) as u8
}

fn label(f: usize, r: usize) -> u8 {
    ((f + 3 * r) % 10) as u8
}

fn file_bytes(f: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RECORDS * CIFAR10_RECORD_LEN);
    for r in 0..RECORDS {
        bytes.push(label(f, r));
        bytes.extend((0..3072).map(|k| pixel(f, r, k)));
    }
    bytes
}

/// Writes the six files (file index 0..4 = training, 5 = test) into `dir`.
fn write_cifar_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (f, name) in CIFAR10_TRAIN_FILES
        .iter()
        .chain(std::iter::once(&CIFAR10_TEST_FILE))
        .enumerate()
    {
        std::fs::write(dir.join(name), file_bytes(f)).unwrap();
    }
}

#[test]
fn reads_known_pixels_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dir(tmp.path());
    let splits = read_cifar10_dir(tmp.path()).unwrap();
    assert_eq!(splits.train.len(), 5 * RECORDS);
    assert_eq!(splits.test.len(), RECORDS);
    assert_eq!(splits.train.image_shape(), [3, 32, 32]);
    assert_eq!(splits.train.num_classes(), 10);
    for f in 0..5 {
        for r in 0..RECORDS {
            let i = f * RECORDS + r;
            assert_eq!(splits.train.label(i), label(f, r));
            let img = splits.train.image(i);
            // Red plane first, row-major; then green, then blue.
            assert_eq!(img[0], pixel(f, r, 0));
            assert_eq!(img[32 + 5], pixel(f, r, 37));
            assert_eq!(img[1024], pixel(f, r, 1024));
            assert_eq!(img[3071], pixel(f, r, 3071));
            assert!(img.iter().enumerate().all(|(k, &v)| v == pixel(f, r, k)));
        }
    }
    for r in 0..RECORDS {
        assert_eq!(splits.test.label(r), label(5, r));
        assert_eq!(splits.test.image(r)[2000], pixel(5, r, 2000));
    }
}

#[test]
fn accepts_the_archive_subdirectory() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dir(&tmp.path().join("cifar-10-batches-bin"));
    let splits = read_cifar10_dir(tmp.path()).unwrap();
    assert_eq!(splits.train.len(), 5 * RECORDS);
    let via_source = load_cifar10(&DataSource::cifar10().with_dir(tmp.path())).unwrap();
    assert_eq!(via_source.train, splits.train);
    assert_eq!(via_source.test, splits.test);
}

#[test]
fn missing_file_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dir(tmp.path());
    std::fs::remove_file(tmp.path().join("data_batch_3.bin")).unwrap();
    let err = read_cifar10_dir(tmp.path()).unwrap_err();
    match &err {
        DataError::MissingFile { path, .. } => {
            assert_eq!(path, &tmp.path().join("data_batch_3.bin"))
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    assert!(err.to_string().contains("data_batch_3.bin"));
}

#[test]
fn truncated_file_reports_expected_and_actual_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dir(tmp.path());
    let path = tmp.path().join("test_batch.bin");
    let mut bytes = file_bytes(5);
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&path, &bytes).unwrap();
    let err = read_cifar10_dir(tmp.path()).unwrap_err();
    match &err {
        DataError::Truncated {
            path: p,
            expected,
            actual,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*expected, (RECORDS * CIFAR10_RECORD_LEN) as u64);
            assert_eq!(*actual, (RECORDS * CIFAR10_RECORD_LEN - 5) as u64);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("test_batch.bin") && message.contains("truncated"));
}

#[test]
fn empty_and_garbage_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        read_cifar10_file(&empty),
        Err(DataError::Truncated {
            expected: 3073,
            actual: 0,
            ..
        })
    ));
    // 3073 bytes of 0xff: the right length, but label 255.
    let garbage = tmp.path().join("garbage.bin");
    std::fs::write(&garbage, vec![0xffu8; CIFAR10_RECORD_LEN]).unwrap();
    match read_cifar10_file(&garbage) {
        Err(DataError::BadLabel {
            path, index, label, ..
        }) => {
            assert_eq!(path, garbage);
            assert_eq!((index, label), (0, 255));
        }
        other => panic!("expected BadLabel, got {other:?}"),
    }
    // A text file whose length is not a multiple of 3073.
    let text = tmp.path().join("text.bin");
    std::fs::write(&text, "not a cifar file\n".repeat(500)).unwrap();
    assert!(matches!(
        read_cifar10_file(&text),
        Err(DataError::Truncated {
            expected: 9219,
            actual: 8500,
            ..
        })
    ));
}

#[test]
fn bad_label_in_a_later_record_is_reported_with_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dir(tmp.path());
    let path = tmp.path().join("data_batch_2.bin");
    let mut bytes = file_bytes(1);
    bytes[4 * CIFAR10_RECORD_LEN] = 10;
    std::fs::write(&path, &bytes).unwrap();
    match read_cifar10_dir(tmp.path()) {
        Err(DataError::BadLabel {
            path: p,
            index,
            label,
            num_classes,
        }) => {
            assert_eq!(p, path);
            assert_eq!((index, label, num_classes), (4, 10, 10));
        }
        other => panic!("expected BadLabel, got {other:?}"),
    }
}

#[test]
fn download_failure_is_offline_fast_and_says_where_to_put_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let url = "http://127.0.0.1:9/cifar-10-binary.tar.gz";
    let source = DataSource::cifar10()
        .without_dir()
        .with_cache_dir(&cache)
        .with_url(url);
    let start = std::time::Instant::now();
    let err = load_cifar10(&source).unwrap_err();
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
    match &err {
        DataError::DownloadFailed { url: u, manual, .. } => {
            assert_eq!(u, url);
            assert!(manual.contains(&cache.display().to_string()));
            assert!(manual.contains("data_batch_1.bin"));
        }
        other => panic!("expected DownloadFailed, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(url), "{message}");
    assert!(message.contains("by hand"), "{message}");
    // No partial file left behind.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&cache)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn without_download_a_missing_cache_is_a_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let source = DataSource::cifar10()
        .without_dir()
        .with_cache_dir(tmp.path())
        .with_download(false);
    match load_cifar10(&source) {
        Err(DataError::MissingFile { path, hint }) => {
            assert_eq!(path, tmp.path().join("data_batch_1.bin"));
            assert!(hint.contains("cifar-10-binary.tar.gz"));
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
}

#[test]
fn the_cache_directory_is_read_when_it_holds_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dir(&tmp.path().join("cifar-10-batches-bin"));
    let source = DataSource::cifar10()
        .without_dir()
        .with_cache_dir(tmp.path())
        .with_url("http://127.0.0.1:9/never-used");
    let splits = load_cifar10(&source).unwrap();
    assert_eq!(splits.test.len(), RECORDS);
}

/// Serves `body` with `status` to each of `connections` requests.
fn serve(body: Vec<u8>, status: &'static str, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/cifar-10-binary.tar.gz")
}

#[test]
fn a_wrong_archive_is_a_checksum_mismatch_and_is_not_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let url = serve(b"definitely not the CIFAR-10 archive".to_vec(), "200 OK", 1);
    let source = DataSource::cifar10()
        .without_dir()
        .with_cache_dir(tmp.path())
        .with_url(url);
    match load_cifar10(&source) {
        Err(DataError::ChecksumMismatch {
            path,
            expected,
            actual,
        }) => {
            assert_eq!(path, tmp.path().join("cifar-10-binary.tar.gz"));
            assert_eq!(expected, "170052171 bytes");
            assert_eq!(actual, "35 bytes");
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn http_errors_are_download_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let url = serve(b"gone".to_vec(), "404 Not Found", 1);
    let err = download_file(
        &url,
        &tmp.path().join("x"),
        ExpectedFile::default(),
        "put it somewhere",
    )
    .unwrap_err();
    match &err {
        DataError::DownloadFailed { url: u, .. } => assert_eq!(u, &url),
        other => panic!("expected DownloadFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("put it somewhere"));
}

#[test]
fn download_checks_size_and_md5() {
    let tmp = tempfile::tempdir().unwrap();
    let body = b"hello, lottery tickets".to_vec();
    let digest = to_hex(&md5(&body));
    let good: &'static str = Box::leak(digest.into_boxed_str());

    let url = serve(body.clone(), "200 OK", 3);
    let dest = tmp.path().join("sub").join("file.bin");
    download_file(
        &url,
        &dest,
        ExpectedFile {
            size: Some(body.len() as u64),
            md5_hex: Some(good),
        },
        "",
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);

    let dest2 = tmp.path().join("file2.bin");
    let wrong_md5 = download_file(
        &url,
        &dest2,
        ExpectedFile {
            size: Some(body.len() as u64),
            md5_hex: Some("00000000000000000000000000000000"),
        },
        "",
    );
    match wrong_md5 {
        Err(DataError::ChecksumMismatch { path, actual, .. }) => {
            assert_eq!(path, dest2);
            assert_eq!(actual, format!("md5 {good}"));
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(!dest2.exists());

    let wrong_size = download_file(
        &url,
        &dest2,
        ExpectedFile {
            size: Some(1),
            md5_hex: None,
        },
        "",
    );
    assert!(matches!(
        wrong_size,
        Err(DataError::ChecksumMismatch { .. })
    ));
    assert!(!dest2.exists());
}

#[test]
fn extracts_an_archive_laid_out_like_the_official_one() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("cifar-10-binary.tar.gz");
    {
        let file = std::fs::File::create(&archive).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (f, name) in CIFAR10_TRAIN_FILES
            .iter()
            .chain(std::iter::once(&CIFAR10_TEST_FILE))
            .enumerate()
        {
            let bytes = file_bytes(f);
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(
                    &mut header,
                    format!("cifar-10-batches-bin/{name}"),
                    bytes.as_slice(),
                )
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    }
    let out = tmp.path().join("out");
    extract_tar_gz(&archive, &out).unwrap();
    let splits = read_cifar10_dir(&out).unwrap();
    assert_eq!(splits.train.len(), 5 * RECORDS);
    assert_eq!(splits.train.label(RECORDS + 2), label(1, 2));

    // A corrupt archive is an error naming it, not a panic.
    let bad = tmp.path().join("bad.tar.gz");
    std::fs::write(&bad, b"\x1f\x8bnot really gzip").unwrap();
    match extract_tar_gz(&bad, &tmp.path().join("out2")) {
        Err(DataError::BadFormat { path, .. }) => assert_eq!(path, bad),
        other => panic!("expected BadFormat, got {other:?}"),
    }
}

#[test]
fn md5_matches_rfc_1321_vectors() {
    let cases: [(&[u8], &str); 5] = [
        (b"", "d41d8cd98f00b204e9800998ecf8427e"),
        (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
        (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            b"The quick brown fox jumps over the lazy dog",
            "9e107d9d372bb6826bd81d3542a419d6",
        ),
        (
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(to_hex(&md5(input)), want);
        // Fed in uneven pieces, the digest is the same.
        let mut h = Md5::new();
        for piece in input.chunks(7) {
            h.update(piece);
        }
        assert_eq!(to_hex(&h.finish()), want);
    }
    // Around the 56/64-byte padding boundaries.
    for len in 50..140 {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut h = Md5::new();
        h.update(&data[..len / 3]);
        h.update(&data[len / 3..]);
        assert_eq!(h.finish(), md5(&data), "len {len}");
    }
}

#[test]
fn md5_of_a_real_file_matches_md5sum() {
    // md5sum /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
    let path = Path::new("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    let (size, digest) = file_size_and_md5(path).unwrap();
    assert_eq!(size, 5125);
    assert_eq!(digest, "0d30e22e447f3c33dab9ed536400ac01");
}
