//! Kill at any moment, resume, same answer.
//!
//! A `harness = false` test. Run plainly (as `cargo test` does) it
//!
//! 1. runs a small IMP experiment (LeNet 64-24-16-10 on synthetic images,
//!    ndarray, 3 pruning levels plus the random-pruning control, a progress
//!    checkpoint every 3 iterations) uninterrupted in a child process;
//! 2. runs the same experiment again in another directory, killing the child
//!    with SIGKILL again and again and restarting it until it completes: some
//!    kills after a random delay, most at a chosen step of a chosen file
//!    write (temporary file created, written and synced,
//!    renamed; through [`burn_lottery::io::write_hook`]), so that kills land
//!    in checkpoint, mask, manifest and summary writes;
//! 3. compares both directories file by file: masks, metrics, sparsity
//!    reports, configuration and report byte for byte; checkpoints by their
//!    iteration and the bits of every tensor (the files hold burn's
//!    parameter ids, which are random per process); summaries except their
//!    wall-clock time; the manifests except the records of those files. No
//!    file may be left over (temporary or progress files), and the killed
//!    run's manifest must verify.
//!
//! Every kill is `Child::kill` (SIGKILL) from the parent: a child that
//! reaches its kill point inside a write asks for it on stdout and waits.
//!
//! It prints the kills survived and where they landed. The kill schedule
//! comes from a seeded generator: `KILL_RESUME_SEED=<n>` replays a schedule
//! (the seed is printed; the write kills replay exactly, the timed ones only
//! approximately). With `--child <dir>` the binary is the child: it runs the
//! experiment into `<dir>` and exits 0 when it is complete.

mod common;

use std::path::Path;
use std::process::ExitCode;

use burn_lottery::imp::{Controls, Imp, ImpConfig, ImpObserver, RunOptions, Seeds};
use burn_lottery::prune::MagnitudePrunerConfig;
use common::{data, init, ndarray, tiny_recipe};

/// The experiment both runs perform.
fn config() -> ImpConfig {
    ImpConfig {
        name: "kill".into(),
        training: tiny_recipe(),
        pruning: MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        levels: 3,
        rewind_iteration: 5,
        seeds: Seeds::all(3),
        controls: Controls {
            random_reinit: false,
            random_prune: true,
            data_orders: vec![],
        },
        ..ImpConfig::default()
    }
}

fn options() -> RunOptions {
    RunOptions {
        checkpoint_every: 3,
        log_every: 5,
        eval_batch_size: 50,
        ..RunOptions::default()
    }
}

/// Environment variable: where the child kills itself, either a write event
/// number (1-based, counting every step of every write of the session) or
/// `<file name>:<step>` (the first time that step of a write of that file is
/// reached) or `manifest:<file name>:<step>` (that step of the manifest
/// write that records the file). Steps: `created`, `synced`, `renamed`.
const KILL_AT: &str = "KILL_RESUME_AT";
/// Environment variable: the file the child appends where it killed itself.
const LANDING_LOG: &str = "KILL_RESUME_LANDINGS";
/// Environment variable: a file to which the child appends the path of
/// every file it finishes writing, in order.
const TRACE: &str = "KILL_RESUME_TRACE";
/// The line with which the child asks the parent to kill it (SIGKILL) now.
const KILL_ME: &str = "kill me now";
/// The line the child prints when the experiment is complete.
const DONE: &str = "write events:";
/// The child prints this before each stored file it was told was discarded.
const DISCARDED: &str = "discarded ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let Some(dir) = args.get(i + 1) else {
            eprintln!("--child needs a directory");
            return ExitCode::from(2);
        };
        return child::run(Path::new(dir));
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

/// The child process: one (possibly resumed) run of the experiment.
mod child {
    use super::*;
    use burn_lottery::io::write_hook::{self, WritePoint};
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    static EVENTS: AtomicU64 = AtomicU64::new(0);
    /// The kill point, parsed from [`KILL_AT`].
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    /// The last file written other than the manifest.
    static LAST_FILE: Mutex<String> = Mutex::new(String::new());

    enum Target {
        Event(u64),
        File {
            manifest: bool,
            name: String,
            step: String,
        },
    }

