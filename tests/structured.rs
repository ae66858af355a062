//! Structured pruning by L1 norm and the export to a smaller dense network:
//! unit layout and scores, counts per level, validation, the exported
//! LeNet and ResNet computing the masked networks' outputs, IMP with it.

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use burn_lottery::imp::{Branch, Imp, ImpConfig, Layout, PruningMethod, Silent};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::export::{
    ExportError, export_lenet, export_resnet, lenet_channel_groups, resnet_channel_groups, shrink,
};
use burn_lottery::models::{Classifier, LeNet, ResNet, ResNetConfig, cross_entropy};
use burn_lottery::params::{float_params, num_trainable_params};
use burn_lottery::prune::{
    ChannelGroup, PruneError, Pruner, StructuredConfig, Weights, l1_unit_scores,
};
use burn_lottery::rewind::RewindCheckpoint;

use crate::common::{data, init, ndarray, tiny_imp_config, values};

fn weights(layers: &[(&str, Vec<f32>)]) -> Weights {
    layers
        .iter()
        .map(|(p, v)| (p.to_string(), v.clone()))
        .collect()
}

fn kept(mask: &Mask, path: &str) -> Vec<bool> {
    mask.layer(path).unwrap().kept().to_vec()
}

#[test]
fn l1_scores_sum_each_filter_or_neuron() {
    // Linear [d_in = 3, d_out = 2]: neuron j is column j.
    let w = [1.0, -2.0, -3.0, 0.5, 0.25, 4.0];
    let all = [true; 6];
    let scores = l1_unit_scores("fc.weight", &[3, 2], &w, &all).unwrap();
    assert_eq!(scores, vec![4.25, 6.5]);
    // Only kept weights count.
    let some = [true, true, false, true, true, true];
    let scores = l1_unit_scores("fc.weight", &[3, 2], &w, &some).unwrap();
    assert_eq!(scores, vec![1.25, 6.5]);
    // Conv [c_out = 2, c_in = 2, 1, 2]: filter o is a contiguous block.
    let w = [1.0, 1.0, -1.0, 1.0, 0.5, 0.5, 0.5, -0.5];
    let scores = l1_unit_scores("conv.weight", &[2, 2, 1, 2], &w, &[true; 8]).unwrap();
    assert_eq!(scores, vec![4.0, 2.0]);
    let err = l1_unit_scores("b", &[4], &[0.0; 4], &[true; 4]).unwrap_err();
    assert!(matches!(err, PruneError::InvalidStructured(_)), "{err}");
}

#[test]
fn each_level_removes_the_weakest_units_from_producer_and_consumer() {
    // fc1 [2, 3] -> fc2 [3, 2]; neurons' L1: 0.3, 3.0, 1.5.
    let mask = Mask::from_layers([
        ("fc1.weight".to_string(), LayerMask::dense(vec![2, 3])),
        ("fc2.weight".to_string(), LayerMask::dense(vec![3, 2])),
    ]);
    let w = weights(&[
        ("fc1.weight", vec![0.1, 1.0, -0.5, -0.2, 2.0, 1.0]),
        ("fc2.weight", vec![9.0, 9.0, 0.1, 0.1, 0.1, 0.1]),
    ]);
    let config = StructuredConfig::new(0.34, vec![ChannelGroup::new("fc1.weight", "fc2.weight")]);
    let pruner = config.init().unwrap();
    let level1 = pruner.next_mask_from_weights(&w, &mask).unwrap();
    // round(0.34 * 3) = 1 unit: neuron 0 (column 0 of fc1, row 0 of fc2),
    // although fc2's row 0 is large: the producer's L1 decides.
    assert_eq!(
        kept(&level1, "fc1.weight"),
        vec![false, true, true, false, true, true]
    );
    assert_eq!(
        kept(&level1, "fc2.weight"),
        vec![false, false, true, true, true, true]
    );
    let group = &config.groups[0];
    assert_eq!(group.kept_units(&level1).unwrap(), vec![1, 2]);
    // round(0.34 * 2) = 1: neuron 2 (1.5 < 3.0).
    let level2 = pruner.next_mask_from_weights(&w, &level1).unwrap();
    assert_eq!(group.kept_units(&level2).unwrap(), vec![1]);
    // One unit always stays.
    let level3 = pruner.next_mask_from_weights(&w, &level2).unwrap();
    assert_eq!(level3, level2);
    // One-shot to level 2 from the dense mask: the same units.
    assert_eq!(pruner.one_shot_from_weights(&w, &mask, 2).unwrap(), level2);
}

