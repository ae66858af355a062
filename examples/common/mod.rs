//! Shared by the measurement examples (`train_step_throughput`,
//! `bench_memory`): one training step of ResNet-20 or LeNet-300-100 on a
//! fixed synthetic batch, masked or not, with optional per-phase timing.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::mask::{Mask, MaskedParams, ParamSelector};
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig, cross_entropy};
use burn_lottery::prune::{MagnitudePrunerConfig, Pruner};
use burn_lottery::sparse::SparseTicket;
use burn_lottery::train::recipe::OptimizerConfig;
use clap::ValueEnum;

/// The benchmarked networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// CIFAR ResNet-20, 3x32x32 inputs.
    Resnet20,
    /// LeNet-300-100, 1x28x28 inputs.
    Lenet,
}

impl ModelKind {
    /// Name used in the printed records.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Resnet20 => "resnet20",
            ModelKind::Lenet => "lenet300100",
        }
    }

    /// Shape of one image.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            ModelKind::Resnet20 => [3, 32, 32],
            ModelKind::Lenet => [1, 28, 28],
        }
    }
}

/// The optimizers compared with PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    /// SGD, lr 0.1, momentum 0.9 (no dampening), weight decay 1e-4.
    Sgd,
    /// Adam, lr 1.2e-3, PyTorch's defaults otherwise.
    Adam,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }

    pub fn config(self) -> OptimizerConfig {
        match self {
            OptimizerKind::Sgd => OptimizerConfig::sgd_momentum(0.1),
            OptimizerKind::Adam => OptimizerConfig::adam(1.2e-3),
        }
    }
}

/// Wall time per phase of one step, summed over steps.
#[derive(Debug, Default, Clone, Copy)]
pub struct Phases {
    pub forward: Duration,
    pub backward: Duration,
    pub mask_grads: Duration,
    pub optimizer: Duration,
    pub mask_weights: Duration,
    /// Kernel launches of each phase in the order above, summed over steps
    /// (zero unless launches are counted).
    pub launches: [usize; 5],
}

impl Phases {
    fn add(&mut self, other: &Phases) {
        self.forward += other.forward;
        self.backward += other.backward;
        self.mask_grads += other.mask_grads;
        self.optimizer += other.optimizer;
        self.mask_weights += other.mask_weights;
        for (sum, n) in self.launches.iter_mut().zip(other.launches) {
            *sum += n;
        }
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct StepTiming {
    /// Wall time of each measured step.
    pub steps: Vec<Duration>,
    /// Per-phase sums (only when phases were timed).
    pub phases: Option<Phases>,
    /// Process CPU time (user + system, all threads) over the measured steps.
    pub cpu: Option<Duration>,
    /// Kernel launches over the measured steps (when counted).
    #[cfg(feature = "cubecl")]
    pub launches: Option<burn_lottery::launches::LaunchCount>,
}

impl StepTiming {
    /// Median seconds per step.
    pub fn median_s(&self) -> f64 {
        let mut s: Vec<f64> = self.steps.iter().map(Duration::as_secs_f64).collect();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    }

    /// Process CPU seconds (all threads) per measured step; 0 if unknown.
    pub fn cpu_per_step_s(&self) -> f64 {
        self.cpu
            .map_or(0.0, |c| c.as_secs_f64() / self.steps.len() as f64)
    }

    /// Mean seconds per step.
    pub fn mean_s(&self) -> f64 {
        self.steps.iter().map(Duration::as_secs_f64).sum::<f64>() / self.steps.len() as f64
    }
}

/// A deterministic batch of `batch` images and labels on `device`.
pub fn synthetic_batch(
    device: &Device,
    batch: usize,
    image: [usize; 3],
) -> (Tensor<4>, Tensor<1, Int>) {
    let shape = [batch, image[0], image[1], image[2]];
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0)
        .collect();
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % 10).collect();
    (
        Tensor::from_data(TensorData::new(values, shape), device),
        Tensor::from_data(TensorData::new(labels, [batch]), device),
    )
}

/// A batch's images and labels on the host (row-major), as the sparse path
/// takes them.
pub fn host_values(images: &Tensor<4>, labels: &Tensor<1, Int>) -> (Vec<f32>, Vec<i64>) {
    let images = images.to_data().try_to_vec().expect("f32 images");
    let labels = labels
        .to_data()
        .convert::<i64>()
        .try_to_vec()
        .expect("labels");
    (images, labels)
}

