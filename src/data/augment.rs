//! Data augmentation and normalization, from `u8` images straight into `f32`.
//!
//! The CIFAR-10 recipe: pad the image with 4 zero pixels on every side,
//! crop a random 32x32 window, flip it horizontally with probability 1/2,
//! then normalize each channel: `(pixel / 255 - mean[c]) / std[c]`. Padding
//! pixels are zero *before* normalization, as in torchvision's `RandomCrop`
//! followed by `Normalize`.
//!
//! The kernel works row by row on whole slices with one 256-entry lookup
//! table per channel: no allocation per image or pixel, no padded copy.

use super::{DataError, ImageDataset};
use crate::data::cifar::{CIFAR10_MEAN, CIFAR10_STD};
use crate::data::seed::splitmix64;

/// Per-channel normalization: `out = (pixel / 255 - mean[c]) / std[c]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalization {
    /// Normalization with the given per-channel mean and standard deviation
    /// (of pixels scaled to `[0, 1]`). Fails unless both have the same
    /// non-zero length, every value is finite and every std is positive.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self, DataError> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(DataError::InvalidArgument(format!(
                "normalization needs as many means as stds (got {} and {})",
                mean.len(),
                std.len()
            )));
        }
        if mean.iter().any(|m| !m.is_finite()) || std.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(DataError::InvalidArgument(format!(
                "normalization needs finite means and positive stds (got {mean:?}, {std:?})"
            )));
        }
        Ok(Self { mean, std })
    }

    /// The CIFAR-10 constants [`CIFAR10_MEAN`] and [`CIFAR10_STD`].
    pub fn cifar10() -> Self {
        Self {
            mean: CIFAR10_MEAN.to_vec(),
            std: CIFAR10_STD.to_vec(),
        }
    }

    /// Only scales to `[0, 1]` (mean 0, std 1) for `channels` channels.
    pub fn unit(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels.max(1)],
            std: vec![1.0; channels.max(1)],
        }
    }

    /// The per-channel mean and std of `dataset` (normally the training
    /// set), see [`ImageDataset::channel_mean_std`]. A constant channel gets
    /// std 1.
    pub fn from_dataset(dataset: &ImageDataset) -> Self {
        let (mean, mut std) = dataset.channel_mean_std();
        for s in &mut std {
            if !s.is_finite() || *s <= 0.0 {
                *s = 1.0;
            }
        }
        Self { mean, std }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Per-channel means.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Per-channel standard deviations.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// One table per channel mapping each `u8` value to its normalized `f32`.
    pub fn lookup_tables(&self) -> Vec<[f32; 256]> {
        self.mean
            .iter()
            .zip(&self.std)
            .map(|(&m, &s)| {
                let mut table = [0f32; 256];
                for (v, t) in table.iter_mut().enumerate() {
                    *t = (v as f32 / 255.0 - m) / s;
                }
                table
            })
            .collect()
    }
}

/// Random crop after zero padding, and random horizontal flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augmentation {
    /// Zero pixels added on each side before cropping back to the original
    /// size (4 for CIFAR-10). 0 disables the crop.
    pub padding: usize,
    /// Whether to flip horizontally with probability 1/2.
    pub horizontal_flip: bool,
}

impl Augmentation {
    /// The CIFAR-10 recipe: padding 4, random horizontal flip.
    pub fn cifar10() -> Self {
        Self {
            padding: 4,
            horizontal_flip: true,
        }
    }

    /// The transformation drawn from `seed`: each shift uniform in
    /// `-padding..=padding`, the flip with probability 1/2 (one
    /// SplitMix64 output: bits 0..32 give the vertical shift, bits 32..63 the
    /// horizontal shift, bit 63 the flip).
    pub fn sample(&self, seed: u64) -> AugmentParams {
        let r = splitmix64(seed);
        let choices = 2 * self.padding as u64 + 1;
        let pad = self.padding as isize;
        let shift_y = (((r & 0xffff_ffff) * choices) >> 32) as isize - pad;
        let shift_x = ((((r >> 32) & 0x7fff_ffff) * choices) >> 31) as isize - pad;
        AugmentParams {
            shift_y,
            shift_x,
            flip: self.horizontal_flip && (r >> 63) == 1,
        }
    }
}

