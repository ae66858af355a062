//! The host kernels of [`SparseConv`](super::SparseConv).
//!
//! The input of a convolution is first copied into a [`Source`]: zero-padded
//! and, for a stride `s`, split into `s` column phases (phase `q` holds the
//! padded columns `q, q + s, q + 2s, ...`). Then every kept weight of every
//! output position reads a contiguous run of one source row, with no bounds
//! to check: output row `(n, r)` of channel `o` is
//!
//! `y[o, n, r, c] = Σ_{kept (i, a, b)} w · source[offset(i, a, b) + base(n, r) + c]`
//!
//! and each run of 32, 16 or 8 columns is summed in registers over all the
//! channel's kept weights before it is stored once ([`correlate`]). The
//! input gradient of a stride-1 convolution is the same correlation of the
//! padded output gradient with the flipped kernel; the weight gradient at
//! each kept entry is a dot product of the same source runs with the output
//! gradient ([`weight_grad`]). Only the input gradient of a strided
//! convolution scatters ([`scatter_strided`]).

use rayon::prelude::*;

use super::conv::Planes;

/// Floats below which a parallel task is not worth rayon's overhead.
pub(super) const MIN_TASK_FLOATS: usize = 1 << 15;

/// A zero-padded, column-phase-split copy of channel-major planes (see the
/// module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct Source {
    pub(super) data: Vec<f32>,
    channels: usize,
    pub(super) batch: usize,
    rows: usize,
    /// Columns of one phase.
    pub(super) cols: usize,
    pub(super) stride: usize,
}

impl Source {
    pub(super) fn image(&self) -> usize {
        self.rows * self.cols
    }

    fn plane(&self) -> usize {
        self.batch * self.image()
    }

    fn phase(&self) -> usize {
        self.channels * self.plane()
    }

    /// Copies `x` (`[channels, planes]`) with `pad` zero rows and columns on
    /// every side, split into `stride` column phases.
    pub(super) fn fill(
        &mut self,
        x: &[f32],
        channels: usize,
        planes: Planes,
        pad: usize,
        stride: usize,
    ) {
        self.fill_with(x, channels, planes, pad, stride, 1);
    }

    /// Copies `x` spread out by `spread` (value `(r, c)` at `(spread · r,
    /// spread · c)`, zeros between; `spread` times the rows and columns),
    /// with `pad` zero rows and columns on every side, in one phase.
    pub(super) fn fill_spread(
        &mut self,
        x: &[f32],
        channels: usize,
        planes: Planes,
        pad: usize,
        spread: usize,
    ) {
        self.fill_with(x, channels, planes, pad, 1, spread);
    }

    fn fill_with(
        &mut self,
        x: &[f32],
        channels: usize,
        planes: Planes,
        pad: usize,
        stride: usize,
        spread: usize,
    ) {
        self.channels = channels;
        self.batch = planes.batch;
        self.rows = spread * planes.height + 2 * pad;
        self.cols = (spread * planes.width + 2 * pad).div_ceil(stride);
        self.stride = stride;
        self.data.clear();
        // Slack: a whole-image run of the weight gradient may read up to a
        // row past the last image.
        self.data
            .resize(stride * self.phase() + stride * self.cols, 0.0);
        let (width, image) = (planes.width, planes.height * planes.width);
        let (cols, own_image, plane) = (self.cols, self.image(), self.plane());
        // One task per (phase, channel), each writing its own plane; small
        // planes (a batch of one) are grouped so a task is worth its cost.
        self.data[..stride * channels * plane]
            .par_chunks_mut(plane)
            .enumerate()
            .with_min_len((MIN_TASK_FLOATS / plane.max(1)).max(1))
            .for_each(|(k, dest)| {
                let (q, channel) = (k / channels, k % channels);
                let source = &x[channel * planes.len()..][..planes.len()];
                for (n, image_in) in source.chunks_exact(image).enumerate() {
                    let at = n * own_image + pad * cols;
                    for (h, row) in image_in.chunks_exact(width).enumerate() {
                        let dest_row = &mut dest[at + spread * h * cols..][..cols];
                        copy_row(row, dest_row, pad, stride, spread, q);
                    }
                }
            });
    }

