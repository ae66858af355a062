//! Lottery tickets of a text classifier on a real labelled corpus: which
//! `fortune` category (by default computers, definitions, people, politics)
//! a quotation comes from, learned from its words.
//!
//! The model, the data and the loss are this example's own, plugged into
//! the crate through its public API only (as a user's crate would):
//!
//! * **Data.** Debian's `fortunes` package installs one file per category
//!   under `/usr/share/games/fortunes/`, entries separated by lines holding
//!   only `%`. Entries are normalized (backspace overstriking removed,
//!   whitespace collapsed), deduplicated (a text found in two categories is
//!   dropped), split 80/20 by a hash of the text (so the split never
//!   depends on file order) and tokenized: lowercase alphanumeric words,
//!   each hashed into one of `--vocab` buckets (0 is padding), the first 64
//!   kept. Items live in burn's `InMemDataset`, batched by this example's
//!   `Batcher`, and become a task with `DatasetTask` (cross-entropy loss;
//!   metrics accuracy, error, loss).
//! * **Model.** A bag of embeddings: `Embedding(vocab, 64)`, mean over the
//!   non-padding tokens, `Linear(64, 64)`, ReLU, `Linear(64, classes)`,
//!   made deterministic from a seed with `burn_lottery::models::init_weights`.
//!   Every weight matrix is prunable (the default selector: rank >= 2), the
//!   embedding table included; biases are not.
//! * **IMP.** Adam (learning rate 1e-3, weight decay 1e-3 as an L2 term),
//!   batch 32, `--iterations` per level (default 600, about 6 epochs: longer
//!   training only overfits the 3,378 training texts), global magnitude
//!   pruning of 20% of the remaining weights per level for `--levels`
//!   levels (default 10, down to 10.7% of the weights), rewinding to
//!   iteration `--rewind` (default 50), with the random-reinitialization
//!   and random-pruning controls at every level.
//!
//! Prints the report table and the final mask's per-layer density, writes
//! `report.csv` and `report.svg` to `--report`. Experiments are stored under
//! `--output` by their configuration hash: a re-run reads finished levels
//! back instead of training them.
//!
//! ```sh
//! sudo apt-get install -y fortunes
//! cargo run --features wgpu --example text_fortunes -- \
//!     --report docs/results/text_fortunes
//! ```
//!
//! (`--features wgpu` only keeps burn's feature set the same as the crate's
//! other targets; the example runs on the CPU, `--device flex` by default.
//! Add `--release` for a faster run after a longer build.)

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::device::device_by_name;
use burn_lottery::models::{accuracy_count, cross_entropy, init_weights};
use burn_lottery::prelude::*;
use clap::Parser;

/// Tokens per example (longer texts are truncated, shorter ones padded).
const SEQUENCE_LENGTH: usize = 64;
/// Embedding and hidden width.
const WIDTH: usize = 64;

#[derive(Parser, Debug)]
#[command(about = "IMP with rewinding: a bag-of-embeddings classifier of fortune categories")]
struct Args {
    /// Directory of the fortune files (Debian package `fortunes`).
    #[arg(long, default_value = "/usr/share/games/fortunes")]
    fortunes_dir: PathBuf,
    /// Categories to tell apart (file names in --fortunes-dir), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "computers,definitions,people,politics"
    )]
    categories: Vec<String>,
    /// Where experiments are stored (one directory per configuration).
    #[arg(long, default_value = "experiments")]
    output: PathBuf,
    /// Where report.csv and report.svg go.
    #[arg(long, default_value = "experiments/text_fortunes")]
    report: PathBuf,
    /// Device: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Training iterations per level.
    #[arg(long, default_value_t = 600)]
    iterations: u64,
    /// Pruning levels after the dense level 0.
    #[arg(long, default_value_t = 10)]
    levels: usize,
    /// Iteration the surviving weights are rewound to.
    #[arg(long, default_value_t = 50)]
    rewind: u64,
    /// Seed of the initialization and of the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Adam's weight decay (an L2 term added to the gradient).
    #[arg(long, default_value_t = 1e-3)]
    weight_decay: f64,
    /// Hash buckets of the vocabulary (embedding rows).
    #[arg(long, default_value_t = 4096)]
    vocab: usize,
}

