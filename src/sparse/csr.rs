//! A masked weight matrix stored by its kept entries only, with the three
//! products of a training step as host kernels.
//!
//! The matrix is a burn `Linear` weight, `[d_in, d_out]`, `y = x W`.
//! Activations are held **feature-major** (`[features, batch]`, row-major):
//! then every kernel works on whole batch rows, contiguous runs of `batch`
//! floats that the compiler vectorizes, and touches only the kept entries:
//!
//! * forward, `yᵀ[j] = b_j + Σ_{i kept} W_ij xᵀ[i]` (rows grouped by output);
//! * input gradient, `dxᵀ[i] = Σ_{j kept} W_ij dyᵀ[j]` (grouped by input);
//! * weight gradient at the kept entries only, `g_ij = xᵀ[i] · dyᵀ[j]`.
//!
//! Each costs `kept × batch` multiply-adds, against `d_in × d_out × batch`
//! for the dense product.

use super::SparseError;

/// The kept entries of a `[d_in, d_out]` weight, indexed both by output
/// (for the forward product and the weight gradient) and by input (for the
/// input gradient). Values are stored once, in output order.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseWeight {
    d_in: usize,
    d_out: usize,
    /// Entries of output `j` are `out_ptr[j]..out_ptr[j + 1]`.
    out_ptr: Vec<usize>,
    /// Input index of each entry, in output order.
    out_idx: Vec<u32>,
    /// Value of each entry, in output order.
    values: Vec<f32>,
    /// Entries of input `i` are `in_ptr[i]..in_ptr[i + 1]` of `in_idx`/`in_pos`.
    in_ptr: Vec<usize>,
    /// Output index of each entry, in input order.
    in_idx: Vec<u32>,
    /// Position in `values` of each entry, in input order.
    in_pos: Vec<u32>,
}

impl SparseWeight {
    /// Keeps the entries of the row-major `[d_in, d_out]` `weights` that
    /// `kept` flags (a mask layer's row-major flags).
    pub fn from_dense(
        d_in: usize,
        d_out: usize,
        weights: &[f32],
        kept: &[bool],
    ) -> Result<Self, SparseError> {
        let n = d_in
            .checked_mul(d_out)
            .ok_or(SparseError::Shape(format!("{d_in} x {d_out} overflows")))?;
        if weights.len() != n || kept.len() != n {
            return Err(SparseError::Shape(format!(
                "a {d_in} x {d_out} weight needs {n} values and flags, got {} and {}",
                weights.len(),
                kept.len()
            )));
        }
        if d_in > u32::MAX as usize || d_out > u32::MAX as usize {
            return Err(SparseError::Shape(format!("{d_in} x {d_out} is too large")));
        }
        let mut out_ptr = Vec::with_capacity(d_out + 1);
        let (mut out_idx, mut values) = (Vec::new(), Vec::new());
        out_ptr.push(0);
        for j in 0..d_out {
            for i in 0..d_in {
                if kept[i * d_out + j] {
                    out_idx.push(i as u32);
                    values.push(weights[i * d_out + j]);
                }
            }
            out_ptr.push(out_idx.len());
        }
        let (in_ptr, in_idx, in_pos) = transpose_index(d_in, &out_ptr, &out_idx);
        Ok(Self {
            d_in,
            d_out,
            out_ptr,
            out_idx,
            values,
            in_ptr,
            in_idx,
            in_pos,
        })
    }

    /// Input size.
    pub fn d_in(&self) -> usize {
        self.d_in
    }

    /// Output size.
    pub fn d_out(&self) -> usize {
        self.d_out
    }

    /// Number of kept entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The kept values, in output order (the order of
    /// [`SparseWeight::weight_grad`]'s result).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The kept values, mutable (an optimizer updates them in place).
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// The row-major `[d_in, d_out]` dense weight, zero where pruned.
    pub fn to_dense(&self) -> Vec<f32> {
        super::optim::scatter(&self.positions(), &self.values, self.d_in * self.d_out)
    }

