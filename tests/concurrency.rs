//! Several real processes on one experiment root: a second writer of an
//! experiment is refused by name and damages nothing, a dead holder's lock
//! is taken over, different experiments (and the jobs of one sweep) run at
//! once and give the results of a sequential run, and 2 or 4 processes
//! started at once on the same experiment (each restarting when a level
//! lock refuses it) train every level exactly once and leave every file of
//! a single-process run.
//!
//! The child processes are this test binary run again with
//! `concurrency::child_process_entry --exact` and the environment variable
//! [`CHILD`] saying what to do; run without it, that entry does nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use burn_lottery::imp::lock::{FileLock, LockError};
use burn_lottery::imp::store::{ExperimentStore, StoreError};
use burn_lottery::imp::{
    Controls, Imp, ImpConfig, ImpError, ImpObserver, RunOptions, Seeds, Silent,
};
use burn_lottery::sweep::{StabilitySpec, Sweep, SweepSpec};

use crate::common::compare::{compare_files, files_on_disk};
use crate::common::{data, init, ndarray, tiny_imp_config};

/// Environment variable: the child's task, `hold <lock>`, `imp <root>
/// <seed> <pause ms>`, `retry <root> <seed>` or `job <root> <job>`.
const CHILD: &str = "BURN_LOTTERY_TEST_CHILD";
/// Exit status of a child refused by a lock.
const LOCKED_EXIT: i32 = 3;

/// The experiment of seed `seed`: two levels and the random-pruning control.
fn config(seed: u64) -> ImpConfig {
    ImpConfig {
        seeds: Seeds::all(seed),
        controls: Controls {
            random_prune: true,
            ..Controls::default()
        },
        ..tiny_imp_config("concurrent", 2)
    }
}

fn options() -> RunOptions {
    RunOptions {
        checkpoint_every: 10,
        eval_batch_size: 50,
        ..RunOptions::default()
    }
}

/// The sweep of the sweep tests: 2 seeds x 2 rewind points x 2 levels, the
/// random-pruning control and stability copies with data-order seeds 0 and 7.
pub fn sweep() -> Sweep {
    let spec = SweepSpec {
        network: "tiny".into(),
        iterations: None,
        levels: 2,
        rewind_points: vec![0, 5],
        seeds: vec![0, 1],
        controls: Controls {
            random_prune: true,
            ..Controls::default()
        },
        stability: StabilitySpec {
            copies: vec![0, 7],
            conditions: vec![],
        },
    };
    Sweep::new(spec, &tiny_imp_config("sweep", 2), options()).unwrap()
}

/// Pauses at the first level it sees start, holding that level's lock.
struct PauseAtStart(Duration);

impl ImpObserver for PauseAtStart {
    fn level_started(&mut self, _: &str, _: usize, _: f64, _: (u64, u64)) {
        std::thread::sleep(std::mem::take(&mut self.0));
    }
}

/// Prints `TRAINED <condition> <level>` for each level this process
/// trains (not one it finds finished).
struct PrintTrained;

impl ImpObserver for PrintTrained {
    fn level_finished(&mut self, summary: &burn_lottery::imp::LevelSummary, skipped: bool) {
        if !skipped {
            println!("TRAINED {} {}", summary.condition, summary.level);
        }
    }
}

