//! Killed at any instant, resumed, same answer: optimizer state included.
//!
//! A `harness = false` test. For each of three small experiments on ndarray
//! (the synthetic LeNet 64-24-16-10 for 240 iterations per level with a
//! progress checkpoint every 40; the same with RigL, whose mask changes
//! every 30 steps as a level trains; and a ResNet-8 with BatchNorm trained
//! with augmentation for 6 with one every 3; 2 pruning levels plus the
//! random-pruning control) it
//!
//! 1. runs the experiment uninterrupted in a child process;
//! 2. runs it again in another directory, killing the child with SIGKILL
//!    once, after a delay drawn uniformly over 1.25 times the reference run's measured
//!    duration, so that the random kills land in each phase in proportion
//!    to the time the run spends there (the runs are long enough that
//!    training steps and file writes take most of it, not start-up); then
//!    restarts it until it completes. Until every phase has been hit, each
//!    restarted session is instead killed at its next entry into a phase
//!    not hit yet, so that every phase is covered, in restarted sessions
//!    too. Killed runs (each in a fresh directory) repeat until the wanted
//!    number of random kills;
//! 3. compares both directories file by file (see `common::compare`):
//!    every file a level stores, checkpoints by the bits of every tensor and
//!    of the optimizer state, and every periodic checkpoint the killed run
//!    wrote (the state training resumed from, optimizer included) with the
//!    uninterrupted run's at the same level and iteration.
//!
//! The child records where it is in a small side file (rewritten in place
//! at every phase change: start-up (exec, main, opening the experiment up
//! to the first training step or file written), each training step,
//! evaluation, each file-system operation and how many bytes of a write are
//! done, and the work between file operations: capturing checkpoints,
//! pruning, the report); the parent reads it after each kill and prints
//! the distribution next to the share of the reference run's time each
//! phase took (the reference run's phase, polled every half millisecond).
//!
//! `KILL_RESUME_KILLS=<n>` repeats killed runs until `n` random kills
//! (default 12, the CI size; `KILL_RESUME_KILLS=100` is the long mode),
//! `KILL_RESUME_MODEL=lenet|rigl|resnet` runs one experiment,
//! `KILL_RESUME_SEED=<n>` replays a schedule (approximately: the timing of
//! a kill depends on the machine), `KILL_RESUME_KEEP=1` keeps the
//! directories. With `--child <model> <dir>` the binary is the child.

mod common;

use std::path::Path;
use std::process::ExitCode;

use burn::module::Module;
use burn::tensor::Device;
use burn_lottery::data::Augmentation;
use burn_lottery::imp::{
    Controls, ExperimentData, Imp, ImpConfig, PruningMethod, RunOptions, Seeds,
};
use burn_lottery::models::{LeNet, ResNet, ResNetConfig};
use burn_lottery::prune::{DynamicConfig, MagnitudePrunerConfig};
use common::{data, init, ndarray, tiny_recipe};

/// The two experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    LeNet,
    /// The LeNet experiment with RigL as its pruning method.
    Rigl,
    ResNet,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Self::LeNet => "lenet",
            Self::Rigl => "rigl",
            Self::ResNet => "resnet",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::LeNet, Self::Rigl, Self::ResNet]
            .into_iter()
            .find(|m| m.name() == name)
    }

    fn config(self) -> ImpConfig {
        let mut training = tiny_recipe();
        // Long enough that training steps take a real share of the run,
        // not only start-up and file syncs (a LeNet step is under a
        // millisecond, an fsync a few).
        training.training_iterations = 240;
        if self == Self::ResNet {
            training.augment = true;
            training.batch_size = 8;
            training.training_iterations = 6;
        }
        ImpConfig {
            name: format!("kill_{}", self.name()),
            training,
            pruning: MagnitudePrunerConfig::new(0.2),
            levels: 2,
            rewind_iteration: 2,
            seeds: Seeds::all(3),
            method: match self {
                Self::Rigl => PruningMethod::Dynamic(DynamicConfig::rigl().with_update_every(30)),
                _ => PruningMethod::default(),
            },
            controls: Controls {
                random_reinit: false,
                random_prune: true,
                data_orders: vec![],
            },
            ..ImpConfig::default()
        }
    }

    fn data(self) -> ExperimentData {
        let mut data = data();
        if self == Self::ResNet {
            data.augmentation = Some(Augmentation {
                padding: 1,
                horizontal_flip: true,
            });
        }
        data
    }
}

