//! The research examples as a user runs them, on the real Fashion-MNIST CI
//! installs: the README's main job (`fashion_mnist_lenet`) in short, its
//! experiments found again by `stability` (the two programs agree on every
//! directory name), and bad flags refused with a message that names them
//! (exit status 1, never a panic's 101) before anything trains.
//!
//! Cargo gives tests the paths of the crate's programs, not of its examples,
//! so the examples are built first, once, with this test's own cargo,
//! features, profile and target directory: nothing to do after `cargo test`,
//! which builds them, and never a stale binary after a filtered run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use burn_lottery::report;

/// The examples run here.
const EXAMPLES: [&str; 5] = [
    "fashion_mnist_lenet",
    "stability",
    "fashion_mnist_methods",
    "fashion_mnist_connectivity",
    "diabetes_regression",
];

/// The crate features this test was built with, to build the examples alike
/// (another feature set would rebuild burn).
fn features() -> String {
    // `default` too: a build without it is another build of the crate.
    let all = [
        ("default", cfg!(feature = "default")),
        ("ndarray", cfg!(feature = "ndarray")),
        ("download", cfg!(feature = "download")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("wgpu-unfused", cfg!(feature = "wgpu-unfused")),
        ("cuda", cfg!(feature = "cuda")),
        ("cubecl", cfg!(feature = "cubecl")),
        ("cli", cfg!(feature = "cli")),
    ];
    let on: Vec<&str> = all.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect();
    on.join(",")
}

/// Environment variables cargo sets for the tests it runs (besides
/// `CARGO_PKG_*`).
const CARGO_RUN_ENV: [&str; 8] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// Builds the examples (once per test process) and returns their folder,
/// `<target>/<profile>/examples`, beside this test's `<target>/<profile>/deps`.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test runs from <target>/<profile>/deps");
        let target = profile_dir.parent().expect("<target>/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => panic!("no profile folder above {}", exe.display()),
        };
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .arg("build")
            .arg("--manifest-path")
            .arg(crate::common::repo_root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target)
            .args(["--profile", profile, "--no-default-features"])
            .args(["--features", &features()]);
        for example in EXAMPLES {
            cargo.args(["--example", example]);
        }
        // What cargo sets for this test's process, not for a build: a
        // dependency's build script that watches one (ring's watches
        // CARGO_MANIFEST_DIR) would rebuild, and `cargo test` after it again.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_") || CARGO_RUN_ENV.contains(&name.as_ref()) {
                cargo.env_remove(name.as_ref());
            }
        }
        let output = cargo.output().expect("cargo starts");
        assert!(
            output.status.success(),
            "building the examples failed: {}",
            stderr(&output)
        );
        profile_dir.join("examples")
    })
}

