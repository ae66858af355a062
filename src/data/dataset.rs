//! [`ImageDataset`]: labelled `u8` images held in memory.

use super::DataError;

/// Labelled images held in memory.
///
/// Pixels are `u8` in `N x C x H x W` order (each image is `C` planes of
/// `H x W`, row-major); labels are class indices `0..num_classes`.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageDataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    channels: usize,
    height: usize,
    width: usize,
    num_classes: usize,
}

impl std::fmt::Debug for ImageDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageDataset")
            .field("len", &self.len())
            .field("channels", &self.channels)
            .field("height", &self.height)
            .field("width", &self.width)
            .field("num_classes", &self.num_classes)
            .finish()
    }
}

impl ImageDataset {
    /// Builds a dataset, checking that `images` holds exactly
    /// `labels.len() * channels * height * width` bytes and that every label
    /// is below `num_classes`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        channels: usize,
        height: usize,
        width: usize,
        num_classes: usize,
    ) -> Result<Self, DataError> {
        let image_len = channels * height * width;
        if image_len == 0 || num_classes == 0 {
            return Err(DataError::InvalidArgument(format!(
                "image shape {channels}x{height}x{width} with {num_classes} classes is empty"
            )));
        }
        if Some(images.len()) != labels.len().checked_mul(image_len) {
            return Err(DataError::InvalidArgument(format!(
                "{} pixel bytes for {} labels of {channels}x{height}x{width} images \
                 (expected {})",
                images.len(),
                labels.len(),
                labels.len().saturating_mul(image_len)
            )));
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= num_classes)
        {
            return Err(DataError::InvalidArgument(format!(
                "label {label} of sample {index} is not a class index 0..{num_classes}"
            )));
        }
        Ok(Self {
            images,
            labels,
            channels,
            height,
            width,
            num_classes,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of channels per image (3 for CIFAR-10, 1 for MNIST).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of classes; every label is below it.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Bytes per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Shape of one image: `[channels, height, width]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The pixels of image `index` (`C x H x W`). Panics if `index >= len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[index * n..(index + 1) * n]
    }

    /// The label of image `index`. Panics if `index >= len()`.
    pub fn label(&self, index: usize) -> u8 {
        self.labels[index]
    }

    /// All pixels, `N x C x H x W`.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// A new dataset made of the given images, in the given order (a range
    /// such as `0..1000`, or `indices.iter().copied()`). Indices may repeat.
    /// Fails if an index is out of range.
    pub fn subset<I: IntoIterator<Item = usize>>(&self, indices: I) -> Result<Self, DataError> {
        let n = self.image_len();
        let indices = indices.into_iter();
        let mut images = Vec::with_capacity(indices.size_hint().0 * n);
        let mut labels = Vec::with_capacity(indices.size_hint().0);
        for i in indices {
            if i >= self.len() {
                return Err(DataError::InvalidArgument(format!(
                    "subset index {i} out of range for a dataset of {} images",
                    self.len()
                )));
            }
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Ok(Self {
            images,
            labels,
            channels: self.channels,
            height: self.height,
            width: self.width,
            num_classes: self.num_classes,
        })
    }

    /// Appends the images of `other` (same image shape and classes).
    pub fn concat(mut self, other: &ImageDataset) -> Result<Self, DataError> {
        if self.image_shape() != other.image_shape() || self.num_classes != other.num_classes {
            return Err(DataError::InvalidArgument(format!(
                "cannot concatenate {:?} images ({} classes) with {:?} images ({} classes)",
                self.image_shape(),
                self.num_classes,
                other.image_shape(),
                other.num_classes
            )));
        }
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
        Ok(self)
    }

    /// Per-channel mean and (population) standard deviation of the pixels
    /// scaled to `[0, 1]`, as `(mean, std)`. This is how the LeNet recipe
    /// normalizes MNIST-like inputs: with the training set's statistics.
    pub fn channel_mean_std(&self) -> (Vec<f32>, Vec<f32>) {
        let plane = self.height * self.width;
        let mut sum = vec![0u64; self.channels];
        let mut sum_sq = vec![0u64; self.channels];
        for image in self.images.chunks_exact(self.image_len()) {
            for (c, p) in image.chunks_exact(plane).enumerate() {
                let mut s = 0u64;
                let mut s2 = 0u64;
                for &v in p {
                    let v = u64::from(v);
                    s += v;
                    s2 += v * v;
                }
                sum[c] += s;
                sum_sq[c] += s2;
            }
        }
        let count = (self.len() * plane).max(1) as f64;
        let mut mean = Vec::with_capacity(self.channels);
        let mut std = Vec::with_capacity(self.channels);
        for c in 0..self.channels {
            let m = sum[c] as f64 / count;
            let var = (sum_sq[c] as f64 / count - m * m).max(0.0);
            mean.push((m / 255.0) as f32);
            std.push((var.sqrt() / 255.0) as f32);
        }
        (mean, std)
    }
}

/// A dataset's training and test splits.
#[derive(Clone, Debug)]
pub struct DatasetSplits {
    /// The training split.
    pub train: ImageDataset,
    /// The test split.
    pub test: ImageDataset,
}