/// Runs the experiment of `seed` under `root` until it completes: a run
/// refused by another process's level lock prints `REFUSED` and starts
/// again (reading back what is finished) a moment later.
fn run_until_complete(root: &Path, seed: u64) {
    let imp = Imp::new(config(seed)).with_options(options());
    loop {
        match imp.run(root, &ndarray(), &data(), init, &mut PrintTrained) {
            Ok(_) => return,
            Err(ImpError::Store(StoreError::Locked(_))) => {
                println!("REFUSED");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// The children's entry point: does nothing unless [`CHILD`] is set.
#[test]
fn child_process_entry() {
    let Ok(task) = std::env::var(CHILD) else {
        return;
    };
    let words: Vec<&str> = task.split(' ').collect();
    let device = ndarray();
    match words.as_slice() {
        ["hold", lock] => {
            let _lock = FileLock::try_acquire(Path::new(lock)).unwrap();
            println!("held");
            std::thread::sleep(Duration::from_secs(600));
        }
        ["imp", root, seed, pause] => {
            let mut observer = PauseAtStart(Duration::from_millis(pause.parse().unwrap()));
            let imp = Imp::new(config(seed.parse().unwrap())).with_options(options());
            match imp.run(Path::new(root), &device, &data(), init, &mut observer) {
                Ok(_) => {}
                Err(ImpError::Store(StoreError::Locked(e))) => {
                    eprintln!("LOCKED: {e}");
                    std::process::exit(LOCKED_EXIT);
                }
                Err(e) => panic!("{e}"),
            }
        }
        ["retry", root, seed] => run_until_complete(Path::new(root), seed.parse().unwrap()),
        ["job", root, job] => {
            let job = job.parse().unwrap();
            let sweep = sweep();
            sweep
                .run_job(job, Path::new(root), &device, &data(), init, &mut Silent)
                .unwrap();
        }
        _ => panic!("unknown child task {task}"),
    }
}

/// This binary as a child doing `task` (output piped).
pub fn spawn_command(task: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "concurrency::child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, task)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts this binary as a child doing `task`.
pub fn spawn(task: &str) -> Child {
    spawn_command(task).spawn().unwrap()
}

/// A child killed when dropped (a failing test leaves no process behind).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The experiment of `seed` run in this process under `root`: its report.
fn sequential(root: &Path, seed: u64) -> Vec<u8> {
    let imp = Imp::new(config(seed)).with_options(options());
    imp.run(root, &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    report_of(root, seed)
}

fn report_of(root: &Path, seed: u64) -> Vec<u8> {
    let dir: PathBuf = root.join(config(seed).directory_name());
    let store = ExperimentStore::open_read_only(&dir).unwrap();
    store.verify_all().unwrap();
    store.read("report.csv").unwrap()
}

#[test]
fn a_second_handle_is_refused_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks/a.lock");
    let first = FileLock::try_acquire(&path).unwrap();
    match FileLock::try_acquire(&path) {
        Err(LockError::Held {
            holder: Some(holder),
            ..
        }) => {
            assert_eq!(holder.pid, std::process::id());
            assert!(!holder.host.is_empty());
        }
        other => panic!("expected Held, got {other:?}"),
    }
    drop(first);
    FileLock::try_acquire(&path).expect("released on drop");
}

#[test]
fn a_dead_holders_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("locks/main.level_00.lock");
    let mut holder = KillOnDrop(spawn(&format!("hold {}", lock.display())));
    // libtest prints the test's name and the child's output on one line.
    let held = BufReader::new(holder.0.stdout.as_mut().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.ends_with("held"));
    assert!(held, "the child takes the lock");
    match FileLock::try_acquire(&lock) {
        Err(LockError::Held {
            holder: Some(recorded),
            ..
        }) => assert_eq!(recorded.pid, holder.0.id()),
        other => panic!("expected the lock to be held by the child, got {other:?}"),
    }
    holder.0.kill().unwrap(); // SIGKILL: no cleanup in the child
    holder.0.wait().unwrap();
    let taken = FileLock::try_acquire(&lock).expect("the OS released the dead holder's lock");
    assert_eq!(
        FileLock::holder(taken.path()).unwrap().pid,
        std::process::id()
    );
}

#[test]
fn a_second_writer_is_refused_by_name_and_damages_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shared");
    // Both start at once; the one that takes the dense level first holds it
    // for two seconds, so the other meets the lock.
    let task = format!("imp {} 4 2000", root.display());
    let children = [spawn(&task), spawn(&task)];
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let refused = codes
        .iter()
        .position(|&c| c == Some(LOCKED_EXIT))
        .unwrap_or_else(|| panic!("one child must be refused; exit codes {codes:?}"));
    let winner = 1 - refused;
    assert_eq!(codes[winner], Some(0), "{}", stderr(&outputs[winner]));
    let message = stderr(&outputs[refused]);
    assert!(
        message.contains(&format!("pid {}", pids[winner])) && message.contains("main.level_00"),
        "the refusal names the holder and the level: {message}"
    );
    // Nothing damaged: every file verifies, and the results are those of an
    // undisturbed run.
    let reference = dir.path().join("reference");
    assert_eq!(report_of(&root, 4), sequential(&reference, 4));
}

#[test]
fn processes_on_one_root_give_the_sequential_results() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shared");
    let seeds = [1, 2, 3];
    let children: Vec<Child> = seeds
        .iter()
        .map(|s| spawn(&format!("imp {} {s} 0", root.display())))
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let reference = dir.path().join("reference");
    for seed in seeds {
        assert_eq!(
            report_of(&root, seed),
            sequential(&reference, seed),
            "seed {seed}"
        );
    }
    // The shared manifest of each experiment kept every process's records.
    for seed in seeds {
        let dir = root.join(config(seed).directory_name());
        let store = ExperimentStore::open_read_only(&dir).unwrap();
        assert!(store.contains("branches/random_prune/level_02/summary.json"));
    }
}

/// The files of the experiment of `seed` under `root`, without the lock
/// holder records (`locks/*.holder`: the host, pid and time of the last
/// process that took each lock, which differ between any two runs).
fn experiment_files(root: &Path, seed: u64) -> crate::common::compare::Files {
    let mut files = files_on_disk(&root.join(config(seed).directory_name()));
    files.retain(|name, _| !name.ends_with(".holder"));
    files
}

/// 2, then 4 processes started at once on one experiment directory. Every
/// file of the directory is compared with a single process's run (see
/// `common::compare`): byte for byte, except the lock holder records
/// (left out, see [`experiment_files`]), checkpoints (compared by the bits
/// of every tensor and of the optimizer state: burn stores each
/// parameter's random id, which differs between any two processes),
/// summaries (without their wall-clock time) and the manifest (without the
/// hashes of those two kinds of file).
#[test]
fn processes_on_one_experiment_train_each_level_once_and_equal_a_single_process() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    let imp = Imp::new(config(5)).with_options(options());
    let report = imp
        .run(&single, &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    let mut expected: Vec<String> = report
        .summaries
        .iter()
        .map(|s| format!("{} {}", s.condition, s.level))
        .collect();
    expected.sort();
    assert_eq!(report.trained_levels, 5, "3 main-line levels, 2 controls");
    let reference = experiment_files(&single, 5);
    for processes in [2, 4] {
        let root = dir.path().join(format!("shared-{processes}"));
        let task = format!("retry {} 5", root.display());
        let children: Vec<Child> = (0..processes).map(|_| spawn(&task)).collect();
        let (mut trained, mut refusals) = (Vec::new(), 0);
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", stderr(&output));
            // libtest prints the test's name before the child's first line.
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                if let Some(at) = line.find("TRAINED ") {
                    trained.push(line[at + "TRAINED ".len()..].to_string());
                }
                refusals += line.matches("REFUSED").count();
            }
        }
        trained.sort();
        // Every level was trained by exactly one process.
        assert_eq!(trained, expected, "{processes} processes");
        let files = experiment_files(&root, 5);
        let compared = compare_files(&files, &reference, &|| init(&ndarray(), 0))
            .unwrap_or_else(|e| panic!("{processes} processes: {e}"));
        assert!(compared > 20, "{compared} files");
        println!(
            "{processes} processes on one experiment: {} levels trained once each, {refusals} runs refused by a level lock and restarted, {compared} files equal to a single process's",
            trained.len()
        );
    }
}