/// ResNet-8 (16-32-64 channels, BatchNorm) for the 8x8 synthetic images.
fn resnet(device: &Device, seed: u64) -> ResNet {
    ResNetConfig::new()
        .with_depth(8)
        .with_input_channels(1)
        .init_seeded(device, seed)
}

fn lenet(device: &Device, seed: u64) -> LeNet {
    init(device, seed)
}

fn options(model: Model) -> RunOptions {
    RunOptions {
        // Six progress checkpoints per LeNet network, two per ResNet one.
        checkpoint_every: match model {
            Model::LeNet | Model::Rigl => 40,
            Model::ResNet => 3,
        },
        log_every: 2,
        eval_batch_size: 50,
        ..RunOptions::default()
    }
}

/// Environment variable: the side file the child writes its phase to.
const PHASE_FILE: &str = "KILL_RESUME_PHASE_FILE";
/// Environment variable: a directory the child copies every checkpoint it
/// stores to.
const ARCHIVE: &str = "KILL_RESUME_ARCHIVE";
/// Environment variable: `<category>` or `<category>@<n>`: the child asks
/// to be killed at its (n+1)-th entry into a phase of that category.
const KILL_AT: &str = "KILL_RESUME_AT";
/// The line with which the child asks the parent to kill it (SIGKILL) now.
const KILL_ME: &str = "kill me now";
/// Bytes of the side file; a phase is padded with spaces to this length.
const PHASE_BYTES: usize = 160;
/// The phase the parent writes before it starts a child.
const EXEC: &str = "exec";

/// The category of a phase, as the report counts it.
fn category(phase: &str) -> &'static str {
    let op = phase.split_whitespace().next().unwrap_or("");
    match op {
        EXEC => "start-up: exec and load",
        "main" => "start-up: main",
        "opening" => "start-up: opening the experiment",
        "training" => "training step",
        "evaluation" => "evaluation",
        "between" => "between file operations",
        "write" => "file: write (part way)",
        "create" => "file: create",
        "sync" => "file: sync",
        "rename" => "file: rename",
        "sync_dir" => "file: sync directory",
        "create_dir" => "file: create directory",
        "remove" => "file: remove",
        "read" | "read_dir" | "stat" => "file: read or list",
        _ => "other",
    }
}

/// The categories a CI-sized run must hit.
const REQUIRED: [&str; 8] = [
    "start-up: main",
    "training step",
    "evaluation",
    "between file operations",
    "file: write (part way)",
    "file: sync",
    "file: rename",
    "file: sync directory",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let (Some(model), Some(dir)) = (
            args.get(i + 1).and_then(|m| Model::parse(m)),
            args.get(i + 2),
        ) else {
            eprintln!("--child needs a model (lenet, rigl, resnet) and a directory");
            return ExitCode::from(2);
        };
        return match model {
            Model::LeNet | Model::Rigl => child::run(model, Path::new(dir), lenet),
            Model::ResNet => child::run(model, Path::new(dir), resnet),
        };
    }
    // libtest's options (--nocapture, --test-threads=N, ...) mean nothing
    // here; a name filter that does not match this test skips it, loudly.
    const WITH_VALUE: [&str; 5] = ["--test-threads", "--skip", "--format", "--color", "-Z"];
    let filters: Vec<&String> = args
        .windows(2)
        .filter(|pair| !pair[1].starts_with('-') && !WITH_VALUE.contains(&pair[0].as_str()))
        .map(|pair| &pair[1])
        .collect();
    let skipped = args
        .windows(2)
        .any(|pair| pair[0] == "--skip" && "kill_resume".contains(pair[1].as_str()));
    if skipped {
        println!("kill_resume: skipped (--skip)");
        return ExitCode::SUCCESS;
    }
    if !filters.is_empty() && !filters.iter().any(|f| "kill_resume".contains(f.as_str())) {
        println!("kill_resume: not selected by the filter {filters:?}");
        return ExitCode::SUCCESS;
    }
    parent::run()
}