/// When a timed run reads the loss back and waits for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Every `n` steps (the trainer's `loss_every`); each step's time is its
    /// window's time over `n`.
    Every(usize),
    /// Every step, and after each phase of the step to time it.
    EveryStepWithPhases,
}

/// Runs `warmup` then `steps` timed training steps of `model` on `device`
/// (made autodiff here). `sparsity`: `None` trains with no mask at all;
/// `Some(s)` enforces a global-magnitude mask of sparsity `s` (as
/// `MaskedOptimizer` does: gradients masked, optimizer step, weights masked).
/// The loss is read back (and the device waited for) as `reads` says;
/// `warmup` and `steps` are rounded up to whole windows.
#[allow(clippy::too_many_arguments)]
pub fn measure_reading(
    model: ModelKind,
    device: &Device,
    optimizer: OptimizerKind,
    batch: usize,
    sparsity: Option<f64>,
    warmup: usize,
    steps: usize,
    reads: Reads,
    count_launches: bool,
) -> StepTiming {
    let device = device.clone().autodiff();
    let settings = RunSettings {
        kind: model,
        optimizer,
        batch,
        sparsity,
        warmup,
        steps,
        reads,
        count_launches,
    };
    match model {
        ModelKind::Resnet20 => run(
            ResNetConfig::resnet20().init_seeded(&device, 0),
            &device,
            settings,
        ),
        ModelKind::Lenet => run(
            LeNetConfig::lenet_300_100().init_seeded(&device, 0),
            &device,
            settings,
        ),
    }
}

/// What [`run`] times.
struct RunSettings {
    kind: ModelKind,
    optimizer: OptimizerKind,
    batch: usize,
    sparsity: Option<f64>,
    warmup: usize,
    steps: usize,
    reads: Reads,
    /// Count the kernel launches of the measured steps (wgpu builds).
    count_launches: bool,
}

/// The mask a run with `sparsity` enforces: the global-magnitude mask of the
/// seeded initial weights.
pub fn magnitude_mask<M: Classifier>(model: &M, sparsity: f64) -> Mask {
    let dense = Mask::dense(model, &ParamSelector::default()).expect("prunable weights");
    if sparsity == 0.0 {
        return dense;
    }
    MagnitudePrunerConfig::new(sparsity)
        .init()
        .expect("valid pruning rate")
        .next_mask(model, &dense)
        .expect("mask of the model")
}

/// Times `settings.warmup` then `settings.steps` training steps of `model`.
fn run<M: Classifier>(mut model: M, device: &Device, settings: RunSettings) -> StepTiming {
    let RunSettings {
        kind,
        optimizer,
        batch,
        sparsity,
        warmup,
        steps,
        reads,
        count_launches,
    } = settings;
    let (time_phases, every) = match reads {
        Reads::EveryStepWithPhases => (true, 1),
        Reads::Every(n) => (false, n.max(1)),
    };
    let (warmup, steps) = (
        warmup.div_ceil(every) * every,
        steps.div_ceil(every) * every,
    );
    let mut step = Step {
        images_labels: synthetic_batch(device, batch, kind.image_shape()),
        optim: optimizer.config().init(),
        lr: optimizer
            .config()
            .learning_rate()
            .expect("a preset has a base rate"),
        masks: sparsity.map(|s| MaskedParams::new(&magnitude_mask(&model, s), device)),
    };
    if let Some(masks) = &step.masks {
        model = masks.apply_to_weights(model);
    }
    let mut window = Window::new(every, steps);
    let mut cpu_start = None;
    let mut total = Phases::default();
    let mut counter = None;
    for i in 0..warmup + steps {
        if i == warmup {
            counter = count_launches.then(launch_counter);
            cpu_start = process_cpu_time();
            window.start = Instant::now();
        }
        let mut clock = PhaseClock::start(device, time_phases, &counter);
        let (trained, loss) = step.run(model, &mut clock);
        model = trained;
        if i >= warmup {
            total.add(&clock.phases);
        }
        window.push(loss, device, i >= warmup);
    }
    let cpu = cpu_start.zip(process_cpu_time()).map(|(a, b)| b - a);
    #[cfg(not(feature = "cubecl"))]
    drop(counter);
    StepTiming {
        steps: window.durations,
        phases: time_phases.then_some(total),
        cpu,
        #[cfg(feature = "cubecl")]
        launches: counter.map(|c| c.finish(device).expect("device sync")),
    }
}