    /// The row-major index in the dense `[d_in, d_out]` weight of each kept
    /// entry, in the order of [`SparseWeight::values`].
    pub fn positions(&self) -> Vec<usize> {
        let mut positions = Vec::with_capacity(self.nnz());
        for j in 0..self.d_out {
            let inputs = &self.out_idx[self.out_ptr[j]..self.out_ptr[j + 1]];
            positions.extend(inputs.iter().map(|&i| i as usize * self.d_out + j));
        }
        positions
    }

    /// Forward product into `y_t` (`[d_out, batch]`): `yᵀ = Wᵀ xᵀ (+ b)`,
    /// with `x_t` `[d_in, batch]`.
    ///
    /// # Panics
    /// If a buffer's length does not fit the shapes (these are the raw
    /// kernels; [`SparseTicket`](super::SparseTicket) checks its inputs).
    pub fn forward(&self, x_t: &[f32], batch: usize, bias: Option<&[f32]>, y_t: &mut [f32]) {
        assert_eq!(x_t.len(), self.d_in * batch, "x_t is [d_in, batch]");
        assert_eq!(y_t.len(), self.d_out * batch, "y_t is [d_out, batch]");
        for (j, row) in y_t.chunks_exact_mut(batch).enumerate() {
            row.fill(bias.map_or(0.0, |b| b[j]));
            let range = self.out_ptr[j]..self.out_ptr[j + 1];
            let entries = self.out_idx[range.clone()]
                .iter()
                .zip(&self.values[range])
                .map(|(&i, &w)| (i as usize, w));
            accumulate_rows(entries, x_t, batch, row);
        }
    }

    /// Input gradient into `dx_t` (`[d_in, batch]`): `dxᵀ = W dyᵀ`, with
    /// `dy_t` `[d_out, batch]`.
    ///
    /// # Panics
    /// If a buffer's length does not fit the shapes (these are the raw
    /// kernels; [`SparseTicket`](super::SparseTicket) checks its inputs).
    pub fn input_grad(&self, dy_t: &[f32], batch: usize, dx_t: &mut [f32]) {
        assert_eq!(dy_t.len(), self.d_out * batch, "dy_t is [d_out, batch]");
        assert_eq!(dx_t.len(), self.d_in * batch, "dx_t is [d_in, batch]");
        for (i, row) in dx_t.chunks_exact_mut(batch).enumerate() {
            row.fill(0.0);
            let range = self.in_ptr[i]..self.in_ptr[i + 1];
            let entries = self.in_idx[range.clone()]
                .iter()
                .zip(&self.in_pos[range])
                .map(|(&j, &k)| (j as usize, self.values[k as usize]));
            accumulate_rows(entries, dy_t, batch, row);
        }
    }

    /// Weight gradient at the kept entries, in [`SparseWeight::values`]
    /// order: `g_ij = Σ_n x[n, i] dy[n, j]`.
    ///
    /// # Panics
    /// If a buffer's length does not fit the shapes (these are the raw
    /// kernels; [`SparseTicket`](super::SparseTicket) checks its inputs).
    pub fn weight_grad(&self, x_t: &[f32], dy_t: &[f32], batch: usize, grad: &mut [f32]) {
        assert_eq!(grad.len(), self.nnz(), "one gradient per kept entry");
        assert_eq!(x_t.len(), self.d_in * batch, "x_t is [d_in, batch]");
        assert_eq!(dy_t.len(), self.d_out * batch, "dy_t is [d_out, batch]");
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above).
            unsafe { weight_grad_avx2(self, x_t, dy_t, batch, grad) };
            return;
        }
        weight_grad_body(self, x_t, dy_t, batch, grad);
    }
}

/// `row += Σ w · rows[i]` over `entries` `(i, w)`, `rows` holding rows of
/// `batch` floats.
fn accumulate_rows(
    entries: impl Iterator<Item = (usize, f32)> + Clone,
    rows: &[f32],
    batch: usize,
    row: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { accumulate_avx2(entries, rows, batch, row) };
        return;
    }
    accumulate_body(entries, rows, batch, row);
}

