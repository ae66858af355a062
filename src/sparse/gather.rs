//! The sparse product written with burn's own differentiable operations:
//! gather the inputs of the kept entries, multiply by the kept values,
//! scatter-add into the outputs. Autodiff differentiates it (the gradient
//! of the kept values is the gathered product of inputs and output
//! gradients), and it runs on every backend, wgpu included.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

use super::SparseError;

/// The positions of a mask's kept entries, on a device: entry `k` joins
/// input `inputs[k]` to output `outputs[k]` of a `[d_in, d_out]` weight.
#[derive(Debug, Clone)]
pub struct GatherScatter {
    d_in: usize,
    d_out: usize,
    inputs: Tensor<1, Int>,
    outputs: Tensor<1, Int>,
}

impl GatherScatter {
    /// The kept entries of a row-major `[d_in, d_out]` mask.
    pub fn new(
        d_in: usize,
        d_out: usize,
        kept: &[bool],
        device: &Device,
    ) -> Result<Self, SparseError> {
        if d_in.checked_mul(d_out) != Some(kept.len()) {
            return Err(SparseError::Shape(format!(
                "a {d_in} x {d_out} mask needs {} flags, got {}",
                d_in.saturating_mul(d_out),
                kept.len()
            )));
        }
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        for (k, _) in kept.iter().enumerate().filter(|(_, k)| **k) {
            inputs.push((k / d_out) as i64);
            outputs.push((k % d_out) as i64);
        }
        let n = inputs.len();
        let upload = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device);
        Ok(Self {
            d_in,
            d_out,
            inputs: upload(inputs),
            outputs: upload(outputs),
        })
    }

    /// Number of kept entries.
    pub fn nnz(&self) -> usize {
        self.inputs.dims()[0]
    }

    /// The kept values of a dense `[d_in, d_out]` weight, in this index's
    /// order (differentiable).
    pub fn gather_values(&self, weight: Tensor<2>) -> Tensor<1> {
        let flat = self.inputs.clone().mul_scalar(self.d_out as i64) + self.outputs.clone();
        weight.reshape([self.d_in * self.d_out]).select(0, flat)
    }

    /// `x W` for `x` `[batch, d_in]` and the kept `values` of `W`.
    pub fn forward(&self, x: Tensor<2>, values: Tensor<1>) -> Tensor<2> {
        let batch = x.dims()[0];
        let products = x.select(1, self.inputs.clone()) * values.unsqueeze_dim::<2>(0);
        Tensor::zeros([batch, self.d_out], &products.device()).select_assign(
            1,
            self.outputs.clone(),
            products,
            IndexingUpdateOp::Add,
        )
    }

    /// `dy Wᵀ` for `dy` `[batch, d_out]` (the input gradient, by hand).
    pub fn input_grad(&self, dy: Tensor<2>, values: Tensor<1>) -> Tensor<2> {
        let batch = dy.dims()[0];
        let products = dy.select(1, self.outputs.clone()) * values.unsqueeze_dim::<2>(0);
        Tensor::zeros([batch, self.d_in], &products.device()).select_assign(
            1,
            self.inputs.clone(),
            products,
            IndexingUpdateOp::Add,
        )
    }

    /// `xᵀ dy` at the kept entries only (the weight gradient, by hand).
    pub fn weight_grad(&self, x: Tensor<2>, dy: Tensor<2>) -> Tensor<1> {
        let products = x.select(1, self.inputs.clone()) * dy.select(1, self.outputs.clone());
        products.sum_dim(0).squeeze_dim(0)
    }
}