/// What one training step needs besides the model.
struct Step {
    images_labels: (Tensor<4>, Tensor<1, Int>),
    optim: ModuleOptimizer,
    lr: f64,
    masks: Option<MaskedParams>,
}

impl Step {
    /// Forward, cross-entropy, backward, gradient mask, optimizer step and
    /// weight mask, each phase ended on `clock`; returns the model and the
    /// (unread) loss.
    fn run<M: Classifier>(&mut self, model: M, clock: &mut PhaseClock) -> (M, Tensor<1>) {
        let (images, labels) = &self.images_labels;
        let loss = cross_entropy(model.forward(images.clone()), labels.clone());
        clock.lap(|p| (&mut p.forward, &mut p.launches[0]));
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clock.lap(|p| (&mut p.backward, &mut p.launches[1]));
        if let Some(masks) = &self.masks {
            masks.apply_to_grads(&model, &mut grads);
        }
        clock.lap(|p| (&mut p.mask_grads, &mut p.launches[2]));
        let mut model = self.optim.step(self.lr, model, grads);
        clock.lap(|p| (&mut p.optimizer, &mut p.launches[3]));
        if let Some(masks) = &self.masks {
            model = masks.apply_to_weights(model);
        }
        clock.lap(|p| (&mut p.mask_weights, &mut p.launches[4]));
        (model, loss.without_autodiff())
    }
}

/// The phases of one step: with `time_phases`, each phase ends with a device
/// sync, and its time and (when counted) launches are recorded.
struct PhaseClock<'a> {
    device: &'a Device,
    time_phases: bool,
    counter: &'a Option<Counter>,
    phases: Phases,
    /// When the current phase started.
    t: Instant,
    /// Launches counted when the current phase started.
    launched: usize,
}

impl<'a> PhaseClock<'a> {
    fn start(device: &'a Device, time_phases: bool, counter: &'a Option<Counter>) -> Self {
        Self {
            device,
            time_phases,
            counter,
            phases: Phases::default(),
            t: Instant::now(),
            launched: if time_phases {
                launches_so_far(counter)
            } else {
                0
            },
        }
    }

    /// Ends a phase: `slot` picks its time and launch count in `phases`.
    fn lap(&mut self, slot: impl FnOnce(&mut Phases) -> (&mut Duration, &mut usize)) {
        if self.time_phases {
            self.device.sync().expect("device sync");
        }
        let now = Instant::now();
        let (time, launches) = slot(&mut self.phases);
        *time += now - self.t;
        self.t = now;
        if self.time_phases {
            let so_far = launches_so_far(self.counter);
            *launches = so_far - self.launched;
            self.launched = so_far;
        }
    }
}

/// The steps between two reads of the loss.
struct Window {
    every: usize,
    pending: Vec<Tensor<1>>,
    /// When the current window started.
    start: Instant,
    /// Each timed step's share of its window's time.
    durations: Vec<Duration>,
}

impl Window {
    fn new(every: usize, steps: usize) -> Self {
        Self {
            every,
            pending: Vec::with_capacity(every),
            start: Instant::now(),
            durations: Vec::with_capacity(steps),
        }
    }

    /// Adds a step's loss. At a window's end, reads the window's losses back,
    /// as the trainer does every `loss_every` steps (and the PyTorch script
    /// every `--sync-every`), which also waits for the device; when `timed`,
    /// each of the window's steps is given its share of the window's time.
    fn push(&mut self, loss: Tensor<1>, device: &Device, timed: bool) {
        self.pending.push(loss);
        if self.pending.len() < self.every {
            return;
        }
        let losses = Tensor::cat(std::mem::take(&mut self.pending), 0).into_data();
        assert!(losses.iter::<f32>().all(f32::is_finite), "loss diverged");
        device.sync().expect("device sync");
        let now = Instant::now();
        if timed {
            let step = (now - self.start) / self.every as u32;
            self.durations.extend(std::iter::repeat_n(step, self.every));
        }
        self.start = now;
    }
}

