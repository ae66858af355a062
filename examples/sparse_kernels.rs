//! The three products of a masked layer's training step, dense versus
//! sparse, for LeNet-300-100's layers (batch 60) and ResNet-20's
//! convolutions as im2col products (batch 128), at the densities IMP visits.
//!
//! Methods, timed alternately in one run (dense, csr, gather, dense, ...):
//!
//! * `dense`: burn's matmul on the device (`x W`, `dY Wᵀ`, `(xᵀ dY) * mask`,
//!   which is what the dense masked step computes);
//! * `csr`: [`SparseWeight`]'s host kernels on feature-major buffers;
//! * `gather`: [`GatherScatter`], burn's gather / multiply / scatter-add on
//!   the device (skipped where its `[batch, kept]` product exceeds 64 M floats).
//!
//! Prints one `ROW` line per shape, density, method and product with the
//! median CPU time per call (all threads) over the rounds and the median of the per-round
//! ratios dense / method (above 1: faster than dense).
//!
//! ```sh
//! cargo run --release --features wgpu --example sparse_kernels -- --shapes lenet --rounds 7
//! ```

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use burn_lottery::device::device_by_name;
use burn_lottery::sparse::{GatherScatter, SparseWeight, transpose};
use clap::Parser;
use common::{median, time_per_call};
use rand::{RngExt, SeedableRng, rngs::StdRng};

#[derive(Parser, Debug)]
struct Args {
    /// `lenet`, `resnet` or `all`.
    #[arg(long, default_value = "lenet")]
    shapes: String,
    /// Device for the dense and gather methods.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Rounds (each times every method once per product).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Densities in percent.
    #[arg(long, value_delimiter = ',', default_value = "100,51,26,17,11,7,2")]
    densities: Vec<f64>,
}

/// A layer as a product `[batch, d_in] x [d_in, d_out]`.
struct Shape {
    name: &'static str,
    batch: usize,
    d_in: usize,
    d_out: usize,
    reps: usize,
}

const LENET: [Shape; 3] = [
    Shape {
        name: "lenet.fc1 784x300 b60",
        batch: 60,
        d_in: 784,
        d_out: 300,
        reps: 40,
    },
    Shape {
        name: "lenet.fc2 300x100 b60",
        batch: 60,
        d_in: 300,
        d_out: 100,
        reps: 200,
    },
    Shape {
        name: "lenet.fc3 100x10 b60",
        batch: 60,
        d_in: 100,
        d_out: 10,
        reps: 1000,
    },
];

const RESNET: [Shape; 3] = [
    Shape {
        name: "resnet20.stage1 3x3 16->16 (131072x144x16)",
        batch: 131_072,
        d_in: 144,
        d_out: 16,
        reps: 2,
    },
    Shape {
        name: "resnet20.stage2 3x3 32->32 (32768x288x32)",
        batch: 32_768,
        d_in: 288,
        d_out: 32,
        reps: 2,
    },
    Shape {
        name: "resnet20.stage3 3x3 64->64 (8192x576x64)",
        batch: 8_192,
        d_in: 576,
        d_out: 64,
        reps: 2,
    },
];

const PRODUCTS: [&str; 3] = ["forward", "input_grad", "weight_grad"];

fn main() {
    let args = Args::parse();
    burn_lottery::alloc::retain_freed_memory();
    let device = device_by_name(&args.device).expect("unknown device");
    let shapes: Vec<&Shape> = match args.shapes.as_str() {
        "lenet" => LENET.iter().collect(),
        "resnet" => RESNET.iter().collect(),
        _ => LENET.iter().chain(RESNET.iter()).collect(),
    };
    println!(
        "# sparse_kernels {:?} load {}",
        args,
        common::load_average()
    );
    println!("# ROW shape density% method product median_us ratio_dense_over_method");
    for shape in shapes {
        for &density in &args.densities {
            bench_shape(shape, density / 100.0, args.rounds, &device);
        }
    }
    println!("# done, load {}", common::load_average());
}

/// Times every method and product of one shape at one density; prints rows.
fn bench_shape(shape: &Shape, density: f64, rounds: usize, device: &Device) {
    let layer = Layer::random(shape, density);
    let dense = Dense::new(&layer, device);
    let mut csr = Csr::new(&layer);
    let gather = Gather::new(&layer, &dense);
    // Where its `[batch, kept]` product exceeds 64 M floats, gather is skipped.
    let run_gather = layer.n * csr.weight.nnz().max(1) <= 64 << 20;
    // times[method][product] per round, in microseconds per call.
    let mut times = vec![vec![Vec::new(); 3]; 3];
    for _ in 0..rounds {
        for product in [Product::Forward, Product::InputGrad, Product::WeightGrad] {
            let p = product as usize;
            times[0][p].push(time(shape.reps, || dense.call(product)));
            times[1][p].push(time(shape.reps, || csr.call(product)));
            if run_gather {
                times[2][p].push(time(shape.reps, || gather.call(product)));
            }
        }
    }
    print_rows(shape, density, &times);
}

/// One `ROW` per method and product timed: the median time per call and the
/// median of the per-round ratios dense / method.
fn print_rows(shape: &Shape, density: f64, times: &[Vec<Vec<f64>>]) {
    for (m, method) in ["dense", "csr", "gather"].iter().enumerate() {
        for (p, product) in PRODUCTS.iter().enumerate() {
            let t = &times[m][p];
            if t.is_empty() {
                continue;
            }
            let ratios: Vec<f64> = t.iter().zip(&times[0][p]).map(|(s, d)| d / s).collect();
            println!(
                "ROW {} | {:.0} | {} | {} | {:.1} | {:.2}",
                shape.name,
                density * 100.0,
                method,
                product,
                median(t.clone()),
                median(ratios)
            );
        }
    }
}