    fn parse_target(spec: &str) -> Option<Target> {
        if let Ok(n) = spec.parse() {
            return Some(Target::Event(n));
        }
        let (manifest, rest) = match spec.strip_prefix("manifest:") {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (name, step) = rest.rsplit_once(':')?;
        Some(Target::File {
            manifest,
            name: name.to_string(),
            step: step.to_string(),
        })
    }

    /// Reports discarded files on stdout, where the parent collects them.
    struct ReportDiscards;

    impl ImpObserver for ReportDiscards {
        fn file_discarded(&mut self, file: &Path, reason: &str) {
            println!("{DISCARDED}{}: {reason}", file.display());
        }
    }

    pub fn step_name(point: WritePoint) -> &'static str {
        match point {
            WritePoint::TempCreated => "created",
            WritePoint::TempSynced => "synced",
            WritePoint::Renamed => "renamed",
        }
    }

    fn hook(path: &Path, point: WritePoint) {
        let n = EVENTS.fetch_add(1, Ordering::SeqCst) + 1;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut last = LAST_FILE.lock().unwrap_or_else(|e| e.into_inner());
        let is_manifest = name == "manifest.json";
        let step = step_name(point);
        let hit = match TARGET.get().and_then(Option::as_ref) {
            None => false,
            Some(Target::Event(at)) => n == *at,
            Some(Target::File {
                manifest,
                name: file,
                step: at,
            }) => {
                step == at
                    && if *manifest {
                        is_manifest && *last == *file
                    } else {
                        name == *file
                    }
            }
        };
        if hit {
            let file = if is_manifest {
                format!("manifest.json (recording {last})")
            } else {
                name.clone()
            };
            if let Ok(log) = std::env::var(LANDING_LOG)
                && let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
            {
                let _ = writeln!(f, "{file}\t{step}");
            }
            kill_self();
        }
        if !is_manifest {
            *last = name;
        }
        if point == WritePoint::Renamed
            && !is_manifest
            && let Some(trace) = std::env::var_os(TRACE)
            && let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(trace)
        {
            let _ = writeln!(f, "{}", path.display());
        }
    }

    /// Asks the parent for SIGKILL and waits for it inside the write; it
    /// does not return.
    fn kill_self() -> ! {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{KILL_ME}");
        let _ = out.flush();
        std::thread::sleep(std::time::Duration::from_secs(60));
        eprintln!("the parent did not kill the child");
        std::process::abort()
    }

    pub fn run(dir: &Path) -> ExitCode {
        let target = std::env::var(KILL_AT).ok().map(|spec| {
            parse_target(&spec).unwrap_or_else(|| panic!("bad {KILL_AT} value {spec:?}"))
        });
        let _ = TARGET.set(target);
        write_hook::install(hook);
        let imp = Imp::new(config()).with_options(options());
        match imp.run(dir, &ndarray(), &data(), init, &mut ReportDiscards) {
            Ok(_) => {
                println!("{DONE} {}", EVENTS.load(Ordering::SeqCst));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("the experiment failed: {e}");
                ExitCode::from(3)
            }
        }
    }
}

/// The parent: reference run, killed run, comparison.
#[cfg(unix)]
mod parent {
    use super::*;
    use burn_lottery::imp::store::ExperimentStore;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::process::ExitStatusExt;
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::time::{Duration, Instant};

    /// The kills the requirement asks for, at least.
    const MIN_KILLS: usize = 20;
    /// Kills are spaced so that about this many fall on one experiment.
    const PLANNED_KILLS: u64 = 64;
    /// A run that needs more sessions than this is not converging.
    const MAX_SESSIONS: usize = 300;

