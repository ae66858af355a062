//! A masked 2-d convolution stored by its kept weights only, computed
//! directly on channel-major activations (no im2col).
//!
//! The weight is a burn `Conv2d` weight, `[c_out, c_in, k_h, k_w]`, no
//! groups, no dilation. Activations are held **channel-major**,
//! `[channels, batch, height, width]` row-major: one channel of the whole
//! batch is one contiguous plane. A kept weight `(o, i, a, b)` then adds
//! `w · x[i]`, shifted by `(a, b)` and strided, into `y[o]`: one
//! multiply-add per output position, run over contiguous image rows that the
//! compiler vectorizes. The three products of a training step each cost
//! `kept × batch × h_out × w_out` multiply-adds:
//!
//! * forward, `y[o] = Σ_{kept (i, a, b)} w · shift(x[i])` (grouped by output
//!   channel, one output image held in cache while every entry adds in);
//! * input gradient, `dx[i] = Σ_{kept (o, a, b)} w · unshift(dy[o])`
//!   (grouped by input channel);
//! * weight gradient at the kept entries only, `g = Σ shift(x[i]) · dy[o]`.
//!
//! Output channels (forward, weight gradient) and input channels (input
//! gradient) run in parallel on rayon's pool.

use rayon::prelude::*;

use super::SparseError;
use super::conv_kernels::{
    self as kernels, MIN_TASK_FLOATS, Source, Strided, correlate, scatter_strided,
};

/// Spatial size of a batch of feature maps: `batch` images of `height` x
/// `width` (per channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planes {
    /// Images in the batch.
    pub batch: usize,
    /// Rows of each image.
    pub height: usize,
    /// Columns of each image.
    pub width: usize,
}

impl Planes {
    /// Floats in one channel's plane (`batch × height × width`).
    pub fn len(&self) -> usize {
        self.batch * self.height * self.width
    }

    /// Whether the planes hold no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One kept weight's position in the kernel and its channel on the other
/// side (input channel when grouped by output, and the reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tap {
    channel: u32,
    row: u16,
    col: u16,
}

/// The kept weights of a `[c_out, c_in, k_h, k_w]` convolution with a
/// stride and zero padding (the same on both axes' sides), indexed by output
/// channel and by input channel. Values are stored once, in output order.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseConv {
    shape: [usize; 4],
    stride: usize,
    padding: usize,
    /// Entries of output channel `o` are `out_ptr[o]..out_ptr[o + 1]`.
    out_ptr: Vec<usize>,
    out_taps: Vec<Tap>,
    values: Vec<f32>,
    /// Entries of input channel `i` are `in_ptr[i]..in_ptr[i + 1]`.
    in_ptr: Vec<usize>,
    in_taps: Vec<Tap>,
    /// Position in `values` of each entry, in input order.
    in_pos: Vec<u32>,
}

impl SparseConv {
    /// Keeps the entries of the row-major `[c_out, c_in, k_h, k_w]`
    /// `weights` that `kept` flags; `stride` and zero `padding` are the same
    /// along both axes.
    pub fn from_dense(
        shape: [usize; 4],
        stride: usize,
        padding: usize,
        weights: &[f32],
        kept: &[bool],
    ) -> Result<Self, SparseError> {
        let [c_out, c_in, k_h, k_w] = shape;
        let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if n.is_none_or(|n| weights.len() != n || kept.len() != n) {
            return Err(SparseError::Shape(format!(
                "a {shape:?} convolution weight does not fit {} values and {} flags",
                weights.len(),
                kept.len()
            )));
        }
        if stride == 0 || c_in > u32::MAX as usize || k_h.max(k_w) > u16::MAX as usize {
            return Err(SparseError::Shape(format!(
                "convolution {shape:?} with stride {stride}"
            )));
        }
        let mut out_ptr = vec![0];
        let (mut out_taps, mut values) = (Vec::new(), Vec::new());
        for o in 0..c_out {
            for i in 0..c_in {
                for row in 0..k_h {
                    for col in 0..k_w {
                        let k = ((o * c_in + i) * k_h + row) * k_w + col;
                        if kept[k] {
                            let tap = Tap {
                                channel: i as u32,
                                row: row as u16,
                                col: col as u16,
                            };
                            out_taps.push(tap);
                            values.push(weights[k]);
                        }
                    }
                }
            }
            out_ptr.push(out_taps.len());
        }
        let (in_ptr, in_taps, in_pos) = by_input(c_in, &out_ptr, &out_taps);
        Ok(Self {
            shape,
            stride,
            padding,
            out_ptr,
            out_taps,
            values,
            in_ptr,
            in_taps,
            in_pos,
        })
    }