#[test]
fn invalid_structured_settings_are_typed_errors() {
    let groups = lenet_channel_groups();
    for bad in [
        StructuredConfig::new(0.0, groups.clone()),
        StructuredConfig::new(1.0, groups.clone()),
        StructuredConfig::new(0.2, vec![]),
        StructuredConfig::new(0.2, vec![ChannelGroup::new("fc1.weight", "fc1.weight")]),
        StructuredConfig::new(
            0.2,
            vec![
                ChannelGroup::new("fc1.weight", "fc2.weight"),
                ChannelGroup::new("fc1.weight", "fc3.weight"),
            ],
        ),
    ] {
        assert!(bad.init().is_err(), "{bad:?}");
    }
    let mask = Mask::from_layers([
        ("fc1.weight".to_string(), LayerMask::dense(vec![2, 3])),
        ("fc2.weight".to_string(), LayerMask::dense(vec![4, 2])),
    ]);
    let w = weights(&[("fc1.weight", vec![1.0; 6]), ("fc2.weight", vec![1.0; 8])]);
    let mismatch = StructuredConfig::new(0.5, vec![ChannelGroup::new("fc1.weight", "fc2.weight")]);
    let err = mismatch
        .init()
        .unwrap()
        .next_mask_from_weights(&w, &mask)
        .unwrap_err();
    assert!(err.to_string().contains("3 output units"), "{err}");
    let missing = StructuredConfig::new(0.5, vec![ChannelGroup::new("fc1.weight", "fc9.weight")]);
    let err = missing
        .init()
        .unwrap()
        .next_mask_from_weights(&w, &mask)
        .unwrap_err();
    assert!(err.to_string().contains("fc9.weight"), "{err}");
    // The config is strict JSON.
    assert!(
        serde_json::from_str::<StructuredConfig>(r#"{"fraction": 0.5}"#).is_err(),
        "unknown field accepted"
    );
}

/// `steps` SGD steps (lr 0.05) on random images, so biases, BatchNorm
/// shifts and running statistics are no longer their initial values.
fn perturb<M: Classifier>(mut model: M, device: &Device, image: [usize; 3], steps: usize) -> M {
    let mut optim = SgdConfig::new().init();
    for step in 0..steps {
        device.seed(100 + step as u64);
        let [c, h, w] = image;
        let x = Tensor::<4>::random([8, c, h, w], Distribution::Normal(0.0, 1.0), device);
        let labels: Vec<i64> = (0..8).map(|i| (i * 3 + step as i64) % 10).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [8]), device);
        let loss = cross_entropy(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    model
}

fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> (f32, f32) {
    let (a, b) = (values(a), values(b));
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = a.iter().map(|x| x.abs()).fold(0.0, f32::max);
    (diff, scale)
}

fn assert_close(a: Tensor<2>, b: Tensor<2>, what: &str) {
    let (diff, scale) = max_abs_diff(a, b);
    assert!(scale > 0.0, "{what}: outputs are all zero");
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "{what}: differ by {diff} (scale {scale})"
    );
}

fn shape_of<M: Module>(model: &M, path: &str) -> Vec<usize> {
    float_params(model)
        .into_iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .shape
}