// The kernels compiled for AVX2 where the CPU has it: the same code as the
// portable bodies (Rust never fuses a multiply and an add on its own), so
// the results are identical bit for bit; only the vector width changes.

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(
    entries: impl Iterator<Item = (usize, f32)> + Clone,
    rows: &[f32],
    batch: usize,
    row: &mut [f32],
) {
    accumulate_body(entries, rows, batch, row);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn weight_grad_avx2(s: &SparseWeight, x_t: &[f32], dy_t: &[f32], batch: usize, grad: &mut [f32]) {
    weight_grad_body(s, x_t, dy_t, batch, grad);
}

/// Accumulates in register-sized chunks of the batch: each chunk of `row`
/// stays in registers while every entry adds into it.
#[inline(always)]
fn accumulate_body(
    entries: impl Iterator<Item = (usize, f32)> + Clone,
    rows: &[f32],
    batch: usize,
    row: &mut [f32],
) {
    if batch == 1 {
        row[0] += gather_dot(entries, rows);
        return;
    }
    let mut start = 0;
    start = chunks::<32>(&entries, rows, batch, row, start);
    start = chunks::<8>(&entries, rows, batch, row, start);
    chunks::<1>(&entries, rows, batch, row, start);
}

/// `Σ w · rows[i]` over `entries`, in four independent partial sums (one
/// example: no batch to vectorize over, so break the dependency chain).
#[inline(always)]
fn gather_dot(mut entries: impl Iterator<Item = (usize, f32)>, rows: &[f32]) -> f32 {
    let mut sums = [0.0f32; 4];
    'outer: loop {
        for sum in &mut sums {
            let Some((i, w)) = entries.next() else {
                break 'outer;
            };
            *sum += w * rows[i];
        }
    }
    (sums[0] + sums[1]) + (sums[2] + sums[3])
}

/// Processes whole chunks of `W` columns from `start`; returns where it
/// stopped.
#[inline(always)]
fn chunks<const W: usize>(
    entries: &(impl Iterator<Item = (usize, f32)> + Clone),
    rows: &[f32],
    batch: usize,
    row: &mut [f32],
    mut start: usize,
) -> usize {
    while start + W <= batch {
        let mut acc = [0.0f32; W];
        acc.copy_from_slice(&row[start..start + W]);
        for (i, w) in entries.clone() {
            let x: &[f32; W] = rows[i * batch + start..][..W].try_into().expect("W floats");
            for l in 0..W {
                acc[l] += w * x[l];
            }
        }
        row[start..start + W].copy_from_slice(&acc);
        start += W;
    }
    start
}

#[inline(always)]
fn weight_grad_body(s: &SparseWeight, x_t: &[f32], dy_t: &[f32], batch: usize, grad: &mut [f32]) {
    for j in 0..s.d_out {
        let dy = &dy_t[j * batch..(j + 1) * batch];
        let range = s.out_ptr[j]..s.out_ptr[j + 1];
        for (g, &i) in grad[range.clone()].iter_mut().zip(&s.out_idx[range]) {
            let i = i as usize;
            *g = dot(&x_t[i * batch..(i + 1) * batch], dy);
        }
    }
}

/// The by-input index of a by-output index: for each input, its entries'
/// outputs and their positions in output order.
fn transpose_index(
    d_in: usize,
    out_ptr: &[usize],
    out_idx: &[u32],
) -> (Vec<usize>, Vec<u32>, Vec<u32>) {
    let mut in_ptr = vec![0usize; d_in + 1];
    for &i in out_idx {
        in_ptr[i as usize + 1] += 1;
    }
    for i in 0..d_in {
        in_ptr[i + 1] += in_ptr[i];
    }
    let mut next = in_ptr.clone();
    let mut in_idx = vec![0u32; out_idx.len()];
    let mut in_pos = vec![0u32; out_idx.len()];
    for j in 0..out_ptr.len() - 1 {
        for (k, &i) in out_idx
            .iter()
            .enumerate()
            .take(out_ptr[j + 1])
            .skip(out_ptr[j])
        {
            let i = i as usize;
            in_idx[next[i]] = j as u32;
            in_pos[next[i]] = k as u32;
            next[i] += 1;
        }
    }
    (in_ptr, in_idx, in_pos)
}