/// The child process: one (possibly resumed) run of the experiment, which
/// records its phase as it goes.
mod child {
    use super::*;
    use burn::tensor::Tensor;
    use burn_lottery::imp::ImpObserver;
    use burn_lottery::io::{EntryKind, FileSystem, FsHandle, RealFs, WritableFile};
    use burn_lottery::task::{Batches, DataOrder, MetricSpec, Metrics, Split, Task, TaskError};
    use std::io::{self, Write};
    use std::ops::Range;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    static PHASE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    /// The kill target: category and how many entries to let pass.
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static ENTRIES: AtomicU64 = AtomicU64::new(0);
    /// The branch and level in progress, for the phase text.
    static CONTEXT: Mutex<String> = Mutex::new(String::new());
    static ARCHIVED: AtomicU64 = AtomicU64::new(0);
    /// Whether the session has started working (its first training step
    /// or its first file created); before, it is opening the experiment.
    static WORKING: AtomicBool = AtomicBool::new(false);

    /// Records `phase` in the side file (in place: the parent reads the
    /// last one after a kill), and dies there if it is the kill target.
    fn set_phase(phase: &str) {
        if phase.starts_with("training") || phase.starts_with("create ") {
            WORKING.store(true, Ordering::SeqCst);
        }
        let opening;
        let phase = if phase.starts_with("between") && !WORKING.load(Ordering::SeqCst) {
            opening = format!("opening the experiment ({phase})");
            opening.as_str()
        } else {
            phase
        };
        let context = CONTEXT.lock().map(|c| c.clone()).unwrap_or_default();
        let text = format!("{phase} [{context}]");
        if let Some(Some(file)) = PHASE.get() {
            let mut bytes = text.into_bytes();
            bytes.resize(PHASE_BYTES, b' ');
            let _ = file.write_at(&bytes, 0);
        }
        if let Some(Some((target, skip))) = TARGET.get()
            && category(phase) == target
            && ENTRIES.fetch_add(1, Ordering::SeqCst) == *skip
        {
            kill_self();
        }
    }

    /// Asks the parent for SIGKILL and waits for it; it does not return.
    fn kill_self() -> ! {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{KILL_ME}");
        let _ = out.flush();
        std::thread::sleep(std::time::Duration::from_secs(60));
        eprintln!("the parent did not kill the child");
        std::process::abort()
    }

    /// The experiment's task, recording training steps and evaluations.
    struct PhaseTask(ExperimentData);