#[test]
fn exported_lenet_is_smaller_and_computes_the_masked_outputs() {
    let device = ndarray().autodiff();
    let model = perturb(init(&device, 5), &device, [1, 8, 8], 3);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let pruner = StructuredConfig::new(0.5, lenet_channel_groups())
        .init()
        .unwrap();
    for levels in [1, 2] {
        let mask = pruner.one_shot(&model, &dense, levels).unwrap();
        let exported = export_lenet(&model, &mask).unwrap();
        let (h1, h2) = if levels == 1 { (12, 8) } else { (6, 4) };
        assert_eq!(shape_of(&exported, "fc1.weight"), vec![64, h1]);
        assert_eq!(shape_of(&exported, "fc1.bias"), vec![h1]);
        assert_eq!(shape_of(&exported, "fc2.weight"), vec![h1, h2]);
        assert_eq!(shape_of(&exported, "fc2.bias"), vec![h2]);
        assert_eq!(shape_of(&exported, "fc3.weight"), vec![h2, 10]);
        // The mask counts exactly the weights the exported network has.
        let weights = 64 * h1 + h1 * h2 + h2 * 10;
        assert_eq!(mask.kept_count(), weights);
        assert_eq!(num_trainable_params(&exported), weights + h1 + h2 + 10);
        // Same outputs as the masked network (whose removed neurons still
        // have their biases: their output is cut by the consumer's mask).
        let plain = ndarray();
        plain.seed(9);
        let x = Tensor::<4>::random([5, 1, 8, 8], Distribution::Normal(0.0, 1.0), &plain);
        let masked = mask.apply(model.valid()).unwrap();
        assert_close(
            masked.forward(x.clone()),
            exported.forward(x),
            &format!("lenet level {levels}"),
        );
    }
    // The original model is untouched.
    assert_eq!(shape_of(&model, "fc1.weight"), vec![64, 24]);
}

fn resnet8(device: &Device) -> ResNet {
    ResNetConfig::new()
        .with_depth(8)
        .with_input_channels(1)
        .init_seeded(device, 4)
}

#[test]
fn exported_resnet_drops_inner_channels_and_computes_the_masked_outputs() {
    let device = Device::flex().autodiff();
    let model = perturb(resnet8(&device), &device, [1, 8, 8], 3);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let groups = resnet_channel_groups(model.blocks.len());
    assert_eq!(groups.len(), 3);
    let pruner = StructuredConfig::new(0.5, groups).init().unwrap();
    let plain = Device::flex();
    plain.seed(21);
    let x = Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &plain);
    for (levels, widths) in [(1, [8, 16, 32]), (2, [4, 8, 16])] {
        let mask = pruner.one_shot(&model, &dense, levels).unwrap();
        let exported = export_resnet(&model, &mask).unwrap();
        for (i, (&inner, full)) in widths.iter().zip([16, 32, 64]).enumerate() {
            let in_channels = if i == 0 { 16 } else { full / 2 };
            let b = |name: &str| shape_of(&exported, &format!("blocks.{i}.{name}"));
            assert_eq!(b("conv1.weight"), vec![inner, in_channels, 3, 3]);
            for stat in ["gamma", "beta", "running_mean", "running_var"] {
                assert_eq!(b(&format!("bn1.{stat}")), vec![inner]);
            }
            assert_eq!(b("conv2.weight"), vec![full, inner, 3, 3]);
            assert_eq!(b("bn2.gamma"), vec![full]);
        }
        let masked = mask.apply(model.valid()).unwrap();
        assert_close(
            masked.forward(x.clone()),
            exported.forward(x.clone()),
            &format!("resnet eval, level {levels}"),
        );
        // Training mode (batch statistics), and the exported network trains.
        let xt = Tensor::<4>::from_data(x.to_data(), &device);
        let masked_train = mask.apply(model.clone()).unwrap();
        let exported_train = exported.train();
        let out = exported_train.forward(xt.clone());
        assert_close(
            masked_train.forward(xt).detach(),
            out.clone().detach(),
            &format!("resnet training mode, level {levels}"),
        );
        let grads = GradientsParams::from_grads(out.sum().backward(), &exported_train);
        let conv1 = &exported_train.blocks[0].conv1.weight;
        let g = grads
            .get::<4>(conv1.id)
            .expect("a gradient for the exported conv1");
        assert_eq!(g.dims(), [widths[0], 16, 3, 3]);
    }
}