    /// Offset of kernel tap `(row, col)` on `channel` (output position
    /// `(0, 0)` of image 0).
    pub(super) fn offset(&self, channel: usize, row: usize, col: usize) -> usize {
        (col % self.stride) * self.phase()
            + channel * self.plane()
            + row * self.cols
            + col / self.stride
    }

    /// Offset of output row `r` of image `n`.
    fn base(&self, n: usize, r: usize) -> usize {
        n * self.image() + r * self.stride * self.cols
    }
}

/// Writes the values of `row` that fall in column phase `q` into
/// `dest_row` (one padded row of that phase): value `w` goes to padded
/// column `spread · w + pad`.
#[inline(always)]
fn copy_row(row: &[f32], dest_row: &mut [f32], pad: usize, stride: usize, spread: usize, q: usize) {
    if stride == 1 && spread == 1 {
        dest_row[pad..pad + row.len()].copy_from_slice(row);
    } else if stride == 1 {
        for (w, &v) in row.iter().enumerate() {
            dest_row[spread * w + pad] = v;
        }
    } else {
        // Columns `w` with `spread · w + pad ≡ q (mod stride)`.
        let first = (0..stride).find(|&w| (spread * w + pad) % stride == q);
        for w in first
            .into_iter()
            .flat_map(|f| (f..row.len()).step_by(stride))
        {
            dest_row[(spread * w + pad) / stride] = row[w];
        }
    }
}

/// `target[t]` (planes `out`) = the correlation of `source` with target
/// channel `t`'s taps `taps[ptr[t]..ptr[t + 1]]` (`(offset, weight)`).
pub(super) fn correlate(
    source: &Source,
    ptr: &[usize],
    taps: &[(usize, f32)],
    out: Planes,
    target: &mut [f32],
) {
    target
        .par_chunks_mut(out.len())
        .enumerate()
        .with_min_len((MIN_TASK_FLOATS / out.len().max(1)).max(1))
        .for_each(|(t, plane)| {
            correlate_plane(source, &taps[ptr[t]..ptr[t + 1]], out, plane);
        });
}

avx2_dispatch!(
    fn correlate_plane(
        source: &Source,
        taps: &[(usize, f32)],
        out: Planes,
        plane: &mut [f32],
    ) -> () {
        for (index, row) in plane.chunks_exact_mut(out.width).enumerate() {
            let base = source.base(index / out.height, index % out.height);
            let mut start = 0;
            start = blocks::<32>(taps, &source.data, base, row, start);
            start = blocks::<8>(taps, &source.data, base, row, start);
            blocks::<1>(taps, &source.data, base, row, start);
        }
    }
);

/// Sums whole blocks of `W` columns of `row` from `start`, each held in
/// registers over all taps; returns where it stopped.
#[inline(always)]
fn blocks<const W: usize>(
    taps: &[(usize, f32)],
    data: &[f32],
    base: usize,
    row: &mut [f32],
    mut start: usize,
) -> usize {
    while start + W <= row.len() {
        let mut acc = [0.0f32; W];
        for &(offset, w) in taps {
            let x: &[f32; W] = data[offset + base + start..][..W]
                .try_into()
                .expect("W floats");
            for l in 0..W {
                acc[l] += w * x[l];
            }
        }
        row[start..start + W].copy_from_slice(&acc);
        start += W;
    }
    start
}

avx2_dispatch!(
    /// The gradient of each tap `(offset, _)` of one output channel: the
    /// dot product of its source runs with that channel's output gradient
    /// `dy` (planes `out`).
    pub(super) fn weight_grad(
        source: &Source,
        taps: &[(usize, f32)],
        dy: &[f32],
        out: Planes,
        grad: &mut [f32],
    ) -> () {
        weight_grad_body(source, taps, dy, out, grad)
    }
);