/// One drawn transformation: output pixel `(y, x)` of the crop is input
/// pixel `(y + shift_y, x + shift_x)` (zero outside the image); with `flip`,
/// the crop is then mirrored left-right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AugmentParams {
    /// Vertical offset of the crop window relative to the original image.
    pub shift_y: isize,
    /// Horizontal offset of the crop window relative to the original image.
    pub shift_x: isize,
    /// Whether the crop is mirrored left-right.
    pub flip: bool,
}

impl AugmentParams {
    /// The identity transformation.
    pub const IDENTITY: Self = Self {
        shift_y: 0,
        shift_x: 0,
        flip: false,
    };
}

/// Writes image `src` (`C x H x W` bytes, `shape = [C, H, W]`) transformed
/// by `params` and normalized by `tables` (from
/// [`Normalization::lookup_tables`], one per channel) into `out`
/// (`C * H * W` floats). Pixels from outside the image are zero before
/// normalization.
///
/// Panics if the slice lengths do not match `shape` or `tables` has fewer
/// than `C` entries (the loader checks these once, up front).
pub fn augment_normalize_into(
    src: &[u8],
    shape: [usize; 3],
    params: AugmentParams,
    tables: &[[f32; 256]],
    out: &mut [f32],
) {
    let [channels, height, width] = shape;
    let plane = height * width;
    assert_eq!(src.len(), channels * plane, "source image length");
    assert_eq!(out.len(), channels * plane, "output image length");
    assert!(tables.len() >= channels, "one lookup table per channel");
    let (h, w) = (height as isize, width as isize);
    let sx = params.shift_x;
    // Output columns [x0, x1) read the image; the rest are padding.
    let (x0, x1) = if params.flip {
        (sx.clamp(0, w), (w + sx).clamp(0, w))
    } else {
        ((-sx).clamp(0, w), (w - sx).clamp(0, w))
    };
    let (x0, x1) = (x0 as usize, x1.max(x0) as usize);
    for ((src_plane, out_plane), table) in src
        .chunks_exact(plane)
        .zip(out.chunks_exact_mut(plane))
        .zip(tables)
    {
        let fill = table[0];
        for (y, out_row) in out_plane.chunks_exact_mut(width).enumerate() {
            let sy = y as isize + params.shift_y;
            if sy < 0 || sy >= h || x0 == x1 {
                out_row.fill(fill);
                continue;
            }
            let src_row = &src_plane[sy as usize * width..(sy as usize + 1) * width];
            out_row[..x0].fill(fill);
            out_row[x1..].fill(fill);
            let inside = &mut out_row[x0..x1];
            if params.flip {
                // out[x] = src[w - 1 - x + sx]
                let lo = (w - x1 as isize + sx) as usize;
                let hi = (w - x0 as isize + sx) as usize;
                for (o, &s) in inside.iter_mut().zip(src_row[lo..hi].iter().rev()) {
                    *o = table[usize::from(s)];
                }
            } else {
                // out[x] = src[x + sx]
                let lo = (x0 as isize + sx) as usize;
                for (o, &s) in inside.iter_mut().zip(&src_row[lo..lo + (x1 - x0)]) {
                    *o = table[usize::from(s)];
                }
            }
        }
    }
}

/// Normalizes image `src` (`C x H x W` bytes) into `out` without any
/// geometric change.
pub fn normalize_into(src: &[u8], shape: [usize; 3], tables: &[[f32; 256]], out: &mut [f32]) {
    let plane = shape[1] * shape[2];
    assert_eq!(src.len(), shape[0] * plane, "source image length");
    assert_eq!(out.len(), shape[0] * plane, "output image length");
    for ((s, o), table) in src
        .chunks_exact(plane)
        .zip(out.chunks_exact_mut(plane))
        .zip(tables)
    {
        for (o, &s) in o.iter_mut().zip(s) {
            *o = table[usize::from(s)];
        }
    }
}