/// One fortune: its tokens (bucket ids, 0 = padding) and its category.
#[derive(Debug, Clone)]
struct Fortune {
    tokens: [u32; SEQUENCE_LENGTH],
    label: u32,
}

/// A batch: tokens `[n, SEQUENCE_LENGTH]` and categories `[n]`.
#[derive(Debug, Clone)]
struct TextBatch {
    tokens: Tensor<2, Int>,
    labels: Tensor<1, Int>,
}

#[derive(Clone)]
struct TextBatcher;

impl Batcher<Fortune, TextBatch> for TextBatcher {
    fn batch(&self, items: Vec<Fortune>, device: &Device) -> TextBatch {
        let n = items.len();
        let tokens: Vec<i64> = items
            .iter()
            .flat_map(|f| f.tokens.iter().map(|&t| i64::from(t)))
            .collect();
        let labels: Vec<i64> = items.iter().map(|f| i64::from(f.label)).collect();
        TextBatch {
            tokens: Tensor::from_data(TensorData::new(tokens, [n, SEQUENCE_LENGTH]), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

/// Mean of the embeddings of the non-padding tokens, then a hidden layer.
#[derive(Module, Debug)]
struct BagOfEmbeddings {
    embedding: Embedding,
    hidden: Linear,
    output: Linear,
}

impl BagOfEmbeddings {
    fn init(device: &Device, seed: u64, vocab: usize, classes: usize) -> Self {
        // The embedding keeps its own initializer (init_weights sets only
        // Linear, Conv and BatchNorm): Kaiming-scale normal, drawn from the
        // device's generator seeded here.
        device.seed(seed);
        let std = (2.0 / vocab as f64).sqrt();
        let model = Self {
            embedding: EmbeddingConfig::new(vocab, WIDTH)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device),
            hidden: LinearConfig::new(WIDTH, WIDTH).init(device),
            output: LinearConfig::new(WIDTH, classes).init(device),
        };
        // The reference initialization of the Linear layers, from the seed
        // and each parameter's path.

        init_weights(model, seed)
    }

    /// Logits `[n, classes]`.
    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        let [n, length] = tokens.dims();
        let present = tokens.clone().greater_elem(0).float(); // [n, length]
        let embedded = self.embedding.forward(tokens); // [n, length, WIDTH]
        let summed = (embedded * present.clone().reshape([n, length, 1]))
            .sum_dim(1)
            .reshape([n, WIDTH]);
        let pooled = summed / present.sum_dim(1).clamp_min(1.0); // [n, 1] broadcasts
        self.output.forward(relu(self.hidden.forward(pooled)))
    }
}

/// 64-bit FNV-1a: a stable hash for the split and the vocabulary buckets.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The entries of a fortune file: text between lines holding only `%`,
/// with backspace overstriking undone and whitespace collapsed.
fn read_entries(path: &Path) -> std::io::Result<Vec<String>> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut entries = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("%")) {
        if line == "%" {
            let entry = current.split_whitespace().collect::<Vec<_>>().join(" ");
            if !entry.is_empty() {
                entries.push(entry);
            }
            current.clear();
            continue;
        }
        for c in line.chars() {
            if c == '\u{8}' {
                current.pop(); // `_\bx` (underlined x) and `x\bx` (bold) mean x
            } else {
                current.push(c);
            }
        }
        current.push('\n');
    }
    Ok(entries)
}

/// Lowercase alphanumeric words hashed into buckets `1..vocab` (0 pads).
fn tokenize(text: &str, vocab: usize) -> [u32; SEQUENCE_LENGTH] {
    let mut tokens = [0u32; SEQUENCE_LENGTH];
    let words = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase());
    for (slot, word) in tokens.iter_mut().zip(words) {
        *slot = 1 + (fnv1a(word.as_bytes()) % (vocab as u64 - 1)) as u32;
    }
    tokens
}

