//! The `burn-lottery-sweep` program as a user runs it, on the real
//! Fashion-MNIST that CI installs: `local --jobs 2` gives the report of
//! `single-process` byte for byte, `report` before any job is finished lists
//! them all as missing, and bad input ends with a message that names it
//! (exit status 1, never a panic's 101).

use std::path::Path;
use std::process::{Command, Output};

/// Runs the program with `args`; `env` adds environment variables.
fn sweep_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_burn-lottery-sweep"));
    command.args(args).env_remove("SLURM_ARRAY_TASK_ID");
    command
        .env_remove("JOB_COMPLETION_INDEX")
        .envs(env.iter().copied());
    command.output().expect("the program starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the program and asserts that it succeeded; returns its stdout.
fn succeeds(args: &[&str]) -> String {
    let output = sweep_cli(args, &[]);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

/// A LeNet sweep of 20 iterations a level: the main line (levels 0 and 1),
/// a random reinitialization control and two stability copies, 7 jobs.
fn write_spec(dir: &Path) -> String {
    let spec = r#"{
        "network": "lenet_fashion_mnist",
        "iterations": 20,
        "levels": 1,
        "rewind_points": [0],
        "seeds": [0],
        "controls": { "random_reinit": true },
        "stability": { "copies": [1, 2] }
    }"#;
    let path = dir.join("sweep.json");
    std::fs::write(&path, spec).unwrap();
    path.to_str().unwrap().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn local_jobs_two_at_once_give_the_single_process_report() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    let (local, single) = (dir.path().join("local"), dir.path().join("single"));
    let (local_root, single_root) = (local.to_str().unwrap(), single.to_str().unwrap());
    let count: usize = succeeds(&["plan", "--sweep", &spec, "--format", "count"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(count, 7);
    let device = ["--device", "ndarray"];
    let local_args = [
        "local", "--sweep", &spec, "--root", local_root, "--jobs", "2",
    ];
    let summary = succeeds(&[&local_args[..], &device].concat());
    assert!(summary.contains("local: 7 jobs"), "{summary}");
    let status = succeeds(&["status", "--sweep", &spec, "--root", local_root]);
    assert_eq!(status.lines().count(), count, "{status}");
    assert!(
        status.lines().all(|l| l.ends_with(": finished")),
        "{status}"
    );
    for job in 0..count {
        assert!(local.join(format!("logs/job-{job}.log")).is_file());
    }
    let single_args = ["single-process", "--sweep", &spec, "--root", single_root];
    succeeds(&[&single_args[..], &device].concat());
    let report = read(&local.join("report/report.csv"));
    // Main line levels 0 and 1, the control at level 1.
    assert_eq!(report.lines().count(), 1 + 3, "{report}");
    assert!(report.contains("\nrandom_reinit,0,1,"), "{report}");
    assert_eq!(report, read(&single.join("report/report.csv")));
    let stability = read(&local.join("report/stability.csv"));
    assert_eq!(stability.lines().count(), 1 + 2, "{stability}");
    assert_eq!(stability, read(&single.join("report/stability.csv")));
    assert!(read(&local.join("report/report.svg")).starts_with("<svg"));
}

#[test]
fn a_report_before_any_job_is_finished_lists_every_job_missing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    let root = dir.path().join("root");
    let root_arg = root.to_str().unwrap();
    let args = [
        "report", "--sweep", &spec, "--root", root_arg, "--device", "ndarray",
    ];
    let output = sweep_cli(&[&args[..], &["--require-complete"]].concat(), &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let missing: Vec<String> = stdout(&output)
        .lines()
        .filter_map(|l| l.strip_prefix("missing: job ").map(String::from))
        .collect();
    assert_eq!(missing.len(), 7, "{}", stdout(&output));
    assert!(missing[0].starts_with("0 (seed 0 k 0: imp_rewind0 level 0)"));
    let csv = read(&root.join("report/report.csv"));
    assert_eq!(csv.lines().count(), 1, "only the header: {csv}");
    assert!(!root.join("report/report.svg").exists());
    // Without --require-complete a partial report is not a failure.
    assert!(sweep_cli(&args, &[]).status.success());
}

fn with<'a>(args: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [args, more].concat()
}

/// Asserts that the program exits with status 1 and says `reason`.
fn refuses(args: &[&str], env: &[(&str, &str)], reason: &str) {
    let output = sweep_cli(args, env);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {message}");
    assert!(
        message.contains(reason),
        "{args:?}: `{message}` lacks `{reason}`"
    );
}

#[test]
fn bad_input_is_refused_with_a_message_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let job = |n: &'static str| ["run", "--sweep", &spec, "--root", root, "--job", n];
    let ndarray = ["--device", "ndarray"];
    refuses(&with(&job("1"), &ndarray), &[], "needs job 0");
    refuses(&with(&job("9"), &ndarray), &[], "the sweep has 7 jobs");
    refuses(&with(&job("0"), &["--device", "tpu"]), &[], "device `tpu`");
    let nowhere = ["--device", "ndarray", "--data-dir", "/nonexistent/data"];
    refuses(
        &with(&job("0"), &nowhere),
        &[],
        "/nonexistent/data/train-images",
    );
    // A local run's failed job: its number, its log and the log's last lines.
    let local = ["local", "--sweep", &spec, "--root", root, "--jobs", "2"];
    let message = stderr(&sweep_cli(&with(&local, &nowhere), &[]));
    assert!(message.contains("job 0 failed"), "{message}");
    assert!(message.contains("logs/job-0.log"), "{message}");
    assert!(
        message.contains("/nonexistent/data/train-images"),
        "{message}"
    );
    std::fs::remove_dir_all(root).unwrap();
    let no_job = ["run", "--sweep", &spec, "--root", root];
    refuses(&no_job, &[], "pass --job N");
    refuses(
        &no_job,
        &[("SLURM_ARRAY_TASK_ID", "x")],
        "is `x`, not a job number",
    );

    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let typo = file(
        "typo.json",
        r#"{"network": "lenet_fashion_mnist", "seed": [0]}"#,
    );
    refuses(&["plan", "--sweep", &typo], &[], "unknown field `seed`");
    let truncated = file("truncated.json", &read(Path::new(&spec))[..60]);
    refuses(&["plan", "--sweep", &truncated], &[], "truncated.json: EOF");
    let vgg = read(Path::new(&spec)).replace("lenet_fashion_mnist", "vgg19");
    let unknown = file("unknown.json", &vgg);
    refuses(
        &["plan", "--sweep", &unknown],
        &[],
        "unknown network `vgg19`",
    );
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    refuses(
        &["plan", "--sweep", missing],
        &[],
        "missing.json: No such file",
    );
    assert!(!Path::new(root).exists(), "a refused job writes nothing");
}