/// What counts kernel launches (wgpu builds).
#[cfg(feature = "cubecl")]
type Counter = burn_lottery::launches::LaunchCounter;

/// Without a cubecl backend there are no kernel launches to count.
#[cfg(not(feature = "cubecl"))]
type Counter = ();

/// Starts counting kernel launches (wgpu builds; the CPU backends launch none).
#[cfg(feature = "cubecl")]
fn launch_counter() -> Counter {
    burn_lottery::launches::LaunchCounter::start()
}

/// Without a cubecl backend there are no kernel launches to count.
#[cfg(not(feature = "cubecl"))]
fn launch_counter() {
    eprintln!("launches are counted on wgpu builds only (--features wgpu)");
}

/// The launches `counter` has counted so far (0 when none counts).
#[cfg(feature = "cubecl")]
fn launches_so_far(counter: &Option<Counter>) -> usize {
    counter.as_ref().map_or(0, |c| c.so_far().total())
}

/// Without a cubecl backend there are no kernel launches to count.
#[cfg(not(feature = "cubecl"))]
fn launches_so_far(_: &Option<Counter>) -> usize {
    0
}

/// [`measure_reading`] on the host sparse path ([`SparseTicket::train_step`]): the
/// same model, mask (sparsity `sparsity`), batch and optimizer, each step a
/// forward, cross-entropy, backward and optimizer step over the kept
/// weights only.
pub fn measure_sparse(
    kind: ModelKind,
    optimizer: OptimizerKind,
    batch: usize,
    sparsity: f64,
    warmup: usize,
    steps: usize,
) -> StepTiming {
    #[allow(deprecated)]
    let device = Device::ndarray();
    let mut sparse = match kind {
        ModelKind::Resnet20 => ticket(ResNetConfig::resnet20().init_seeded(&device, 0), sparsity),
        ModelKind::Lenet => ticket(
            LeNetConfig::lenet_300_100().init_seeded(&device, 0),
            sparsity,
        ),
    };
    let (images, labels) = synthetic_batch(&device, batch, kind.image_shape());
    let (images, labels) = host_values(&images, &labels);
    let config = optimizer.config();
    let lr = config.learning_rate().expect("a preset has a base rate");
    let mut durations = Vec::with_capacity(steps);
    let mut cpu_start = None;
    for i in 0..warmup + steps {
        if i == warmup {
            cpu_start = process_cpu_time();
        }
        let start = Instant::now();
        let loss = sparse
            .train_step(&images, &labels, &config, lr)
            .expect("batch fits");
        assert!(loss.is_finite(), "loss diverged: {loss}");
        if i >= warmup {
            durations.push(start.elapsed());
        }
    }
    let cpu = cpu_start.zip(process_cpu_time()).map(|(a, b)| b - a);
    StepTiming {
        steps: durations,
        phases: None,
        cpu,
        #[cfg(feature = "cubecl")]
        launches: None,
    }
}

/// The sparse form of `model` under its global-magnitude mask of `sparsity`.
fn ticket<M: Classifier>(model: M, sparsity: f64) -> SparseTicket {
    let mask = magnitude_mask(&model, sparsity);
    let masked = mask.apply(model).expect("the mask fits");
    SparseTicket::from_module(&masked, &mask).expect("a sparse form")
}

/// CPU time (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` (Linux only; clock ticks of 10 ms).
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // _SC_CLK_TCK is 100 on every Linux configuration in use.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// This process's peak resident set size (`VmHWM`), in bytes (Linux only).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The 1-minute load average (Linux only), to record with each figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The number of threads burn's CPU backends use (rayon's pool).
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// CPU microseconds (all threads of the process) and wall-clock
/// microseconds per call of `f`, over `reps` calls: on a shared machine,
/// preemption inflates wall time but not CPU time.
pub fn time_per_call(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    let (start, wall) = (cpu_ns(), std::time::Instant::now());
    for _ in 0..reps {
        f();
    }
    let per_call = |us: f64| us / reps as f64;
    (
        per_call((cpu_ns() - start) as f64 / 1e3),
        per_call(wall.elapsed().as_secs_f64() * 1e6),
    )
}

/// Nanoseconds this process's threads have run, from
/// `/proc/self/task/*/schedstat` (Linux).
pub fn cpu_ns() -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("Linux /proc");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
