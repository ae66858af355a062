//! `burn-lottery-sweep`: a sweep of IMP experiments as independent jobs, for
//! Slurm job arrays, Kubernetes Indexed Jobs or a plain shell loop (cargo
//! feature `cli`). See the README's "Running a sweep on a cluster".
//!
//! ```sh
//! burn-lottery-sweep plan   --sweep sweep.json                 # jobs, dependencies, waves
//! burn-lottery-sweep run    --sweep sweep.json --root R --job 3
//! burn-lottery-sweep run    --sweep sweep.json --root R        # job from $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX
//! burn-lottery-sweep status --sweep sweep.json --root R
//! burn-lottery-sweep report --sweep sweep.json --root R --out R/report
//! burn-lottery-sweep single-process --sweep sweep.json --root R2 --out R2/report
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use burn::module::Module;
use burn::tensor::Device;
use burn_lottery::data::ExperimentData;
use burn_lottery::device::device_by_name;
use burn_lottery::imp::{ImpConfig, RunOptions};
use burn_lottery::models::{LeNetConfig, ResNetConfig};
use burn_lottery::report::Progress;
use burn_lottery::sweep::{Sweep, SweepError, SweepReport, SweepSpec};
use burn_lottery::task::Task;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(about = "IMP sweeps as independent jobs (Slurm, Kubernetes, shell)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prints the jobs, their dependencies and waves.
    Plan {
        #[command(flatten)]
        sweep: SweepArgs,
        /// `text` (one job a line), `waves` (first and last job of each
        /// wave: what the Slurm submit script reads) or `count`.
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
    },
    /// Runs one job (resuming whatever it finds finished).
    Run {
        #[command(flatten)]
        sweep: SweepArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// The job number; default: $SLURM_ARRAY_TASK_ID, then
        /// $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
        #[arg(long)]
        job: Option<usize>,
        /// Wait up to this many seconds for the job's dependencies (for
        /// schedulers without dependencies, e.g. a Kubernetes Indexed Job);
        /// default 0: an unfinished dependency is an error.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Says which jobs are finished, ready or waiting.
    Status {
        #[command(flatten)]
        sweep: SweepArgs,
    },
    /// Merges every finished job into report.csv, report.svg and
    /// stability.csv in --out, and lists what is missing.
    Report {
        #[command(flatten)]
        sweep: SweepArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// Where the merged report goes (default: ROOT/report).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit with status 3 when a job is missing.
        #[arg(long)]
        require_complete: bool,
    },
    /// Runs every unfinished job on this machine, --jobs processes at a
    /// time (each `run --job N` of this program, started when its
    /// dependencies are finished), then writes the report to --out.
    Local {
        #[command(flatten)]
        sweep: SweepArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// Processes at once (e.g. 4 trainings sharing one GPU).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Devices given out to the processes by slot, comma-separated
        /// (e.g. `wgpu:0,wgpu:1`); default: --device for all.
        #[arg(long, value_delimiter = ',')]
        devices: Vec<String>,
        /// Where the report goes (default: ROOT/report); each job's output
        /// goes to ROOT/logs/job-N.log.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs the whole sweep in this process (the reference of a cluster
    /// run) and writes its report to --out.
    SingleProcess {
        #[command(flatten)]
        sweep: SweepArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// Where the report goes (default: ROOT/report).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct SweepArgs {
    /// The sweep description (JSON; see burn_lottery::sweep::SweepSpec).
    #[arg(long)]
    sweep: PathBuf,
    /// The shared experiment root (one directory per experiment inside).
    #[arg(long, default_value = "experiments")]
    root: PathBuf,
    /// Save a resumable checkpoint every this many iterations.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// Device: flex, ndarray or wgpu (as compiled in). ndarray gives
    /// bit-identical results across processes (tested).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Directory of the data set (default: the loader's search and download).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum PlanFormat {
    Text,
    Waves,
    Count,
}

fn main() -> ExitCode {
    burn_lottery::alloc::retain_freed_memory();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

/// A built-in network: its base configuration and title.
fn network(spec: &SweepSpec) -> Result<(ImpConfig, &'static str), Error> {
    match spec.network.as_str() {
        "lenet_fashion_mnist" => Ok((
            ImpConfig::lenet_fashion_mnist(50_000, 0, 0),
            "LeNet-300-100 on Fashion-MNIST",
        )),
        "resnet20_cifar10" => Ok((ImpConfig::resnet20_cifar10(), "ResNet-20 on CIFAR-10")),
        other => Err(format!(
            "unknown network `{other}`; built in: lenet_fashion_mnist, resnet20_cifar10"
        )
        .into()),
    }
}

fn load(args: &SweepArgs) -> Result<(Sweep, &'static str), Error> {
    let spec = SweepSpec::from_file(&args.sweep)?;
    let (base, title) = network(&spec)?;
    let options = RunOptions {
        checkpoint_every: args.checkpoint_every,
        ..RunOptions::default()
    };
    Ok((Sweep::new(spec, &base, options)?, title))
}

/// What needs the network's task and model: one job, the merged report or
/// the single-process reference.
enum Action<'a> {
    Job(usize, &'a Path),
    Report(&'a Path),
    SingleProcess(&'a Path),
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Plan { sweep, format } => plan(&load(&sweep)?.0, format)?,
        Command::Status { sweep: args } => {
            let (sweep, _) = load(&args)?;
            for (job, state) in sweep.jobs().iter().zip(sweep.status(&args.root)) {
                println!("{:>4}  {job}: {state}", job.index);
            }
        }
        Command::Run {
            sweep: args,
            exec,
            job,
            wait,
        } => {
            let (sweep, _) = load(&args)?;
            let index = job_index(job)?;
            let poll = Duration::from_secs(5);
            sweep.wait_for_dependencies(&args.root, index, Duration::from_secs(wait), poll)?;
            eprintln!("job {index}: {}", sweep.job(index)?);
            dispatch(&sweep, &exec, Action::Job(index, &args.root))?;
        }
        Command::Report {
            sweep: args,
            exec,
            out,
            require_complete,
        } => {
            let (sweep, title) = load(&args)?;
            let report = report_to(&sweep, title, &exec, Action::Report, &args.root, out)?;
            if let Some(report) = report {
                for &index in &report.missing {
                    println!("missing: job {index} ({})", sweep.jobs()[index]);
                }
                if require_complete && !report.missing.is_empty() {
                    return Ok(ExitCode::from(3));
                }
            }
        }
        Command::Local {
            sweep: args,
            exec,
            jobs,
            devices,
            out,
        } => {
            let (sweep, title) = load(&args)?;
            run_local(&sweep, &args, &exec, jobs, devices)?;
            report_to(&sweep, title, &exec, Action::Report, &args.root, out)?;
        }
        Command::SingleProcess {
            sweep: args,
            exec,
            out,
        } => {
            let (sweep, title) = load(&args)?;
            report_to(&sweep, title, &exec, Action::SingleProcess, &args.root, out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `action` with the sweep's network: its data, model and device.
fn dispatch(
    sweep: &Sweep,
    exec: &ExecArgs,
    action: Action<'_>,
) -> Result<Option<SweepReport>, Error> {
    let device = device_by_name(&exec.device)?;
    let data_dir = exec.data_dir.as_deref();
    match sweep.spec().network.as_str() {
        "lenet_fashion_mnist" => {
            let data = ExperimentData::fashion_mnist(data_dir)?;
            let model = LeNetConfig::lenet_300_100();
            execute(
                sweep,
                action,
                &data,
                move |d, s| model.init_seeded(d, s),
                &device,
            )
        }
        "resnet20_cifar10" => {
            let data = ExperimentData::cifar10(data_dir)?;
            let model = ResNetConfig::resnet20();
            execute(
                sweep,
                action,
                &data,
                move |d, s| model.init_seeded(d, s),
                &device,
            )
        }
        other => Err(format!("unknown network `{other}`").into()),
    }
}

fn execute<M, T, F>(
    sweep: &Sweep,
    action: Action<'_>,
    task: &T,
    init: F,
    device: &Device,
) -> Result<Option<SweepReport>, Error>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M + Clone,
{
    let mut progress = Progress::new();
    Ok(match action {
        Action::Job(index, root) => {
            let summary = sweep.run_job(index, root, device, task, init, &mut progress)?;
            println!("job {index}: done, test {}", summary.metrics);
            None
        }
        Action::Report(root) => Some(sweep.report(root, device, task, init)?),
        Action::SingleProcess(root) => {
            Some(sweep.run_single_process(root, device, task, init, &mut progress)?)
        }
    })
}

/// Runs the unfinished jobs as child processes of this program.
fn run_local(
    sweep: &Sweep,
    args: &SweepArgs,
    exec: &ExecArgs,
    jobs: usize,
    devices: Vec<String>,
) -> Result<(), Error> {
    let devices = if devices.is_empty() {
        vec![exec.device.clone()]
    } else {
        devices
    };
    for device in &devices {
        device_by_name(device)?;
    }
    let program = std::env::current_exe()?;
    let logs = args.root.join("logs");
    std::fs::create_dir_all(&logs)?;
    let started = std::time::Instant::now();
    let finished = sweep.run_local(&args.root, jobs, &devices, |job, device| {
        let mut command = std::process::Command::new(&program);
        command.arg("run").arg("--sweep").arg(&args.sweep);
        command.arg("--root").arg(&args.root);
        command
            .arg("--checkpoint-every")
            .arg(args.checkpoint_every.to_string());
        command.arg("--device").arg(device);
        if let Some(dir) = &exec.data_dir {
            command.arg("--data-dir").arg(dir);
        }
        command.arg("--job").arg(job.to_string());
        let log = std::fs::File::create(logs.join(format!("job-{job}.log")));
        if let Ok(log) = log.and_then(|out| Ok((out.try_clone()?, out))) {
            command.stdout(log.0).stderr(log.1);
        }
        command
    });
    let finished = finished.map_err(|error| with_log(error, &logs))?;
    for job in &finished {
        println!(
            "job {:>4} on {}: {:.1} s",
            job.index, job.device, job.seconds
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "local: {} jobs in {seconds:.1} s, {jobs} at a time on {}",
        finished.len(),
        devices.join(",")
    );
    Ok(())
}

/// `error`, and where it names a failed job, the end of that job's log
/// (where the reason is) and the log's path.
fn with_log(error: SweepError, logs: &Path) -> Error {
    let SweepError::JobFailed { job, .. } = &error else {
        return error.into();
    };
    let log = logs.join(format!("job-{job}.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    format!("{error}; the end of its log {}:\n{tail}", log.display()).into()
}

fn plan(sweep: &Sweep, format: PlanFormat) -> Result<(), Error> {
    match format {
        PlanFormat::Count => println!("{}", sweep.jobs().len()),
        PlanFormat::Waves => {
            for (first, last) in sweep.waves() {
                println!("{first} {last}");
            }
        }
        PlanFormat::Text => {
            for job in sweep.jobs() {
                let deps: Vec<String> = job.depends_on.iter().map(usize::to_string).collect();
                let deps = if deps.is_empty() {
                    "-".into()
                } else {
                    deps.join(",")
                };
                println!(
                    "{:>4}  wave {:>2}  after {deps:<8} {job}",
                    job.index, job.wave
                );
            }
        }
    }
    Ok(())
}

/// Runs `action` on the sweep under `root` (merging the report, or the
/// single-process reference) and writes the report it gives to `out`
/// (default: ROOT/report).
fn report_to<'a>(
    sweep: &Sweep,
    title: &str,
    exec: &ExecArgs,
    action: fn(&'a Path) -> Action<'a>,
    root: &'a Path,
    out: Option<PathBuf>,
) -> Result<Option<SweepReport>, Error> {
    let report = dispatch(sweep, exec, action(root))?;
    if let Some(report) = &report {
        write(report, &out.unwrap_or_else(|| root.join("report")), title)?;
    }
    Ok(report)
}

fn write(report: &SweepReport, out: &Path, title: &str) -> Result<(), Error> {
    report.write(out, title)?;
    println!(
        "report: {} rows, {} stability pairs, {} jobs missing -> {}",
        report.rows.len(),
        report.stability.len(),
        report.missing.len(),
        out.display()
    );
    Ok(())
}

/// The job number: `--job`, else $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX.
fn job_index(job: Option<usize>) -> Result<usize, Error> {
    if let Some(job) = job {
        return Ok(job);
    }
    for name in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(value) = std::env::var(name) {
            return value
                .trim()
                .parse()
                .map_err(|_| format!("${name} is `{value}`, not a job number").into());
        }
    }
    Err(
        "no job number: pass --job N, or run under a Slurm array or a Kubernetes Indexed Job"
            .into(),
    )
}