    impl<M: Module> Task<M> for PhaseTask
    where
        ExperimentData: Task<M>,
    {
        type Batch = <ExperimentData as Task<M>>::Batch;

        fn check_model(&self, model: &M, device: &Device) -> Result<(), TaskError> {
            self.0.check_model(model, device)
        }

        fn batches<'a>(
            &'a self,
            order: &DataOrder,
            iterations: Range<u64>,
            device: &'a Device,
        ) -> Result<Batches<'a, Self::Batch>, TaskError> {
            self.0.batches(order, iterations, device)
        }

        fn loss(&self, model: &M, batch: Self::Batch) -> Tensor<1> {
            set_phase("training step");
            self.0.loss(model, batch)
        }

        fn evaluate(
            &self,
            model: &M,
            split: Split,
            batch_size: usize,
            device: &Device,
        ) -> Result<Metrics, TaskError> {
            set_phase("evaluation");
            let metrics = self.0.evaluate(model, split, batch_size, device);
            set_phase("between file operations (after evaluation)");
            metrics
        }

        fn metrics(&self) -> MetricSpec {
            <ExperimentData as Task<M>>::metrics(&self.0)
        }
    }

    /// Keeps the phase text's context up to date.
    struct Context;

    impl ImpObserver for Context {
        fn level_started(&mut self, condition: &str, level: usize, _d: f64, it: (u64, u64)) {
            if let Ok(mut c) = CONTEXT.lock() {
                *c = format!("{condition} level {level} from {}", it.0);
            }
        }
    }

    /// The real file system, recording every operation as the phase.
    #[derive(Debug)]
    struct PhaseFs {
        archive: Option<PathBuf>,
    }

    /// A path's last three components, for a temporary file those of its
    /// target (e.g. `random_prune/level_01/progress.ckpt`).
    fn name(path: &Path) -> String {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let file = file.unwrap_or_default();
        let target = if burn_lottery::io::is_temporary_file_name(&file) {
            file[1..]
                .rsplit_once(".tmp-")
                .map_or(file.clone(), |(t, _)| t.into())
        } else {
            file
        };
        let mut parts: Vec<String> = path
            .parent()
            .into_iter()
            .flat_map(|p| p.components().rev().take(2))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.reverse();
        parts.push(target);
        parts.join("/")
    }

    fn done<T>(result: io::Result<T>) -> io::Result<T> {
        set_phase("between file operations");
        result
    }

    struct PhaseFile<'a> {
        inner: Box<dyn WritableFile + 'a>,
        name: String,
    }

    impl WritableFile for PhaseFile<'_> {
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            let total = bytes.len();
            for (i, chunk) in bytes.chunks(1024).enumerate() {
                set_phase(&format!("write {} bytes {}/{total}", self.name, i * 1024));
                self.inner.write_all(chunk)?;
            }
            done(Ok(()))
        }

        fn sync(&mut self) -> io::Result<()> {
            set_phase(&format!("sync {}", self.name));
            done(self.inner.sync())
        }
    }

    impl PhaseFs {
        fn archive(&self, path: &Path) {
            let Some(dir) = &self.archive else { return };
            if path.extension().is_none_or(|e| e != "ckpt") {
                return;
            }
            let n = ARCHIVED.fetch_add(1, Ordering::SeqCst);
            let label = name(path).replace('/', "__");
            let target = dir.join(format!("{}-{n:05}-{label}", std::process::id()));
            let _ = std::fs::copy(path, target);
        }
    }

    impl FileSystem for PhaseFs {
        fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile + '_>> {
            set_phase(&format!("create {}", name(path)));
            let inner = RealFs.create(path)?;
            set_phase("between file operations");
            Ok(Box::new(PhaseFile {
                inner,
                name: name(path),
            }))
        }

        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            set_phase(&format!("rename {}", name(to)));
            RealFs.rename(from, to)?;
            self.archive(to);
            done(Ok(()))
        }

        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            set_phase(&format!("sync_dir {}", name(dir)));
            done(RealFs.sync_dir(dir))
        }

        fn create_dir(&self, path: &Path) -> io::Result<()> {
            set_phase(&format!("create_dir {}", name(path)));
            done(RealFs.create_dir(path))
        }

        fn remove_file(&self, path: &Path) -> io::Result<()> {
            set_phase(&format!("remove {}", name(path)));
            done(RealFs.remove_file(path))
        }

        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            set_phase(&format!("read {}", name(path)));
            done(RealFs.read(path))
        }

        fn read_dir(&self, dir: &Path) -> io::Result<Vec<(String, EntryKind)>> {
            set_phase(&format!("read_dir {}", name(dir)));
            done(RealFs.read_dir(dir))
        }

        fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
            set_phase(&format!("stat {}", name(path)));
            done(RealFs.kind(path))
        }

        fn supports_locks(&self) -> bool {
            RealFs.supports_locks()
        }
    }

    pub fn run<M: Module>(model: Model, dir: &Path, init: fn(&Device, u64) -> M) -> ExitCode
    where
        ExperimentData: Task<M>,
    {
        let phase_file = std::env::var_os(PHASE_FILE).and_then(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .ok()
        });
        let _ = PHASE.set(phase_file);
        let target = std::env::var(KILL_AT)
            .ok()
            .map(|spec| match spec.rsplit_once('@') {
                Some((category, n)) => (category.to_string(), n.parse().unwrap_or(0)),
                None => (spec, 0),
            });
        let _ = TARGET.set(target);
        set_phase("main");
        let fs = PhaseFs {
            archive: std::env::var_os(ARCHIVE).map(PathBuf::from),
        };
        let options = RunOptions {
            file_system: FsHandle::new(fs),
            ..options(model)
        };
        let imp = Imp::new(model.config()).with_options(options);
        let task = PhaseTask(model.data());
        match imp.run(dir, &ndarray(), &task, init, &mut Context) {
            Ok(_) => {
                set_phase("done");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("the experiment failed: {e}");
                ExitCode::from(3)
            }
        }
    }
}