/// The three products, in the order of [`PRODUCTS`].
#[derive(Debug, Clone, Copy)]
enum Product {
    /// `x W`.
    Forward = 0,
    /// `dY Wᵀ`.
    InputGrad = 1,
    /// `xᵀ dY`, kept entries only.
    WeightGrad = 2,
}

/// A random layer of `shape` (seeded): weights, the kept entries at
/// `density`, an input batch and an output gradient, row-major on the host.
struct Layer {
    n: usize,
    d_in: usize,
    d_out: usize,
    w: Vec<f32>,
    kept: Vec<bool>,
    x: Vec<f32>,
    dy: Vec<f32>,
}

impl Layer {
    fn random(shape: &Shape, density: f64) -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        let (n, d_in, d_out) = (shape.batch, shape.d_in, shape.d_out);
        let w = (0..d_in * d_out)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        let kept = (0..d_in * d_out)
            .map(|_| rng.random::<f64>() < density)
            .collect();
        let x = (0..n * d_in).map(|_| rng.random::<f32>()).collect();
        let dy = (0..n * d_out).map(|_| rng.random::<f32>() - 0.5).collect();
        Self {
            n,
            d_in,
            d_out,
            w,
            kept,
            x,
            dy,
        }
    }
}

/// The dense method: burn's matmuls on the device, the weights masked.
struct Dense<'a> {
    device: &'a Device,
    x: Tensor<2>,
    dy: Tensor<2>,
    w: Tensor<2>,
    mask: Tensor<2>,
}

impl<'a> Dense<'a> {
    fn new(layer: &Layer, device: &'a Device) -> Self {
        let up = |v: Vec<f32>, s: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, s), device);
        let masked = layer.w.iter().zip(&layer.kept);
        let masked = masked.map(|(&v, &k)| if k { v } else { 0.0 }).collect();
        let mask = layer.kept.iter().map(|&k| f32::from(u8::from(k))).collect();
        let (n, d_in, d_out) = (layer.n, layer.d_in, layer.d_out);
        Self {
            device,
            x: up(layer.x.clone(), [n, d_in]),
            dy: up(layer.dy.clone(), [n, d_out]),
            w: up(masked, [d_in, d_out]),
            mask: up(mask, [d_in, d_out]),
        }
    }

    /// One product, waited for.
    fn call(&self, product: Product) {
        let (x, dy, w) = (self.x.clone(), self.dy.clone(), self.w.clone());
        drop(match product {
            Product::Forward => x.matmul(w),
            Product::InputGrad => dy.matmul(w.transpose()),
            Product::WeightGrad => x.transpose().matmul(dy) * self.mask.clone(),
        });
        self.device.sync().expect("device sync");
    }
}

/// The csr method: [`SparseWeight`]'s host kernels on feature-major buffers.
struct Csr {
    weight: SparseWeight,
    n: usize,
    x_t: Vec<f32>,
    dy_t: Vec<f32>,
    y_t: Vec<f32>,
    dx_t: Vec<f32>,
    g: Vec<f32>,
}

impl Csr {
    fn new(layer: &Layer) -> Self {
        let (n, d_in, d_out) = (layer.n, layer.d_in, layer.d_out);
        let weight = SparseWeight::from_dense(d_in, d_out, &layer.w, &layer.kept).unwrap();
        let (mut x_t, mut dy_t) = (vec![0.0; n * d_in], vec![0.0; n * d_out]);
        transpose(&layer.x, n, d_in, &mut x_t);
        transpose(&layer.dy, n, d_out, &mut dy_t);
        Self {
            n,
            x_t,
            dy_t,
            y_t: vec![0.0; n * d_out],
            dx_t: vec![0.0; n * d_in],
            g: vec![0.0; weight.nnz()],
            weight,
        }
    }

    fn call(&mut self, product: Product) {
        match product {
            Product::Forward => self.weight.forward(&self.x_t, self.n, None, &mut self.y_t),
            Product::InputGrad => self.weight.input_grad(&self.dy_t, self.n, &mut self.dx_t),
            Product::WeightGrad => {
                self.weight
                    .weight_grad(&self.x_t, &self.dy_t, self.n, &mut self.g)
            }
        }
    }
}

/// The gather method: [`GatherScatter`] on the dense method's tensors.
struct Gather<'a> {
    dense: &'a Dense<'a>,
    op: GatherScatter,
    values: Tensor<1>,
}

impl<'a> Gather<'a> {
    fn new(layer: &Layer, dense: &'a Dense<'a>) -> Self {
        let op = GatherScatter::new(layer.d_in, layer.d_out, &layer.kept, dense.device).unwrap();
        let values = op.gather_values(dense.w.clone());
        Self { dense, op, values }
    }

    /// One product, waited for.
    fn call(&self, product: Product) {
        let (x, dy, values) = (
            self.dense.x.clone(),
            self.dense.dy.clone(),
            self.values.clone(),
        );
        match product {
            Product::Forward => drop(self.op.forward(x, values)),
            Product::InputGrad => drop(self.op.input_grad(dy, values)),
            Product::WeightGrad => drop(self.op.weight_grad(x, dy)),
        }
        self.dense.device.sync().expect("device sync");
    }
}

/// CPU microseconds (all threads) per call of `f`, over `reps` calls.
fn time(reps: usize, f: impl FnMut()) -> f64 {
    time_per_call(reps, f).0
}
