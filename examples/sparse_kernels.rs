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
// `times` is indexed by method and product; the product index also picks the
// operation, so a range loop reads best.
#[allow(clippy::needless_range_loop)]
fn bench_shape(shape: &Shape, density: f64, rounds: usize, device: &Device) {
    let mut rng = StdRng::seed_from_u64(7);
    let (n, di, dout) = (shape.batch, shape.d_in, shape.d_out);
    let w: Vec<f32> = (0..di * dout).map(|_| rng.random::<f32>() - 0.5).collect();
    let kept: Vec<bool> = (0..di * dout)
        .map(|_| rng.random::<f64>() < density)
        .collect();
    let x: Vec<f32> = (0..n * di).map(|_| rng.random::<f32>()).collect();
    let dy: Vec<f32> = (0..n * dout).map(|_| rng.random::<f32>() - 0.5).collect();
    let masked: Vec<f32> = w
        .iter()
        .zip(&kept)
        .map(|(&v, &k)| if k { v } else { 0.0 })
        .collect();
    let up =
        |v: &[f32], s: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), s), device);
    let (xd, dyd, wd) = (up(&x, [n, di]), up(&dy, [n, dout]), up(&masked, [di, dout]));
    let maskd = up(
        &kept
            .iter()
            .map(|&k| f32::from(u8::from(k)))
            .collect::<Vec<_>>(),
        [di, dout],
    );
    let sparse = SparseWeight::from_dense(di, dout, &w, &kept).unwrap();
    let (mut x_t, mut dy_t) = (vec![0.0; n * di], vec![0.0; n * dout]);
    transpose(&x, n, di, &mut x_t);
    transpose(&dy, n, dout, &mut dy_t);
    let (mut y_t, mut dx_t, mut g) = (
        vec![0.0; n * dout],
        vec![0.0; n * di],
        vec![0.0; sparse.nnz()],
    );
    let gather = GatherScatter::new(di, dout, &kept, device).unwrap();
    let values = gather.gather_values(wd.clone());
    let run_gather = n * sparse.nnz().max(1) <= 64 << 20;
    let sync = || device.sync().expect("device sync");
    let reps = shape.reps;
    // times[method][product] per round, in microseconds per call.
    let mut times = vec![vec![Vec::new(); 3]; 3];
    for _ in 0..rounds {
        for product in 0..3 {
            times[0][product].push(time(reps, || {
                let out = match product {
                    0 => xd.clone().matmul(wd.clone()),
                    1 => dyd.clone().matmul(wd.clone().transpose()),
                    _ => xd.clone().transpose().matmul(dyd.clone()) * maskd.clone(),
                };
                drop(out);
                sync();
            }));
            times[1][product].push(time(reps, || match product {
                0 => sparse.forward(&x_t, n, None, &mut y_t),
                1 => sparse.input_grad(&dy_t, n, &mut dx_t),
                _ => sparse.weight_grad(&x_t, &dy_t, n, &mut g),
            }));
            if run_gather {
                times[2][product].push(time(reps, || {
                    match product {
                        0 => drop(gather.forward(xd.clone(), values.clone())),
                        1 => drop(gather.input_grad(dyd.clone(), values.clone())),
                        _ => drop(gather.weight_grad(xd.clone(), dyd.clone())),
                    }
                    sync();
                }));
            }
        }
    }
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

/// CPU microseconds (all threads) per call of `f`, over `reps` calls.
fn time(reps: usize, f: impl FnMut()) -> f64 {
    time_per_call(reps, f).0
}