#[test]
fn export_refuses_what_it_cannot_rebuild() {
    let device = ndarray();
    let model: LeNet = init(&device, 1);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    // A group with every unit pruned would cut the network.
    let mut cut = Vec::new();
    for (path, layer) in dense.layers() {
        let kept = if path == "fc3.weight" {
            vec![false; layer.total_count()]
        } else {
            layer.kept().to_vec()
        };
        cut.push((
            path.to_string(),
            LayerMask::from_kept(path, layer.shape().to_vec(), kept).unwrap(),
        ));
    }
    let err = export_lenet(&model, &Mask::from_layers(cut)).unwrap_err();
    assert!(
        matches!(&err, ExportError::NoUnitLeft { producer } if producer == "fc2.weight"),
        "{err}"
    );
    // An attached path that names nothing, or a tensor of the wrong size.
    let groups = [ChannelGroup::new("fc1.weight", "fc2.weight").with_attached("bn9")];
    let err = shrink(&model, &dense, &groups).unwrap_err();
    assert!(matches!(&err, ExportError::Attached { .. }), "{err}");
    let groups = [ChannelGroup::new("fc1.weight", "fc2.weight").with_attached("fc2.bias")];
    let err = shrink(&model, &dense, &groups).unwrap_err();
    assert!(err.to_string().contains("fc2.bias"), "{err}");
    // A mask of another model.
    let other = Mask::dense(&resnet8(&device), &ParamSelector::default()).unwrap();
    assert!(matches!(
        export_lenet(&model, &other).unwrap_err(),
        ExportError::Mask(_)
    ));
    // A dense mask exports the same network.
    let same = export_lenet(&model, &dense).unwrap();
    assert_eq!(shape_of(&same, "fc1.weight"), vec![64, 24]);
}

#[test]
fn imp_with_structured_pruning_prunes_units_level_by_level() {
    let structured = StructuredConfig::new(0.5, lenet_channel_groups());
    let config = ImpConfig {
        method: PruningMethod::Structured(structured.clone()),
        ..tiny_imp_config("structured", 2)
    };
    assert_eq!(config.condition(), "structured_rewind5");
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<ImpConfig>(&json).unwrap(), config);
    let out = tempfile::tempdir().unwrap();
    let imp = Imp::new(config.clone());
    let report = imp
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(report.summaries[2].condition, "structured_rewind5");
    let dir = imp.directory(out.path());
    let device = ndarray().autodiff();
    let read = |level: usize| -> (LeNet, Mask) {
        let files = Layout::level(&Branch::Main, level);
        let bytes = std::fs::read(dir.join(files.final_checkpoint())).unwrap();
        let model = RewindCheckpoint::from_bytes(&bytes)
            .unwrap()
            .restore(init(&device, 0))
            .unwrap();
        let mask = match level {
            0 => Mask::dense(&model, &ParamSelector::default()).unwrap(),
            _ => Mask::from_bytes(&std::fs::read(dir.join(files.mask())).unwrap()).unwrap(),
        };
        (model, mask)
    };
    let pruner = structured.init().unwrap();
    let mut previous = read(0);
    for (level, (h1, h2)) in [(1, (12, 8)), (2, (6, 4))] {
        let (trained, mask) = read(level);
        // Each level prunes the network trained at the level before.
        assert_eq!(mask, pruner.next_mask(&previous.0, &previous.1).unwrap());
        let units: Vec<usize> = structured
            .groups
            .iter()
            .map(|g| g.kept_units(&mask).unwrap().len())
            .collect();
        assert_eq!(units, vec![h1, h2]);
        // Whole neurons only: a column of fc1 is all kept or all pruned.
        let fc1 = mask.layer("fc1.weight").unwrap().kept();
        for j in 0..24 {
            let column: Vec<bool> = (0..64).map(|i| fc1[i * 24 + j]).collect();
            assert!(column.iter().all(|&k| k == column[0]), "neuron {j}");
        }
        // The trained level exports to a network with the same outputs.
        let exported = export_lenet(&trained, &mask).unwrap();
        let x = Tensor::<4>::random([3, 1, 8, 8], Distribution::Normal(0.0, 1.0), &ndarray());
        let masked = mask.apply(trained.valid()).unwrap();
        assert_close(
            masked.forward(x.clone()),
            exported.forward(x),
            &format!("level {level}"),
        );
        previous = (trained, mask);
    }
}