    /// The dense weight's shape, `[c_out, c_in, k_h, k_w]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Number of kept entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The kept values, in output order (the order of
    /// [`SparseConv::weight_grad`]'s result).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The kept values, mutable (an optimizer updates them in place).
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// The row-major dense weight, zero where pruned.
    pub fn to_dense(&self) -> Vec<f32> {
        let len = self.shape.iter().product();
        super::optim::scatter(&self.positions(), &self.values, len)
    }

    /// The row-major index in the dense weight of each kept entry, in the
    /// order of [`SparseConv::values`].
    pub fn positions(&self) -> Vec<usize> {
        let [_, c_in, k_h, k_w] = self.shape;
        let mut positions = Vec::with_capacity(self.nnz());
        for o in 0..self.shape[0] {
            let taps = &self.out_taps[self.out_ptr[o]..self.out_ptr[o + 1]];
            positions.extend(taps.iter().map(|t| {
                ((o * c_in + t.channel as usize) * k_h + t.row as usize) * k_w + t.col as usize
            }));
        }
        positions
    }

    /// The output planes for input planes `input`.
    pub fn output_planes(&self, input: Planes) -> Planes {
        let out =
            |size: usize, k: usize| (size + 2 * self.padding).saturating_sub(k) / self.stride + 1;
        Planes {
            batch: input.batch,
            height: out(input.height, self.shape[2]),
            width: out(input.width, self.shape[3]),
        }
    }

    fn check(&self, input: Planes, x: &[f32], y: &[f32]) {
        let output = self.output_planes(input);
        assert_eq!(x.len(), self.shape[1] * input.len(), "x is [c_in, planes]");
        assert_eq!(
            y.len(),
            self.shape[0] * output.len(),
            "y is [c_out, planes]"
        );
    }

    /// Forward product into `y` (`[c_out, batch, h_out, w_out]`) from `x`
    /// (`[c_in, batch, h, w]`, sized by `input`).
    ///
    /// # Panics
    /// If a buffer's length does not fit the shapes (these are the raw
    /// kernels; [`SparseTicket`](super::SparseTicket) checks its inputs).
    pub fn forward(&self, x: &[f32], input: Planes, y: &mut [f32]) {
        let mut source = Source::default();
        self.fill_source(&mut source, x, input);
        self.forward_source(&source, input, y);
    }

    /// The padded, phase-split copy of the input `x` that
    /// [`SparseConv::forward_source`] and [`SparseConv::weight_grad_source`]
    /// read.
    pub(super) fn fill_source(&self, source: &mut Source, x: &[f32], input: Planes) {
        assert_eq!(x.len(), self.shape[1] * input.len(), "x is [c_in, planes]");
        source.fill(x, self.shape[1], input, self.padding, self.stride);
    }

    /// [`SparseConv::forward`] from the input's [`Source`].
    pub(super) fn forward_source(&self, source: &Source, input: Planes, y: &mut [f32]) {
        assert_eq!(
            y.len(),
            self.shape[0] * self.output_planes(input).len(),
            "y is [c_out, planes]"
        );
        let taps: Vec<(usize, f32)> = self
            .out_taps
            .iter()
            .zip(&self.values)
            .map(|(t, &w)| {
                (
                    source.offset(t.channel as usize, t.row as usize, t.col as usize),
                    w,
                )
            })
            .collect();
        correlate(source, &self.out_ptr, &taps, self.output_planes(input), y);
    }

    /// Input gradient into `dx` (`[c_in, batch, h, w]`) from `dy`
    /// (`[c_out, batch, h_out, w_out]`).
    ///
    /// # Panics
    /// If a buffer's length does not fit the shapes (these are the raw
    /// kernels; [`SparseTicket`](super::SparseTicket) checks its inputs).
    pub fn input_grad(&self, dy: &[f32], input: Planes, dx: &mut [f32]) {
        self.input_grad_with(&mut Source::default(), dy, input, dx);
    }