/// Image by image (its output gradient stays in cache). The output
/// gradient is first padded to the length of `stride` source rows (zeros
/// past `out.width`), so that each tap's product over a whole image is one
/// contiguous dot product (with stride 2, half of it multiplies zeros: still
/// faster than row by row).
#[inline(always)]
fn weight_grad_body(
    source: &Source,
    taps: &[(usize, f32)],
    dy: &[f32],
    out: Planes,
    grad: &mut [f32],
) {
    let row_length = source.stride * source.cols;
    if row_length >= out.width {
        let span = out.height * row_length;
        let mut padded = vec![0.0f32; out.batch * span];
        for (row, dy_row) in padded
            .chunks_exact_mut(row_length)
            .zip(dy.chunks_exact(out.width))
        {
            row[..out.width].copy_from_slice(dy_row);
        }
        grad.fill(0.0);
        for (n, dy_n) in padded.chunks_exact(span).enumerate() {
            let base = n * source.image();
            for (&(offset, _), g) in taps.iter().zip(grad.iter_mut()) {
                *g += dot(&source.data[offset + base..][..span], dy_n);
            }
        }
        return;
    }
    let mut lanes = vec![[0.0f32; 8]; taps.len()];
    let mut tails = vec![0.0f32; taps.len()];
    let image = out.height * out.width;
    for (n, dy_n) in dy.chunks_exact(image).enumerate() {
        for ((&(offset, _), lane), tail) in taps.iter().zip(&mut lanes).zip(&mut tails) {
            for (r, dy_row) in dy_n.chunks_exact(out.width).enumerate() {
                let x = &source.data[offset + source.base(n, r)..][..out.width];
                let (xc, dc) = (x.chunks_exact(8), dy_row.chunks_exact(8));
                *tail += xc
                    .remainder()
                    .iter()
                    .zip(dc.remainder())
                    .map(|(a, b)| a * b)
                    .sum::<f32>();
                for (a, b) in xc.zip(dc) {
                    for l in 0..8 {
                        lane[l] += a[l] * b[l];
                    }
                }
            }
        }
    }
    for ((g, lane), tail) in grad.iter_mut().zip(&lanes).zip(&tails) {
        *g = lane.iter().sum::<f32>() + tail;
    }
}

/// The geometry of a strided convolution's input gradient.
#[derive(Debug, Clone, Copy)]
pub(super) struct Strided {
    pub(super) input: Planes,
    pub(super) output: Planes,
    pub(super) stride: [usize; 2],
    pub(super) padding: [usize; 2],
}

/// Output positions `lo..hi` along one axis whose input `o * stride + k -
/// pad` lies in `0..size`.
fn valid(out: usize, size: usize, k: usize, stride: usize, pad: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(k).div_ceil(stride);
    let hi = if size + pad > k {
        ((size + pad - k - 1) / stride + 1).min(out)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// Adds `w · dy[o]` into input channel `i`'s gradient plane `dx_i` at the
/// positions tap `(o, a, b)` read, for every tap `(o, a, b, w)` of `i`.
pub(super) fn scatter_strided(
    g: &Strided,
    taps: impl Iterator<Item = ((usize, usize, usize), f32)>,
    dy: &[f32],
    dx_i: &mut [f32],
) {
    let (in_image, out_image) = (
        g.input.height * g.input.width,
        g.output.height * g.output.width,
    );
    let (in_w, out_w) = (g.input.width, g.output.width);
    let [s_h, s_w] = g.stride;
    dx_i.fill(0.0);
    for ((o, a, b), w) in taps {
        let (r_lo, r_hi) = valid(g.output.height, g.input.height, a, s_h, g.padding[0]);
        let (c_lo, c_hi) = valid(g.output.width, g.input.width, b, s_w, g.padding[1]);
        for n in 0..g.input.batch {
            let dy_n = &dy[(o * g.input.batch + n) * out_image..][..out_image];
            let dx_n = &mut dx_i[n * in_image..][..in_image];
            for r in r_lo..r_hi {
                let in_row = (r * s_h + a - g.padding[0]) * in_w;
                for c in c_lo..c_hi {
                    dx_n[in_row + c * s_w + b - g.padding[1]] += w * dy_n[r * out_w + c];
                }
            }
        }
    }
}

/// `x · y` in 32 lanes: four independent vector sums, so that the adds do
/// not wait on each other (one lane of eight would be bound by the add's
/// latency).
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 32];
    let (xc, yc) = (x.chunks_exact(32), y.chunks_exact(32));
    let tail = super::csr::dot(xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..32 {
            lanes[l] += a[l] * b[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