/// Training and test fortunes of `categories` (labels in their order).
fn load(args: &Args) -> Result<(Vec<Fortune>, Vec<Fortune>), Box<dyn std::error::Error>> {
    // Text -> the categories it appears in.
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (label, category) in args.categories.iter().enumerate() {
        let path = args.fortunes_dir.join(category);
        let entries = read_entries(&path).map_err(|e| {
            format!(
                "{}: {e} (install the corpus: apt-get install -y fortunes)",
                path.display()
            )
        })?;
        for entry in entries {
            let labels = seen.entry(entry).or_default();
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let mut counts: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut ambiguous = 0;
    for (text, labels) in &seen {
        let &[label] = labels.as_slice() else {
            ambiguous += 1;
            continue;
        };
        let fortune = Fortune {
            tokens: tokenize(text, args.vocab),
            label: label as u32,
        };
        let count = counts.entry(label).or_default();
        if fnv1a(text.as_bytes()).is_multiple_of(5) {
            test.push(fortune);
            count.1 += 1;
        } else {
            train.push(fortune);
            count.0 += 1;
        }
    }
    eprintln!("category       train  test");
    for (label, category) in args.categories.iter().enumerate() {
        let (tr, te) = counts.get(&label).copied().unwrap_or_default();
        eprintln!("{category:<12} {tr:>7} {te:>5}");
    }
    eprintln!(
        "{} unique entries, {ambiguous} dropped as found in several categories",
        seen.len()
    );
    Ok((train, test))
}

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.vocab < 2 || args.categories.len() < 2 {
        return Err("need --vocab >= 2 and at least two --categories".into());
    }
    let device = device_by_name(&args.device)?;
    let (vocab, classes) = (args.vocab, args.categories.len());
    let init =
        move |device: &Device, seed: u64| BagOfEmbeddings::init(device, seed, vocab, classes);
    let experiment = Experiment::new(&args.output, &device, task(load(&args)?), init)
        .name("text_fortunes")
        .batches(32, args.iterations)
        .optimizer_config(
            OptimizerConfig::adam(args.learning_rate).with_weight_decay(args.weight_decay),
        )
        .seeds(Seeds::all(args.seed));
    let imp = experiment.imp(|c| ImpConfig {
        pruning: MagnitudePrunerConfig::new(0.2),
        levels: args.levels,
        rewind_iteration: args.rewind,
        controls: Controls::random(true),
        ..c
    });
    eprintln!("experiment: {}", imp.directory().display());
    let started = Instant::now();
    let result = imp.run_with(&mut Progress::new())?;
    let minutes = started.elapsed().as_secs_f64() / 60.0;

    result.write_to(&args.report, "Fortune categories: bag of embeddings")?;
    println!("{}", result.table());
    // Where global magnitude pruning took the weights from.
    let last = result.rows.iter().map(|r| r.level).max().unwrap_or(0);
    println!(
        "IMP mask at level {last}:\n{}",
        imp.stability().mask(Condition::Imp, last)?.report()
    );
    println!(
        "{} networks trained in this run ({minutes:.1} min); report: {}",
        result.trained_levels,
        args.report.display()
    );
    Ok(())
}

/// The task: cross-entropy on the (train, test) fortunes; test metrics
/// accuracy (reported), error and loss.
fn task((train, test): (Vec<Fortune>, Vec<Fortune>)) -> impl Task<BagOfEmbeddings> {
    DatasetTask::new(
        InMemDataset::new(train),
        InMemDataset::new(test),
        TextBatcher,
        |model: &BagOfEmbeddings, batch: TextBatch| {
            cross_entropy(model.forward(batch.tokens), batch.labels)
        },
        |model: &BagOfEmbeddings, batch: TextBatch| {
            let n = batch.labels.dims()[0];
            let logits = model.forward(batch.tokens);
            let loss: f32 = cross_entropy(logits.clone(), batch.labels.clone()).into_scalar();
            let accuracy = accuracy_count(logits, batch.labels) as f64 / n as f64;
            Metrics::new()
                .with("accuracy", accuracy)
                .with("error", 1.0 - accuracy)
                .with("loss", f64::from(loss))
        },
        MetricSpec::accuracy(),
    )
}