    /// [`SparseConv::input_grad`] with a reusable buffer for the padded
    /// output gradient.
    pub(super) fn input_grad_with(
        &self,
        scratch: &mut Source,
        dy: &[f32],
        input: Planes,
        dx: &mut [f32],
    ) {
        self.check(input, dx, dy);
        let [c_out, _, k_h, k_w] = self.shape;
        let output = self.output_planes(input);
        let (s, dilated) = (self.stride, self.stride * output.height);
        // The correlation's output size, d + k - 1 - 2p, must be the input's.
        let fits = |size: usize, d: usize| d + k_h - 1 == size + 2 * self.padding;
        if k_h == k_w
            && self.padding < k_h
            && fits(input.height, dilated)
            && fits(input.width, s * output.width)
        {
            // The correlation of the output gradient, spread out by the
            // stride (zeros between), padded by k - 1 - p, with the flipped
            // kernel.
            scratch.fill_spread(dy, c_out, output, k_h - 1 - self.padding, s);
            let taps: Vec<(usize, f32)> = self
                .in_taps
                .iter()
                .zip(&self.in_pos)
                .map(|(t, &k)| {
                    let (row, col) = (k_h - 1 - t.row as usize, k_w - 1 - t.col as usize);
                    (
                        scratch.offset(t.channel as usize, row, col),
                        self.values[k as usize],
                    )
                })
                .collect();
            return correlate(scratch, &self.in_ptr, &taps, input, dx);
        }
        let geometry = Strided {
            input,
            output,
            stride: [self.stride; 2],
            padding: [self.padding; 2],
        };
        dx.par_chunks_mut(input.len())
            .with_min_len((MIN_TASK_FLOATS / input.len().max(1)).max(1))
            .enumerate()
            .for_each(|(i, dx_i)| {
                let range = self.in_ptr[i]..self.in_ptr[i + 1];
                let taps = self.in_taps[range.clone()]
                    .iter()
                    .zip(&self.in_pos[range])
                    .map(|(t, &k)| {
                        let tap = (t.channel as usize, t.row as usize, t.col as usize);
                        (tap, self.values[k as usize])
                    });
                scatter_strided(&geometry, taps, dy, dx_i);
            });
    }

    /// Weight gradient at the kept entries, in [`SparseConv::values`] order.
    ///
    /// # Panics
    /// If a buffer's length does not fit the shapes (these are the raw
    /// kernels; [`SparseTicket`](super::SparseTicket) checks its inputs).
    pub fn weight_grad(&self, x: &[f32], dy: &[f32], input: Planes, grad: &mut [f32]) {
        let mut source = Source::default();
        self.fill_source(&mut source, x, input);
        self.weight_grad_source(&source, dy, input, grad);
    }

    /// [`SparseConv::weight_grad`] from the input's [`Source`].
    pub(super) fn weight_grad_source(
        &self,
        source: &Source,
        dy: &[f32],
        input: Planes,
        grad: &mut [f32],
    ) {
        let output = self.output_planes(input);
        assert_eq!(
            dy.len(),
            self.shape[0] * output.len(),
            "dy is [c_out, planes]"
        );
        assert_eq!(grad.len(), self.nnz(), "one gradient per kept entry");
        let plane = output.len();
        let mut per_output = Vec::with_capacity(self.shape[0]);
        let mut rest = grad;
        for o in 0..self.shape[0] {
            let (head, tail) = rest.split_at_mut(self.out_ptr[o + 1] - self.out_ptr[o]);
            per_output.push((o, head));
            rest = tail;
        }
        let per_task = (MIN_TASK_FLOATS / plane.max(1)).max(1);
        per_output
            .into_par_iter()
            .with_min_len(per_task)
            .for_each(|(o, g)| {
                let taps: Vec<(usize, f32)> = self.out_taps[self.out_ptr[o]..self.out_ptr[o + 1]]
                    .iter()
                    .map(|t| {
                        (
                            source.offset(t.channel as usize, t.row as usize, t.col as usize),
                            0.0,
                        )
                    })
                    .collect();
                kernels::weight_grad(source, &taps, &dy[o * plane..(o + 1) * plane], output, g);
            });
    }
}