/// The parent: reference run, killed run, comparison, report.
#[cfg(unix)]
mod parent {
    use super::*;
    use common::compare::{compare_files, files_on_disk, stored_value};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::process::ExitStatusExt;
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::time::{Duration, Instant};

    /// Random kills (one per killed run) by default: the CI size.
    const DEFAULT_KILLS: u64 = 12;
    /// A run that needs more sessions than this is not converging.
    const MAX_SESSIONS: usize = 2000;

    pub fn run() -> ExitCode {
        let models = match std::env::var("KILL_RESUME_MODEL") {
            Ok(name) => match Model::parse(&name) {
                Some(model) => vec![model],
                None => {
                    eprintln!("KILL_RESUME_MODEL must be lenet, rigl or resnet, not {name:?}");
                    return ExitCode::FAILURE;
                }
            },
            Err(_) => vec![Model::LeNet, Model::Rigl, Model::ResNet],
        };
        for model in models {
            if let Err(message) = harness(model) {
                eprintln!("kill_resume ({}) FAILED: {message}", model.name());
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    }

    /// Where one experiment's runs live.
    struct Work {
        phase: PathBuf,
        logs: PathBuf,
    }

    impl Work {
        fn spawn(
            &self,
            model: Model,
            dir: &Path,
            log: &Path,
            archive: &Path,
            kill_at: Option<&str>,
        ) -> Result<Child, String> {
            let mut phase = EXEC.as_bytes().to_vec();
            phase.resize(PHASE_BYTES, b' ');
            std::fs::write(&self.phase, phase).map_err(|e| e.to_string())?;
            let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
            let err = out.try_clone().map_err(|e| e.to_string())?;
            let mut command = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
            command
                .arg("--child")
                .arg(model.name())
                .arg(dir)
                .env(PHASE_FILE, &self.phase)
                .env(ARCHIVE, archive)
                .env_remove(KILL_AT)
                .stdin(Stdio::null())
                .stderr(err);
            match kill_at {
                Some(at) => command.env(KILL_AT, at).stdout(Stdio::piped()),
                None => command.stdout(out),
            };
            command.spawn().map_err(|e| e.to_string())
        }

        fn phase(&self) -> String {
            std::fs::read_to_string(&self.phase)
                .unwrap_or_default()
                .trim_end()
                .to_string()
        }
    }

    fn judge(status: ExitStatus, log: &Path) -> Result<bool, String> {
        if status.success() {
            Ok(true)
        } else if status.signal() == Some(9) {
            Ok(false)
        } else {
            Err(format!(
                "the child failed ({status}); its output:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ))
        }
    }

    /// Waits `delay` (or until the child exits), then SIGKILLs it; returns
    /// whether it completed.
    fn kill_after(child: &mut Child, delay: Duration, log: &Path) -> Result<bool, String> {
        let deadline = Instant::now() + delay;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return judge(status, log);
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().map_err(|e| e.to_string())?;
        let status = child.wait().map_err(|e| e.to_string())?;
        judge(status, log)
    }

    /// Copies the child's stdout to its log until it exits or asks to be
    /// killed; then kills it. Returns whether it completed.
    fn kill_on_request(child: &mut Child, log: &Path) -> Result<bool, String> {
        let stdout = child
            .stdout
            .take()
            .ok_or("the child's stdout is not piped")?;
        let mut copy = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .map_err(|e| e.to_string())?;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if line == KILL_ME {
                child.kill().map_err(|e| e.to_string())?;
                break;
            }
            writeln!(copy, "{line}").map_err(|e| e.to_string())?;
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        judge(status, log)
    }

    /// Where the kills of one experiment landed.
    #[derive(Default)]
    struct Landings {
        random: BTreeMap<&'static str, usize>,
        targeted: BTreeMap<&'static str, usize>,
        /// How often the reference run was seen in each phase category.
        reference: BTreeMap<&'static str, usize>,
        /// Examples of phases inside a write.
        writes: Vec<String>,
        sessions: usize,
        rounds: usize,
        /// Killed runs that completed before their random kill.
        past_end: usize,
    }

    impl Landings {
        fn kills(&self) -> usize {
            self.random_kills() + self.targeted.values().sum::<usize>()
        }

        fn random_kills(&self) -> usize {
            self.random.values().sum()
        }

        /// The required categories no kill has landed in yet.
        fn missing(&self) -> Vec<&'static str> {
            REQUIRED
                .iter()
                .copied()
                .filter(|c| !self.random.contains_key(c) && !self.targeted.contains_key(c))
                .collect()
        }

        fn print(&self, seconds: f64) {
            println!(
                "  killed runs: {} ({} completed before their random kill), {} kills in {} sessions, {seconds:.1} s: {} at a random time, {} at the next entry into a phase not hit yet",
                self.rounds,
                self.past_end,
                self.kills(),
                self.sessions,
                self.random_kills(),
                self.targeted.values().sum::<usize>()
            );
            println!(
                "  where the kills landed (random / targeted), and the share of the reference run's time in each phase:"
            );
            let all: std::collections::BTreeSet<_> = self
                .random
                .keys()
                .chain(self.targeted.keys())
                .chain(self.reference.keys())
                .collect();
            let polls = self.reference.values().sum::<usize>().max(1) as f64;
            for c in all {
                println!(
                    "    {c:<34} {:>4} / {:<4} {:>5.1}%",
                    self.random.get(c).unwrap_or(&0),
                    self.targeted.get(c).unwrap_or(&0),
                    100.0 * *self.reference.get(c).unwrap_or(&0) as f64 / polls
                );
            }
            for w in self.writes.iter().take(12) {
                println!("    e.g. {w}");
            }
        }
    }

    fn env_number(name: &str) -> Option<u64> {
        std::env::var(name).ok().and_then(|s| s.parse().ok())
    }

    /// The uninterrupted run into `a`: its duration, the time it took to
    /// start (until its first training step or file written), and how
    /// often each phase category was seen when polling its phase (every
    /// half millisecond or so: the share of the run's time each takes).
    fn reference_run(
        model: Model,
        work: &Work,
        a: &Path,
        archive: &Path,
    ) -> Result<(Duration, Duration, BTreeMap<&'static str, usize>), String> {
        let log = work.logs.join("reference.txt");
        let t0 = Instant::now();
        let mut child = work.spawn(model, a, &log, archive, None)?;
        let mut startup = None;
        let mut seen = BTreeMap::new();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            let phase = category(&work.phase());
            *seen.entry(phase).or_default() += 1;
            if startup.is_none() && !phase.starts_with("start-up") && phase != "other" {
                startup = Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        let reference = t0.elapsed();
        if !judge(status, &log)? {
            return Err("the reference run was killed".into());
        }
        Ok((reference, startup.unwrap_or(reference), seen))
    }

    /// One session of the killed run into `b`; returns whether it completed.
    fn session(
        model: Model,
        work: &Work,
        (b, archive): (&Path, &Path),
        aim: Option<&str>,
        delay: Duration,
        landings: &mut Landings,
    ) -> Result<bool, String> {
        landings.sessions += 1;
        if landings.sessions > MAX_SESSIONS {
            return Err(format!("no completion in {MAX_SESSIONS} sessions"));
        }
        let log = work
            .logs
            .join(format!("session-{:04}.txt", landings.sessions));
        let completed = match aim {
            // The next entry after the resumed session's start: one that
            // always comes while the run is not complete.
            Some(category) => {
                let mut child =
                    work.spawn(model, b, &log, archive, Some(&format!("{category}@0")))?;
                kill_on_request(&mut child, &log)?
            }
            None => {
                let mut child = work.spawn(model, b, &log, archive, None)?;
                kill_after(&mut child, delay, &log)?
            }
        };
        if !completed {
            let phase = work.phase();
            let counts = match aim {
                Some(_) => &mut landings.targeted,
                None => &mut landings.random,
            };
            *counts.entry(category(&phase)).or_default() += 1;
            if phase.starts_with("write ") && aim.is_none() {
                landings.writes.push(phase);
            }
        }
        Ok(completed)
    }

    /// The random delays span this multiple of the reference run's
    /// duration, so that a killed run slower than the reference (file
    /// syncs vary with the disk's load) is still covered to its end; a
    /// delay past the end of a run leaves it unkilled, and another killed
    /// run follows.
    const DELAY_MARGIN: f64 = 1.25;

    /// A delay no session outlives: a session given it runs to completion.
    const NO_KILL: Duration = Duration::from_secs(3600);

    /// One killed run of the experiment in `b`: its first session is killed
    /// after a delay drawn uniformly over the reference run's duration (times
    /// [`DELAY_MARGIN`]; so
    /// that the random kills land in each phase in proportion to the time
    /// the run spends in it), then while a required phase has not been hit,
    /// each resumed session is killed at its next entry into one of them;
    /// the last session runs to completion.
    fn killed_run(
        model: Model,
        work: &Work,
        dirs: (&Path, &Path),
        reference: Duration,
        rng: &mut StdRng,
        landings: &mut Landings,
    ) -> Result<(), String> {
        landings.rounds += 1;
        let delay = reference.mul_f64(DELAY_MARGIN * rng.random_range(0.0..1.0));
        if session(model, work, dirs, None, delay, landings)? {
            landings.past_end += 1;
            return Ok(());
        }
        loop {
            let missing = landings.missing();
            let aim = (!missing.is_empty()).then(|| missing[rng.random_range(0..missing.len())]);
            if session(model, work, dirs, aim, NO_KILL, landings)? {
                return Ok(());
            }
        }
    }

    fn harness(model: Model) -> Result<(), String> {
        let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (root, _temp) = if std::env::var_os("KILL_RESUME_KEEP").is_some() {
            let kept = temp.keep();
            println!("directories kept in {}", kept.display());
            (kept, None)
        } else {
            (temp.path().to_path_buf(), Some(temp))
        };
        let work = Work {
            phase: root.join("phase.txt"),
            logs: root.join("logs"),
        };
        let (a, archive_a) = (root.join("a"), root.join("archive-a"));
        for dir in [&work.logs, &archive_a, &root.join("archive-warm-up")] {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        println!("kill_resume, {}:", model.name());
        // A first run loads the binary into the page cache (a cold start
        // can take seconds); the second, timed, is the reference.
        reference_run(
            model,
            &work,
            &root.join("warm-up"),
            &root.join("archive-warm-up"),
        )?;
        let (reference, startup, shares) = reference_run(model, &work, &a, &archive_a)?;
        let seed = env_number("KILL_RESUME_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        println!(
            "  reference run {:.2} s (start-up {:.2} s); one kill per killed run after a delay uniform in 0..{:.2} s; seed {seed} (replay with KILL_RESUME_SEED={seed})",
            reference.as_secs_f64(),
            startup.as_secs_f64(),
            reference.as_secs_f64() * DELAY_MARGIN
        );
        // Killed runs, each in a fresh directory and compared, until
        // KILL_RESUME_KILLS random kills in all.
        let wanted = env_number("KILL_RESUME_KILLS").unwrap_or(DEFAULT_KILLS) as usize;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut landings = Landings {
            reference: shares,
            ..Landings::default()
        };
        let mut compared = (0, 0);
        let started = Instant::now();
        while landings.random_kills() < wanted {
            if landings.rounds >= 5 * wanted + 20 {
                return Err(format!(
                    "{} killed runs, {} of them completed before their kill: the runs are faster than the reference",
                    landings.rounds, landings.past_end
                ));
            }
            let round = landings.rounds + 1;
            let (b, archive_b) = (
                root.join(format!("b{round}")),
                root.join(format!("archive-b{round}")),
            );
            std::fs::create_dir_all(&archive_b).map_err(|e| e.to_string())?;
            killed_run(
                model,
                &work,
                (&b, &archive_b),
                reference,
                &mut rng,
                &mut landings,
            )?;
            let dir = model.config().directory_name();
            let same = match model {
                Model::LeNet | Model::Rigl => {
                    compare_all(&a, &b, &dir, &archive_a, &archive_b, &|| {
                        lenet(&ndarray(), 0)
                    })?
                }
                Model::ResNet => compare_all(&a, &b, &dir, &archive_a, &archive_b, &|| {
                    resnet(&ndarray(), 0)
                })?,
            };
            compared = (compared.0 + same.0, compared.1 + same.1);
        }
        landings.print(started.elapsed().as_secs_f64());
        println!(
            "  compared {} stored files and {} periodic checkpoints the killed runs resumed from: all identical, optimizer state included",
            compared.0, compared.1
        );
        let missing = landings.missing();
        if !missing.is_empty() {
            return Err(format!("no kill landed in {missing:?}; seed {seed}"));
        }
        Ok(())
    }

    /// Compares the experiments under `a` and `b`, and every periodic
    /// checkpoint of `b`'s archive with `a`'s at the same level and
    /// iteration; returns how many files and checkpoints were compared.
    fn compare_all<M: Module>(
        a: &Path,
        b: &Path,
        dir: &str,
        archive_a: &Path,
        archive_b: &Path,
        template: &dyn Fn() -> M,
    ) -> Result<(usize, usize), String> {
        let (fa, fb) = (files_on_disk(&a.join(dir)), files_on_disk(&b.join(dir)));
        let leftovers: Vec<_> = fb
            .keys()
            .filter(|k| k.contains("progress") || k.contains(".tmp-"))
            .collect();
        if !leftovers.is_empty() {
            return Err(format!("files left over: {leftovers:?}"));
        }
        let files = compare_files(&fa, &fb, template)?;
        for required in ["mask.bin", "final.ckpt", "metrics.csv", "summary.json"] {
            let n = fa.keys().filter(|k| k.ends_with(required)).count();
            if n < 5 {
                return Err(format!(
                    "expected 5 trained networks' {required}, found {n}"
                ));
            }
        }
        // Periodic checkpoints by (level directory, iteration).
        let by_point = |archive: &Path| -> Result<BTreeMap<(String, u64), Vec<u8>>, String> {
            let mut out = BTreeMap::new();
            for (name, bytes) in files_on_disk(archive) {
                let Some((_, label)) = name.split_once('-') else {
                    continue;
                };
                let Some((_, label)) = label.split_once('-') else {
                    continue;
                };
                if !label.ends_with("progress.ckpt") {
                    continue;
                }
                // A copy made while the child was killed may be cut short.
                let Ok(checkpoint) = burn_lottery::rewind::RewindCheckpoint::from_bytes(&bytes)
                else {
                    continue;
                };
                out.insert((label.to_string(), checkpoint.iteration()), bytes);
            }
            Ok(out)
        };
        let (pa, pb): (BTreeMap<_, _>, BTreeMap<_, _>) =
            (by_point(archive_a)?, by_point(archive_b)?);
        let mut compared = 0;
        for (point, bytes) in &pb {
            let reference = pa
                .get(point)
                .ok_or_else(|| format!("the reference has no checkpoint {point:?}"))?;
            let (x, y) = (
                stored_value("progress.ckpt", reference, template)?,
                stored_value("progress.ckpt", bytes, template)?,
            );
            if x != y {
                return Err(format!("the periodic checkpoint {point:?} differs"));
            }
            compared += 1;
        }
        if compared == 0 {
            return Err("no periodic checkpoint of the killed run to compare".into());
        }
        Ok((files, compared))
    }
}

#[cfg(not(unix))]
mod parent {
    use super::*;

    pub fn run() -> ExitCode {
        println!("kill_resume: needs Unix signals (SIGKILL); not run on this platform");
        ExitCode::SUCCESS
    }
}