/// `x · y`, summed in eight lanes (vectorizable).
#[inline(always)]
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            lanes[l] += a[l] * b[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Transposes a row-major `[rows, cols]` buffer into `[cols, rows]`.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert_eq!(src.len(), rows * cols);
    assert_eq!(dst.len(), rows * cols);
    // In 16 x 16 tiles, so reads and writes both stay in cache lines.
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_matmul(x: &[f32], w: &[f32], n: usize, d_in: usize, d_out: usize) -> Vec<f32> {
        let mut y = vec![0.0; n * d_out];
        for r in 0..n {
            for i in 0..d_in {
                for j in 0..d_out {
                    y[r * d_out + j] += x[r * d_in + i] * w[i * d_out + j];
                }
            }
        }
        y
    }

    #[test]
    fn kernels_match_dense_products_on_masked_weights() {
        // Batch 1 (gather), 5 (single columns), 45 (chunks of 32, 8 and 1).
        for n in [1, 5, 45] {
            check_kernels(n, 7, 4);
        }
    }

    fn check_kernels(n: usize, d_in: usize, d_out: usize) {
        let w: Vec<f32> = (0..d_in * d_out).map(|k| (k as f32 * 0.37).sin()).collect();
        let kept: Vec<bool> = (0..d_in * d_out).map(|k| k % 3 != 1).collect();
        let masked: Vec<f32> = w
            .iter()
            .zip(&kept)
            .map(|(&v, &k)| if k { v } else { 0.0 })
            .collect();
        let x: Vec<f32> = (0..n * d_in).map(|k| (k as f32 * 0.11).cos()).collect();
        let dy: Vec<f32> = (0..n * d_out).map(|k| (k as f32 * 0.23).sin()).collect();
        let s = SparseWeight::from_dense(d_in, d_out, &w, &kept).unwrap();
        assert_eq!(s.to_dense(), masked);
        let (mut x_t, mut dy_t) = (vec![0.0; n * d_in], vec![0.0; n * d_out]);
        transpose(&x, n, d_in, &mut x_t);
        transpose(&dy, n, d_out, &mut dy_t);
        let mut y_t = vec![0.0; n * d_out];
        s.forward(&x_t, n, None, &mut y_t);
        let mut y = vec![0.0; n * d_out];
        transpose(&y_t, d_out, n, &mut y);
        let expected = dense_matmul(&x, &masked, n, d_in, d_out);
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let mut dx_t = vec![0.0; n * d_in];
        s.input_grad(&dy_t, n, &mut dx_t);
        for i in 0..d_in {
            for r in 0..n {
                let e: f32 = (0..d_out)
                    .map(|j| dy[r * d_out + j] * masked[i * d_out + j])
                    .sum();
                assert!((dx_t[i * n + r] - e).abs() < 1e-5);
            }
        }
        let mut g = vec![0.0; s.nnz()];
        s.weight_grad(&x_t, &dy_t, n, &mut g);
        let mut g_dense = s.clone();
        g_dense.values_mut().copy_from_slice(&g);
        let g_dense = g_dense.to_dense();
        for i in 0..d_in {
            for j in 0..d_out {
                let e: f32 = (0..n).map(|r| x[r * d_in + i] * dy[r * d_out + j]).sum();
                let e = if kept[i * d_out + j] { e } else { 0.0 };
                assert!((g_dense[i * d_out + j] - e).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        assert!(SparseWeight::from_dense(2, 3, &[0.0; 5], &[true; 6]).is_err());
        assert!(SparseWeight::from_dense(2, 3, &[0.0; 6], &[true; 5]).is_err());
    }
}
