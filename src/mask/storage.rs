//! Mask files: a compact bit-packed binary format with a checksum, serde, and
//! safetensors export/import.
//!
//! Binary layout (little-endian): magic `BLMASK\0\x01`, `u32` layer count;
//! per layer `u32` path length, UTF-8 path, `u32` rank, `u64` per dimension,
//! then the keep flags packed 8 per byte (least significant bit first); a
//! trailing `u32` CRC-32 of everything before it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{LayerMask, Mask, MaskError};
use crate::io::{checksum, write_atomic};

const MAGIC: &[u8; 8] = b"BLMASK\0\x01";

/// serde form of a [`LayerMask`]: shape plus bit-packed keep flags.
#[derive(Serialize, Deserialize)]
pub(super) struct PackedLayer {
    shape: Vec<usize>,
    bits: Vec<u8>,
}

impl From<LayerMask> for PackedLayer {
    fn from(layer: LayerMask) -> Self {
        Self {
            bits: pack_bits(layer.kept()),
            shape: layer.shape,
        }
    }
}

impl TryFrom<PackedLayer> for LayerMask {
    type Error = String;

    fn try_from(packed: PackedLayer) -> Result<Self, String> {
        let n = numel(&packed.shape).ok_or("shape overflows")?;
        if packed.bits.len() != n.div_ceil(8) {
            return Err(format!(
                "{} packed bytes for a shape of {n} entries",
                packed.bits.len()
            ));
        }
        Ok(LayerMask {
            kept: unpack_bits(&packed.bits, n),
            shape: packed.shape,
        })
    }
}

fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn pack_bits(kept: &[bool]) -> Vec<u8> {
    let mut bytes = vec![0u8; kept.len().div_ceil(8)];
    for (i, _) in kept.iter().enumerate().filter(|(_, k)| **k) {
        bytes[i / 8] |= 1 << (i % 8);
    }
    bytes
}

fn unpack_bits(bytes: &[u8], n: usize) -> Vec<bool> {
    (0..n).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0).collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
}

impl Mask {
    /// Serializes the mask to the bit-packed binary format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.total_count() / 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.num_layers() as u32).to_le_bytes());
        for (path, layer) in self.layers() {
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(&(layer.shape().len() as u32).to_le_bytes());
            for &d in layer.shape() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            out.extend_from_slice(&pack_bits(layer.kept()));
        }
        let crc = checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses the bit-packed binary format. Never panics on bad input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MaskError> {
        Self::parse(bytes).map_err(|reason| MaskError::Corrupt {
            path: PathBuf::from("<bytes>"),
            reason,
        })
    }

    fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err("wrong magic number (not a burn-lottery mask file)".into());
        }
        if bytes.len() < MAGIC.len() + 8 {
            return Err(format!("truncated: only {} bytes", bytes.len()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(crc.try_into().unwrap());
        if checksum(body) != stored {
            return Err("checksum mismatch (file truncated or corrupted)".into());
        }
        let mut r = Reader {
            bytes: body,
            pos: MAGIC.len(),
        };
        let count = r.u32()?;
        let mut layers = Vec::new();
        for _ in 0..count {
            let len = r.u32()? as usize;
            let path = std::str::from_utf8(r.take(len)?)
                .map_err(|_| "parameter path is not UTF-8".to_string())?
                .to_string();
            let rank = r.u32()? as usize;
            if rank > 8 {
                return Err(format!("`{path}` has implausible rank {rank}"));
            }
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(
                    usize::try_from(r.u64()?)
                        .map_err(|_| format!("`{path}` dimension overflows"))?,
                );
            }
            let n = numel(&shape).ok_or_else(|| format!("`{path}` shape overflows"))?;
            let bits = r.take(n.div_ceil(8))?;
            layers.push((
                path,
                LayerMask {
                    kept: unpack_bits(bits, n),
                    shape,
                },
            ));
        }
        if r.pos != body.len() {
            return Err(format!("{} unexpected trailing bytes", body.len() - r.pos));
        }
        let expected = layers.len();
        let mask = Mask::from_layers(layers);
        if mask.num_layers() != expected {
            return Err("duplicate parameter path".into());
        }
        Ok(mask)
    }

    /// Saves the mask atomically in the bit-packed binary format.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), MaskError> {
        let path = path.as_ref();
        write_atomic(path, &self.to_bytes()).map_err(|source| MaskError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Loads a mask saved by [`Mask::save`], verifying its checksum.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, MaskError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| MaskError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes).map_err(|reason| MaskError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Serializes the mask as safetensors: one `u8` tensor (0 or 1) per
    /// parameter path, with the parameter's shape.
    ///
    /// burn stores a `Linear` weight as `[d_in, d_out]`; PyTorch's
    /// `nn.Linear.weight` is `[out, in]`, so transpose rank-2 masks of linear
    /// layers when applying them in PyTorch.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let data: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .layers()
            .map(|(path, layer)| {
                let bytes = layer.kept().iter().map(|&k| u8::from(k)).collect();
                (path.to_string(), bytes, layer.shape().to_vec())
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
            .iter()
            .map(|(path, bytes, shape)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::U8,
                    shape.clone(),
                    bytes,
                )
                .expect("shape and byte count agree by construction");
                (path.clone(), view)
            })
            .collect();
        let metadata = [("format".to_string(), "burn-lottery-mask".to_string())].into();
        safetensors::serialize(views, Some(metadata))
            .expect("serializing in-memory u8 tensors cannot fail")
    }

    /// Parses safetensors holding one 0/1 tensor per parameter path (`u8`,
    /// `bool`, or `f32`/`f64` with values exactly 0 or 1).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, MaskError> {
        Self::parse_safetensors(bytes, Path::new("<bytes>"))
    }

    fn parse_safetensors(bytes: &[u8], file: &Path) -> Result<Self, MaskError> {
        let corrupt = |reason: String| MaskError::Corrupt {
            path: file.to_path_buf(),
            reason,
        };
        let tensors = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| corrupt(format!("not a safetensors file: {e}")))?;
        let mut layers = Vec::new();
        for (name, view) in tensors.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::U8 | safetensors::Dtype::BOOL => {
                    data.iter().map(|&b| f64::from(b)).collect()
                }
                safetensors::Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
                    .collect(),
                safetensors::Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                other => {
                    return Err(corrupt(format!(
                        "tensor `{name}` has dtype {other:?}; expected U8, BOOL, F32 or F64"
                    )));
                }
            };
            layers.push((name.clone(), LayerMask::from_values(&name, shape, &values)?));
        }
        Ok(Mask::from_layers(layers))
    }

    /// Writes [`Mask::to_safetensors`] to a file, atomically.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), MaskError> {
        let path = path.as_ref();
        write_atomic(path, &self.to_safetensors()).map_err(|source| MaskError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a mask from a safetensors file.
    pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Self, MaskError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| MaskError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_safetensors(&bytes, path)
    }
}