/// Runs `example` with `args` in the folder `dir`.
fn run(example: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(examples_dir().join(example))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{example} starts: {e}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `example`, asserts it succeeded and returns its stdout and stderr.
fn succeeds(example: &str, args: &[&str], dir: &Path) -> (String, String) {
    let output = run(example, args, dir);
    assert!(
        output.status.success(),
        "{example} {args:?}: {}",
        stderr(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (stdout, stderr(&output))
}

/// Runs `example`, asserts it exited with status 1 (an error, not a panic)
/// saying `named`, and that `dir` is still empty: nothing was written.
fn refused(example: &str, args: &[&str], named: &str) {
    let dir = tempfile::tempdir().unwrap();
    let output = run(example, args, dir.path());
    let message = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{example} {args:?}: {message}"
    );
    assert!(
        message.contains("error: ") && message.contains(named),
        "{example} {args:?} should name {named:?}: {message}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(written.is_empty(), "{example} {args:?} wrote {written:?}");
}

/// The main job in short: 2 levels of 20 iterations, rewinding to 0 and 5
/// (and how `stability` names the same experiments).
const SHORT_CHAINS: [&str; 8] = [
    "--device",
    "ndarray",
    "--iterations",
    "20",
    "--levels",
    "1",
    "--rewind",
    "0,5",
];

#[test]
fn the_main_job_reports_its_chains_and_stability_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let main_job = [
        &SHORT_CHAINS[..],
        &["--checkpoint-every", "100", "--report", "report"],
    ]
    .concat();
    let (table, log) = succeeds("fashion_mnist_lenet", &main_job, dir.path());
    let csv = std::fs::read_to_string(dir.path().join("report/report.csv")).unwrap();
    let (rows, metric) = report::from_csv(&csv).unwrap();
    assert_eq!(metric, "accuracy");
    let mut found: Vec<(String, usize)> = rows
        .iter()
        .map(|r| (r.condition.clone(), r.level))
        .collect();
    found.sort();
    let expected = [
        ("imp_rewind0", 0),
        ("imp_rewind0", 1),
        ("imp_rewind5", 0),
        ("imp_rewind5", 1),
        ("random_prune", 1),
        ("random_reinit", 1),
    ];
    let expected: Vec<(String, usize)> =
        expected.iter().map(|(c, l)| (c.to_string(), *l)).collect();
    assert_eq!(found, expected, "{table}");
    for r in &rows {
        // Real data, 20 steps: well above chance (10%), below perfect.
        assert!(r.value > 0.2 && r.value < 1.0, "{r:?}");
    }
    assert!(dir.path().join("report/report.svg").exists());
    assert!(log.contains("training iterations"), "{log}");

    // Run again: every level is found finished, the report is the same.
    let (_, again) = succeeds("fashion_mnist_lenet", &main_job, dir.path());
    assert!(!again.contains("training iterations"), "{again}");
    let csv_again = std::fs::read_to_string(dir.path().join("report/report.csv")).unwrap();
    assert_eq!(csv_again, csv);

    // `stability` builds the same configurations: it finds both chains
    // without --run-missing and trains only the copies.
    let stability = [
        &SHORT_CHAINS[..],
        &["--analyze", "0,1", "--points", "3", "--report", "stability"],
    ]
    .concat();
    let (table, _) = succeeds("stability", &stability, dir.path());
    let csv = std::fs::read_to_string(dir.path().join("stability/stability.csv")).unwrap();
    // IMP at levels 0 and 1 of both chains, random pruning on the first.
    assert_eq!(csv.lines().count(), 1 + 2 * 2 + 2, "{csv}\n{table}");
    assert!(
        csv.contains("imp_rewind5,1,") && csv.contains("random_prune,1,"),
        "{csv}"
    );
}

#[test]
fn connectivity_finds_the_imp_chain_of_the_methods_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let chain = ["--iterations", "20", "--levels", "2", "--rewind", "5"];
    let methods = [
        &chain[..],
        &["--method", "imp", "--checkpoint-every", "100"],
    ]
    .concat();
    succeeds("fashion_mnist_methods", &methods, dir.path());
    let rows = std::fs::read_to_string(
        dir.path()
            .join("experiments/methods/rows/imp_rewind5_seed0.csv"),
    )
    .unwrap();
    let (rows, _) = report::from_csv(&rows).unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");

    let connectivity = [
        &chain[..],
        &["--points", "3", "--device", "ndarray", "--out", "c.csv"],
    ]
    .concat();
    let (table, _) = succeeds("fashion_mnist_connectivity", &connectivity, dir.path());
    let csv = std::fs::read_to_string(dir.path().join("c.csv")).unwrap();
    let pairs: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(pairs.len(), 2, "{csv}\n{table}");
    for (pair, levels) in pairs.iter().zip([("0", "1"), ("1", "2")]) {
        assert_eq!(
            (pair[0], pair[1], pair[2]),
            ("imp_rewind5", levels.0, levels.1)
        );
        // The path's ends are the chain's own networks: their test errors.
        let error_a: f64 = pair[8].parse().unwrap();
        let level_a: usize = levels.0.parse().unwrap();
        assert!(
            (error_a - (1.0 - rows[level_a].value)).abs() < 1e-9,
            "{pair:?} {rows:?}"
        );
    }
}

#[test]
fn bad_flags_of_the_main_job_are_refused_before_anything_trains() {
    let lenet = "fashion_mnist_lenet";
    refused(
        lenet,
        &["--seeds", "0,1,0"],
        "--seeds lists 0 more than once",
    );
    refused(
        lenet,
        &["--rewind", "0,0"],
        "--rewind lists 0 more than once",
    );
    // The second chain's rewind point is past the training: found at once,
    // not after the first chain has trained.
    refused(
        lenet,
        &[
            "--device",
            "ndarray",
            "--iterations",
            "100",
            "--rewind",
            "0,500",
        ],
        "500",
    );
    refused(
        lenet,
        &["--data-dir", "/nonexistent/fmnist"],
        "/nonexistent/fmnist",
    );
    refused(lenet, &["--device", "tpu"], "device `tpu`");
}

#[test]
fn bad_flags_of_the_analyses_are_refused_before_anything_trains() {
    let stability = "stability";
    refused(stability, &["--copies", "7,7"], "--copies");
    refused(stability, &["--copies", "0,7"], "--copies");
    refused(
        stability,
        &["--analyze", "0,3,3"],
        "--analyze lists 3 more than once",
    );
    refused(
        stability,
        &["--levels", "2", "--analyze", "3"],
        "--analyze 3: the experiment has levels 0 to 2",
    );
    // Experiments that do not exist are named, not run, without --run-missing.
    refused(
        stability,
        &["--device", "ndarray", "--iterations", "20"],
        "--run-missing",
    );

    let diabetes = "diabetes_regression";
    refused(diabetes, &["--copy-seeds", "3"], "--copy-seeds");
    refused(
        diabetes,
        &["--copy-seeds", "3,3"],
        "--copy-seeds lists 3 more than once",
    );
    refused(
        diabetes,
        &["--stability-levels", "11"],
        "stability level 11",
    );
    refused(
        diabetes,
        &["--data-dir", "/nonexistent/sklearn"],
        "/nonexistent/sklearn/diabetes_data_raw.csv.gz",
    );
}