    pub fn run() -> ExitCode {
        match harness() {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("kill_resume FAILED: {message}");
                ExitCode::FAILURE
            }
        }
    }

    fn spawn(
        dir: &Path,
        log: &Path,
        kill_at: Option<String>,
        landings: &Path,
        trace: Option<&Path>,
    ) -> Child {
        let out = std::fs::File::create(log).expect("session log");
        let err = out.try_clone().expect("session log");
        let mut command = Command::new(std::env::current_exe().expect("own executable"));
        command
            .arg("--child")
            .arg(dir)
            .env(LANDING_LOG, landings)
            .env_remove(KILL_AT)
            .stdin(Stdio::null())
            .stderr(err);
        // A child that will ask to be killed talks to the parent.
        if kill_at.is_some() {
            command.stdout(Stdio::piped());
        } else {
            command.stdout(out);
        }
        command.env_remove(TRACE);
        if let Some(trace) = trace {
            command.env(TRACE, trace);
        }
        if let Some(spec) = kill_at {
            command.env(KILL_AT, spec);
        }
        command.spawn().expect("spawn the child")
    }

    /// Copies the child's stdout to its log until it exits or asks to be
    /// killed; then kills it (SIGKILL).
    fn relay_until_kill_request(child: &mut Child, log: &Path) -> Result<(), String> {
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
                return child.kill().map_err(|e| e.to_string());
            }
            writeln!(copy, "{line}").map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// How a session ended.
    enum End {
        Complete,
        Killed,
    }

    fn judge(status: ExitStatus, log: &Path) -> Result<End, String> {
        if status.success() {
            Ok(End::Complete)
        } else if status.signal() == Some(9) {
            Ok(End::Killed)
        } else {
            Err(format!(
                "the child failed ({status}); its output:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ))
        }
    }

    fn harness() -> Result<(), String> {
        let started = Instant::now();
        let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
        // KILL_RESUME_KEEP=1 keeps the runs' directories for inspection.
        let (work, _temp) = if std::env::var_os("KILL_RESUME_KEEP").is_some() {
            let kept = temp.keep();
            println!("directories kept in {}", kept.display());
            (kept, None)
        } else {
            (temp.path().to_path_buf(), Some(temp))
        };
        let work = work.as_path();
        let logs = work.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        let landings = work.join("landings.tsv");
        let trace = work.join("trace.txt");
        let (a, b) = (work.join("a"), work.join("b"));

        // 1. The uninterrupted reference.
        let reference_log = logs.join("reference.txt");
        let t0 = Instant::now();
        let status = spawn(&a, &reference_log, None, &landings, Some(&trace))
            .wait()
            .map_err(|e| e.to_string())?;
        let reference_time = t0.elapsed();
        if !matches!(judge(status, &reference_log)?, End::Complete) {
            return Err("the reference run was killed".into());
        }
        let output = std::fs::read_to_string(&reference_log).map_err(|e| e.to_string())?;
        let events: u64 = output
            .lines()
            .find_map(|l| l.strip_prefix(DONE))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("the reference run did not report its writes:\n{output}"))?;
        // The experiment's files in the order they were first written.
        let a_dir = a.join(config().directory_name());
        let mut order: Vec<String> = Vec::new();
        for line in std::fs::read_to_string(&trace)
            .map_err(|e| e.to_string())?
            .lines()
        {
            let relative = Path::new(line)
                .strip_prefix(&a_dir)
                .map_err(|_| format!("{line} is outside the experiment"))?
                .to_string_lossy()
                .into_owned();
            if !order.contains(&relative) && a_dir.join(&relative).exists() {
                order.push(relative);
            }
        }
        println!(
            "reference run: {:.1} s, {events} write events ({} writes)",
            reference_time.as_secs_f64(),
            events / 3
        );

        // 2. The same experiment, killed until it completes.
        let seed = std::env::var("KILL_RESUME_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        println!("kill schedule seed: {seed} (replay with KILL_RESUME_SEED={seed})");
        let mut rng = StdRng::seed_from_u64(seed);
        let event_window = (2 * events / PLANNED_KILLS).max(2);
        let time_window = reference_time.as_micros() as u64 * 2 / PLANNED_KILLS;
        let mut kills = 0usize;
        let mut timed_kills = 0usize;
        let mut timed_in_write: BTreeMap<String, usize> = BTreeMap::new();
        let mut sessions = 0usize;
        loop {
            sessions += 1;
            if sessions > MAX_SESSIONS {
                return Err(format!(
                    "the experiment did not complete in {MAX_SESSIONS} sessions ({kills} kills)"
                ));
            }
            let log = logs.join(format!("session-{sessions:03}.txt"));
            // One kill in four after a random delay, the others at a write.
            let end = if rng.random_range(0..4) == 0 {
                let delay = Duration::from_micros(rng.random_range(0..=time_window));
                let mut child = spawn(&b, &log, None, &landings, None);
                let deadline = Instant::now() + delay;
                let exited = loop {
                    if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                        break Some(status);
                    }
                    if Instant::now() >= deadline {
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                };
                match exited {
                    Some(status) => judge(status, &log)?,
                    None => {
                        child.kill().map_err(|e| e.to_string())?; // SIGKILL
                        let status = child.wait().map_err(|e| e.to_string())?;
                        match judge(status, &log)? {
                            End::Complete => End::Complete,
                            End::Killed => {
                                timed_kills += 1;
                                // A leftover temporary file: the kill hit a write.
                                for name in temporary_files(&b) {
                                    // `.<target>.tmp-<pid>` -> `<target>`
                                    let target = name[1..]
                                        .rsplit_once(".tmp-")
                                        .map_or(name.clone(), |(t, _)| t.to_string());
                                    *timed_in_write.entry(target).or_default() += 1;
                                }
                                End::Killed
                            }
                        }
                    }
                }
            } else {
                // Half of the others at a random write event, half at a
                // chosen step of a file the run has not recorded yet (or of
                // the manifest update that records it).
                let mut candidates = pending_files(&order, &b);
                // Kills that lag behind the run's progress (a targeted kill
                // can skip a whole level) are made up for with small steps.
                let progress = 1.0 - candidates.len() as f64 / order.len() as f64;
                let behind = (kills as f64) < 2.0 * MIN_KILLS as f64 * progress;
                // The next file to be written, or the level's next
                // progress checkpoint or its metrics.
                candidates.truncate(1);
                candidates.extend(["progress.ckpt".into(), "progress_metrics.csv".into()]);
                let at = if behind || rng.random_bool(0.5) {
                    rng.random_range(1..=event_window).to_string()
                } else {
                    let file = &candidates[rng.random_range(0..candidates.len())];
                    let step = ["created", "synced", "renamed"][rng.random_range(0..3)];
                    if rng.random_bool(0.5) {
                        format!("manifest:{file}:{step}")
                    } else {
                        format!("{file}:{step}")
                    }
                };
                let mut child = spawn(&b, &log, Some(at), &landings, None);
                let relayed = relay_until_kill_request(&mut child, &log);
                if relayed.is_err() {
                    let _ = child.kill();
                }
                let status = child.wait().map_err(|e| e.to_string())?;
                relayed?;
                judge(status, &log)?
            };
            match end {
                End::Complete => break,
                End::Killed => kills += 1,
            }
        }
        let killed_time = started.elapsed() - reference_time;

        // Where the kills landed.
        let mut landed: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let text = std::fs::read_to_string(&landings).unwrap_or_default();
        for line in text.lines() {
            let (file, point) = line.split_once('\t').unwrap_or((line, "?"));
            *landed
                .entry(file.to_string())
                .or_default()
                .entry(point.to_string())
                .or_default() += 1;
        }
        let mut discarded = 0;
        for entry in std::fs::read_dir(&logs).map_err(|e| e.to_string())? {
            let text = std::fs::read_to_string(entry.map_err(|e| e.to_string())?.path())
                .unwrap_or_default();
            for line in text.lines().filter(|l| l.starts_with(DISCARDED)) {
                discarded += 1;
                println!("  reported: {line}");
            }
        }
        println!(
            "killed run: {sessions} sessions, {:.1} s; {} kills inside writes, {timed_kills} after a random delay \
             ({} of them left a temporary file: {timed_in_write:?}); {discarded} stored files discarded and recomputed",
            killed_time.as_secs_f64(),
            text.lines().count(),
            timed_in_write.values().sum::<usize>(),
        );
        for (file, points) in &landed {
            println!("  {file}: {points:?}");
        }

        // 3. Same answer.
        let compared = compare(&a, &b)?;
        println!("compared {compared} files of the two runs: identical");
        println!("kills survived: {kills}");
        if kills < MIN_KILLS {
            return Err(format!(
                "only {kills} kills landed before the experiment completed (at least {MIN_KILLS} required); seed {seed}"
            ));
        }
        Ok(())
    }

    /// Relative paths of every file under `dir`, but the writers' locks
    /// (`locks/`: a killed writer leaves its holder record behind).
    fn files(dir: &Path) -> Vec<PathBuf> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() && path.file_name() == Some("locks".as_ref()) {
                    continue;
                }
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    /// Names of the files of `order` (relative paths, in the order the
    /// uninterrupted run wrote them) that the manifest under `b` does not
    /// record yet, in that order.
    fn pending_files(order: &[String], b: &Path) -> Vec<String> {
        let manifest = b.join(config().directory_name()).join("manifest.json");
        let recorded: Vec<String> = std::fs::read(manifest)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|v| v["files"].as_object().map(|f| f.keys().cloned().collect()))
            .unwrap_or_default();
        order
            .iter()
            .filter(|p| !recorded.contains(p))
            .filter_map(|p| Some(Path::new(p).file_name()?.to_str()?.to_string()))
            .collect()
    }

    fn temporary_files(dir: &Path) -> Vec<String> {
        files(dir)
            .into_iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?.to_string();
                burn_lottery::io::is_temporary_file_name(&name).then_some(name)
            })
            .collect()
    }

    /// A summary without its wall-clock time (the only run-specific value).
    fn summary_values(bytes: &[u8], path: &Path) -> Result<serde_json::Value, String> {
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        value
            .as_object_mut()
            .ok_or_else(|| format!("{} is not an object", path.display()))?
            .remove("wall_seconds")
            .ok_or_else(|| format!("{} has no wall_seconds", path.display()))?;
        Ok(value)
    }

    /// The manifest, without the records of summaries and checkpoints
    /// (their checksums cover the run-specific bytes), keeping their names.
    fn manifest_values(bytes: &[u8]) -> Result<serde_json::Value, String> {
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest.json: {e}"))?;
        let files = value["files"]
            .as_object_mut()
            .ok_or("manifest.json has no files")?;
        for (name, record) in files.iter_mut() {
            if name.ends_with("summary.json") || name.ends_with(".ckpt") {
                *record = serde_json::Value::Null;
            }
        }
        Ok(value)
    }

    /// A checkpoint's iteration, whether it holds optimizer state, and the
    /// bits of every float tensor of the model, by path. The file itself
    /// differs between processes: burn stores each parameter's `ParamId`,
    /// which is random per process (and the optimizer state is keyed by it).
    #[allow(clippy::type_complexity)]
    fn checkpoint_values(
        bytes: &[u8],
        path: &Path,
    ) -> Result<(u64, bool, BTreeMap<String, Vec<u32>>), String> {
        let checkpoint = burn_lottery::rewind::RewindCheckpoint::from_bytes(bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let device = ndarray();
        let model = checkpoint
            .restore(init(&device, 0))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let values = burn_lottery::params::float_values(&model, |_| true)
            .into_iter()
            .map(|(name, v)| (name, v.into_iter().map(f32::to_bits).collect()))
            .collect();
        Ok((
            checkpoint.iteration(),
            checkpoint.has_optimizer_state(),
            values,
        ))
    }

    /// Compares the experiments under `a` and `b`; returns the files compared.
    fn compare(a: &Path, b: &Path) -> Result<usize, String> {
        let dir_name = config().directory_name();
        let (a, b) = (a.join(&dir_name), b.join(&dir_name));
        let (fa, fb) = (files(&a), files(&b));
        if fa != fb {
            let only_a: Vec<_> = fa.iter().filter(|p| !fb.contains(p)).collect();
            let only_b: Vec<_> = fb.iter().filter(|p| !fa.contains(p)).collect();
            return Err(format!(
                "the directories hold different files: only uninterrupted {only_a:?}, only killed {only_b:?}"
            ));
        }
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        let mut differing = Vec::new();
        for relative in &fa {
            let read = |root: &Path| {
                std::fs::read(root.join(relative))
                    .map_err(|e| format!("{}: {e}", relative.display()))
            };
            let (x, y) = (read(&a)?, read(&b)?);
            let name = relative.file_name().unwrap().to_string_lossy().into_owned();
            let same = match name.as_str() {
                "summary.json" => summary_values(&x, relative)? == summary_values(&y, relative)?,
                "manifest.json" => manifest_values(&x)? == manifest_values(&y)?,
                _ if name.ends_with(".ckpt") => {
                    checkpoint_values(&x, relative)? == checkpoint_values(&y, relative)?
                }
                _ => x == y,
            };
            if !same {
                differing.push(relative.display().to_string());
            }
            *kinds.entry(name).or_default() += 1;
        }
        if !differing.is_empty() {
            return Err(format!(
                "files differ between the uninterrupted and the killed run: {}",
                differing.join(", ")
            ));
        }
        for required in [
            "mask.bin",
            "final.ckpt",
            "metrics.csv",
            "summary.json",
            "sparsity.json",
        ] {
            if kinds.get(required).copied().unwrap_or(0) < 7 {
                return Err(format!(
                    "expected 7 trained networks' {required}, found {kinds:?}"
                ));
            }
        }
        println!("  files compared by kind: {kinds:?}");
        // The killed run's manifest matches its files.
        let store = ExperimentStore::open(&b, &serde_json::to_value(config()).unwrap())
            .map_err(|e| e.to_string())?;
        store.verify_all().map_err(|e| e.to_string())?;
        Ok(fa.len())
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