/// The by-input index of the by-output taps.
fn by_input(c_in: usize, out_ptr: &[usize], out_taps: &[Tap]) -> (Vec<usize>, Vec<Tap>, Vec<u32>) {
    let mut in_ptr = vec![0usize; c_in + 1];
    for tap in out_taps {
        in_ptr[tap.channel as usize + 1] += 1;
    }
    for i in 0..c_in {
        in_ptr[i + 1] += in_ptr[i];
    }
    let mut next = in_ptr.clone();
    let mut in_taps = vec![
        Tap {
            channel: 0,
            row: 0,
            col: 0
        };
        out_taps.len()
    ];
    let mut in_pos = vec![0u32; out_taps.len()];
    for o in 0..out_ptr.len() - 1 {
        for (k, &tap) in out_taps
            .iter()
            .enumerate()
            .take(out_ptr[o + 1])
            .skip(out_ptr[o])
        {
            let slot = &mut next[tap.channel as usize];
            in_taps[*slot] = Tap {
                channel: o as u32,
                ..tap
            };
            in_pos[*slot] = k as u32;
            *slot += 1;
        }
    }
    (in_ptr, in_taps, in_pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct dense convolution, for reference.
    fn dense_conv(conv: &SparseConv, x: &[f32], input: Planes) -> Vec<f32> {
        let [c_out, c_in, k_h, k_w] = conv.shape;
        let w = conv.to_dense();
        let out = conv.output_planes(input);
        let mut y = vec![0.0; c_out * out.len()];
        for o in 0..c_out {
            for n in 0..input.batch {
                for r in 0..out.height {
                    for c in 0..out.width {
                        let mut sum = 0.0;
                        for i in 0..c_in {
                            for a in 0..k_h {
                                for b in 0..k_w {
                                    let ir = (r * conv.stride + a) as isize - conv.padding as isize;
                                    let ic = (c * conv.stride + b) as isize - conv.padding as isize;
                                    if ir < 0
                                        || ic < 0
                                        || ir >= input.height as isize
                                        || ic >= input.width as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((i * input.batch + n) * input.height
                                        + ir as usize)
                                        * input.width
                                        + ic as usize];
                                    sum += w[((o * c_in + i) * k_h + a) * k_w + b] * xv;
                                }
                            }
                        }
                        y[((o * input.batch + n) * out.height + r) * out.width + c] = sum;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|k| {
                ((k as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    /// Forward, input gradient and weight gradient of `conv` on `input`
    /// against the dense reference; every gradient entry is checked through
    /// the scalar `Σ y ⊙ r` (linear in `x` and in `w`).
    fn check_products(conv: &SparseConv, input: Planes) {
        let x = values(conv.shape[1] * input.len(), 11);
        let out = conv.output_planes(input);
        let mut y = vec![0.0; conv.shape[0] * out.len()];
        conv.forward(&x, input, &mut y);
        let expected = dense_conv(conv, &x, input);
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-4, "forward {a} vs {b} ({input:?})");
        }
        let r = values(y.len(), 3);
        let mut dx = vec![0.0; x.len()];
        conv.input_grad(&r, input, &mut dx);
        let mut g = vec![0.0; conv.nnz()];
        conv.weight_grad(&x, &r, input, &mut g);
        let loss = |conv: &SparseConv, x: &[f32]| -> f32 {
            let y = dense_conv(conv, x, input);
            y.iter().zip(&r).map(|(a, b)| a * b).sum()
        };
        for (probe, &got) in dx.iter().enumerate() {
            let mut unit = vec![0.0; x.len()];
            unit[probe] = 1.0;
            let expected = loss(conv, &unit);
            assert!(
                (got - expected).abs() < 1e-4,
                "dx[{probe}] {got} vs {expected} ({input:?})"
            );
        }
        for (probe, &got) in g.iter().enumerate() {
            let mut unit = conv.clone();
            unit.values.fill(0.0);
            unit.values[probe] = 1.0;
            let expected = loss(&unit, &x);
            assert!(
                (got - expected).abs() < 1e-3,
                "g[{probe}] {got} vs {expected} ({input:?})"
            );
        }
    }

    #[test]
    fn products_match_the_dense_convolution_and_its_gradients() {
        // Odd sizes (the scattered strided input gradient), even sizes (the
        // dilated one), and widths past one 32-column block.
        let inputs = [(2, 7, 6), (2, 8, 10), (1, 4, 45)].map(|(batch, height, width)| Planes {
            batch,
            height,
            width,
        });
        for (stride, padding, k) in [(1, 1, 3), (2, 1, 3), (2, 0, 1), (1, 0, 3), (1, 0, 1)] {
            let shape = [5, 3, k, k];
            let n = shape.iter().product();
            let kept: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
            let conv =
                SparseConv::from_dense(shape, stride, padding, &values(n, 7), &kept).unwrap();
            for input in inputs {
                check_products(&conv, input);
            }
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_errors() {
        let err = SparseConv::from_dense([2, 2, 3, 3], 1, 1, &[0.0; 5], &[true; 5]);
        assert!(matches!(err, Err(SparseError::Shape(_))));
        let err = SparseConv::from_dense([1, 1, 1, 1], 0, 0, &[0.0], &[true]);
        assert!(matches!(err, Err(SparseError::Shape(_))));
    }
}
