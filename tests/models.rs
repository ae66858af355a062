//! Model architecture, parameter counts, paths and the seeded initialization.
#![allow(deprecated)] // Device::ndarray()

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::models::init::{InitRule, init_rule};
use burn_lottery::models::{
    Classifier, LeNetConfig, ResNetConfig, VggConfig, VggDepth, accuracy_count, cross_entropy,
    init_weights,
};
use burn_lottery::params::{float_params, float_values, num_trainable_params};
use burn_lottery::seed::derive_seed;

fn device() -> Device {
    Device::ndarray()
}

fn images(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// All float parameters' values, by path.
fn values<M: Module>(module: &M) -> Vec<(String, Vec<f32>)> {
    float_values(module, |_| true).into_iter().collect()
}

/// Every float parameter's path and shape.
fn param_shapes<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    float_params(module)
        .into_iter()
        .map(|p| (p.path, p.shape))
        .collect()
}

/// Number of scalars in conv (rank 4) and linear (rank 2) weights: the prunable set.
fn weight_count<M: Module>(module: &M) -> usize {
    param_shapes(module)
        .iter()
        .filter(|(p, d)| p.ends_with("weight") && (d.len() == 4 || d.len() == 2))
        .map(|(_, d)| d.iter().product::<usize>())
        .sum()
}

#[test]
fn resnet20_parameter_counts() {
    let model = ResNetConfig::resnet20().init(&device());
    assert_eq!(num_trainable_params(&model), 272_474);
    assert_eq!(model.num_params(), 274_042);
    assert_eq!(weight_count(&model), 270_896);
}

#[test]
fn resnet_depths() {
    let d = device();
    for (depth, blocks) in [(20, 9), (56, 27), (110, 54)] {
        let model = ResNetConfig::new().with_depth(depth).init(&d);
        assert_eq!(model.blocks.len(), blocks);
        let shortcuts: Vec<usize> = model
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.shortcut.is_some())
            .map(|(i, _)| i)
            .collect();
        let n = blocks / 3;
        assert_eq!(shortcuts, vec![n, 2 * n]);
    }
}

#[test]
#[should_panic(expected = "6N + 2")]
fn resnet_bad_depth_panics() {
    ResNetConfig::new().with_depth(21).init(&device());
}

#[test]
fn resnet20_parameter_paths_are_stable() {
    let model = ResNetConfig::resnet20().init(&device());
    let shapes = param_shapes(&model);
    let find = |path: &str| {
        shapes
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("missing {path}"))
            .1
            .clone()
    };
    assert_eq!(find("conv.weight"), vec![16, 3, 3, 3]);
    assert_eq!(find("bn.gamma"), vec![16]);
    assert_eq!(find("bn.running_mean"), vec![16]);
    assert_eq!(find("blocks.0.conv1.weight"), vec![16, 16, 3, 3]);
    assert_eq!(find("blocks.3.conv1.weight"), vec![32, 16, 3, 3]);
    assert_eq!(find("blocks.3.shortcut.conv.weight"), vec![32, 16, 1, 1]);
    assert_eq!(find("blocks.3.shortcut.bn.beta"), vec![32]);
    assert_eq!(find("blocks.6.shortcut.conv.weight"), vec![64, 32, 1, 1]);
    assert_eq!(find("blocks.8.conv2.weight"), vec![64, 64, 3, 3]);
    assert_eq!(find("fc.weight"), vec![64, 10]);
    assert_eq!(find("fc.bias"), vec![10]);
    assert!(
        !shapes
            .iter()
            .any(|(p, _)| p == "blocks.0.shortcut.conv.weight")
    );
    // No conv has a bias.
    assert!(
        !shapes
            .iter()
            .any(|(p, _)| p.contains("conv") && p.ends_with("bias"))
    );
    // 1 + 9*2 + 2 = 21 conv weights and the fc weight and bias;
    // 1 + 18 + 2 = 21 BatchNorms with 4 tensors each.
    assert_eq!(shapes.len(), 21 + 2 + 21 * 4);
    // The order is the visiting order, first and last fixed.
    assert_eq!(shapes[0].0, "conv.weight");
    assert_eq!(shapes.last().unwrap().0, "fc.bias");
}

#[test]
fn lenet_parameter_count_and_paths() {
    let model = LeNetConfig::lenet_300_100().init(&device());
    // 784*300+300 + 300*100+100 + 100*10+10
    assert_eq!(model.num_params(), 266_610);
    assert_eq!(num_trainable_params(&model), 266_610);
    let paths: Vec<String> = param_shapes(&model).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
}

#[test]
fn vgg19_parameter_count() {
    let model = VggConfig::new(VggDepth::Vgg19).init(&device());
    // Convolutions (in -> out, 3x3): 3->64, 64->64, 64->128, 128->128, 128->256,
    // 3 x 256->256, 256->512, 7 x 512->512.
    // Weights: 1,728 + 36,864 + 73,728 + 147,456 + 294,912 + 3*589,824
    //        + 1,179,648 + 7*2,359,296 = 20,018,880.
    // Conv biases: 64+64+128+128+4*256+8*512 = 5,504; BatchNorm gamma+beta: 11,008.
    // fc 512 -> 10: 5,120 + 10.
    // Total 20,018,880 + 5,504 + 11,008 + 5,130 = 20,040,522 (+ 11,008 running stats).
    assert_eq!(num_trainable_params(&model), 20_040_522);
    assert_eq!(model.num_params(), 20_051_530);
    assert_eq!(weight_count(&model), 20_024_000);
    assert_eq!(model.layers.len(), 16);
    let pools: Vec<usize> = (0..16).filter(|&i| model.layers[i].pool_after).collect();
    assert_eq!(pools, vec![1, 3, 7, 11]);
}

#[test]
fn vgg_plans() {
    let convs = |d: VggDepth| d.plan().iter().filter(|e| e.is_some()).count();
    assert_eq!(convs(VggDepth::Vgg11), 8);
    assert_eq!(convs(VggDepth::Vgg13), 10);
    assert_eq!(convs(VggDepth::Vgg16), 13);
    assert_eq!(convs(VggDepth::Vgg19), 16);
}

#[test]
fn forward_shapes() {
    let d = device();
    let resnet = ResNetConfig::resnet20().init_seeded(&d, 1);
    let out = Classifier::forward(&resnet, images([2, 3, 32, 32], &d));
    assert_eq!(out.dims(), [2, 10]);

    let gray = ResNetConfig::new()
        .with_input_channels(1)
        .init_seeded(&d, 1);
    assert_eq!(gray.forward(images([2, 1, 28, 28], &d)).dims(), [2, 10]);

    let lenet = LeNetConfig::new().init_seeded(&d, 1);
    assert_eq!(lenet.forward(images([2, 1, 28, 28], &d)).dims(), [2, 10]);
}

#[test]
fn vgg_forward_shapes() {
    let d = device();
    for depth in [VggDepth::Vgg11, VggDepth::Vgg19] {
        let vgg = VggConfig::new(depth).init_seeded(&d, 1);
        let out = Classifier::forward(&vgg, images([2, 3, 32, 32], &d));
        assert_eq!(out.dims(), [2, 10]);
        let v = out.into_data().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn same_seed_same_parameters_different_seed_different() {
    let d = device();
    let config = ResNetConfig::resnet20();
    let a = values(&config.init_seeded(&d, 7));
    let b = values(&config.init_seeded(&d, 7));
    let c = values(&config.init_seeded(&d, 8));
    assert_eq!(a.len(), b.len());
    for ((pa, va), (pb, vb)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        let bits_a: Vec<u32> = va.iter().map(|x| x.to_bits()).collect();
        let bits_b: Vec<u32> = vb.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits_a, bits_b, "{pa} differs for the same seed");
    }
    for ((pa, va), (_, vc)) in a.iter().zip(&c) {
        if pa.ends_with("weight") || pa.ends_with("gamma") {
            assert_ne!(va, vc, "{pa} equal for different seeds");
        }
    }
}

#[test]
fn init_weights_is_idempotent_in_seed_and_keeps_ids() {
    let d = device();
    let model = LeNetConfig::new().init(&d);
    let id = model.fc1.weight.id;
    let once = init_weights(model, 3);
    assert_eq!(once.fc1.weight.id, id);
    let twice = init_weights(once.clone(), 3);
    assert_eq!(values(&once), values(&twice));
}

#[test]
fn flex_and_ndarray_get_identical_init() {
    let a = values(&LeNetConfig::new().init_seeded(&device(), 11));
    let b = values(&LeNetConfig::new().init_seeded(&Device::flex(), 11));
    assert_eq!(a, b);
}

#[test]
fn batchnorm_init() {
    let model = ResNetConfig::resnet20().init_seeded(&device(), 5);
    for (path, v) in values(&model) {
        if path.ends_with("gamma") {
            assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)), "{path}");
            assert!(v.iter().any(|&x| x != v[0]), "{path} constant");
        } else if path.ends_with("beta") || path.ends_with("running_mean") || path.ends_with("bias")
        {
            assert!(v.iter().all(|&x| x == 0.0), "{path}");
        } else if path.ends_with("running_var") {
            assert!(v.iter().all(|&x| x == 1.0), "{path}");
        }
    }
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[test]
fn kaiming_std() {
    let d = device();
    // Linear [784, 300]: fan_in 784.
    let lenet = LeNetConfig::new().init_seeded(&d, 9);
    let w = lenet.fc1.weight.val().into_data().to_vec::<f32>().unwrap();
    let (mean, std) = mean_std(&w);
    let expected = (2.0f64 / 784.0).sqrt();
    assert!(mean.abs() < 0.01 * expected * 10.0, "mean {mean}");
    assert!(
        (std / expected - 1.0).abs() < 0.01,
        "std {std} vs {expected}"
    );

    // Conv [64, 64, 3, 3]: fan_in 576.
    let resnet = ResNetConfig::resnet20().init_seeded(&d, 9);
    let w = resnet.blocks[8].conv2.weight.val();
    assert_eq!(w.dims(), [64, 64, 3, 3]);
    let (_, std) = mean_std(&w.into_data().to_vec::<f32>().unwrap());
    let expected = (2.0f64 / 576.0).sqrt();
    assert!(
        (std / expected - 1.0).abs() < 0.02,
        "std {std} vs {expected}"
    );
}

#[test]
fn init_rules() {
    assert_eq!(
        init_rule("Linear", "weight", &[64, 10]),
        InitRule::Normal {
            std: (2.0f64 / 64.0).sqrt()
        }
    );
    assert_eq!(
        init_rule("Conv2d", "weight", &[16, 16, 3, 3]),
        InitRule::Normal {
            std: (2.0f64 / 144.0).sqrt()
        }
    );
    assert_eq!(init_rule("BatchNorm", "gamma", &[16]), InitRule::Uniform01);
    assert_eq!(init_rule("Linear", "bias", &[10]), InitRule::Constant(0.0));
    // Outside the CNN layers, burn's own initialization stays.
    assert_eq!(
        init_rule("Embedding", "weight", &[5000, 64]),
        InitRule::Keep
    );
    assert_eq!(init_rule("LayerNorm", "gamma", &[64]), InitRule::Keep);
    // A parameter of a module the crate does not know keeps its values.
    assert_eq!(
        init_rule("MyAttention", "weight", &[64, 64]),
        InitRule::Keep
    );
    assert_ne!(derive_seed(0, "fc.weight"), derive_seed(0, "fc.bias"));
    assert_ne!(derive_seed(0, "fc.weight"), derive_seed(1, "fc.weight"));
}

#[derive(burn::module::Module, Debug)]
struct TextNet {
    embedding: burn::nn::Embedding,
    norm: burn::nn::LayerNorm,
    fc: burn::nn::Linear,
}

#[test]
fn init_weights_keeps_burns_initialization_of_embeddings_and_layer_norms() {
    let d = device();
    let embedding = burn::nn::EmbeddingConfig::new(2000, 32)
        .with_initializer(burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.05,
        })
        .init(&d);
    let built = embedding.weight.val().into_data().to_vec::<f32>().unwrap();
    let net = TextNet {
        embedding,
        norm: burn::nn::LayerNormConfig::new(32).init(&d),
        fc: burn::nn::LinearConfig::new(32, 4).init(&d),
    };
    let net = burn_lottery::models::init_weights(net, 3);
    let values = |t: burn::tensor::Tensor<2>| t.into_data().to_vec::<f32>().unwrap();
    // The embedding keeps the initializer its config names (not Kaiming by
    // the name `weight`, sqrt(2 / 2000) = 0.032, as before).
    assert_eq!(values(net.embedding.weight.val()), built);
    let gamma = net.norm.gamma.val().into_data().to_vec::<f32>().unwrap();
    assert!(gamma.iter().all(|&g| g == 1.0), "LayerNorm gamma {gamma:?}");
    // The Linear layer gets the reference initialization from the seed.
    let fc = values(net.fc.weight.val());
    let fc_std = (fc.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / fc.len() as f64).sqrt();
    assert!(
        (fc_std - (2.0f64 / 32.0).sqrt()).abs() < 0.1,
        "Linear std {fc_std}"
    );
    let again = burn_lottery::models::init_weights(burn::nn::LinearConfig::new(32, 4).init(&d), 3);
    assert_ne!(values(again.weight.val()), fc, "the path enters the seed");
}

#[test]
fn loss_and_accuracy() {
    let d = device();
    let logits = Tensor::<2>::from_data([[2.0f32, 0.0, 0.0], [0.0, 0.0, 3.0]], &d);
    let targets = Tensor::<1, Int>::from_data([0i64, 1], &d);
    assert_eq!(accuracy_count(logits.clone(), targets.clone()), 1);
    let loss: f32 = cross_entropy(logits, targets).into_scalar();
    // (-ln softmax([2,0,0])[0] - ln softmax([0,0,3])[1]) / 2
    let l0 = -(2.0f64.exp() / (2.0f64.exp() + 2.0)).ln();
    let l1 = -(1.0 / (2.0 + 3.0f64.exp())).ln();
    assert!((loss as f64 - (l0 + l1) / 2.0).abs() < 1e-5, "{loss}");
}

#[test]
fn seeded_models_train_on_autodiff_devices() {
    use burn::optim::GradientsParams;
    let ad = device().autodiff();
    let model = LeNetConfig::new().init_seeded(&ad, 2);
    assert!(model.fc1.weight.val().is_require_grad());
    let x = images([4, 1, 28, 28], &ad);
    let targets = Tensor::<1, Int>::from_data([0i64, 1, 2, 3], &ad);
    let loss = cross_entropy(model.forward(x), targets);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let g = grads
        .get::<2>(model.fc1.weight.id)
        .expect("gradient for fc1.weight");
    assert_eq!(g.dims(), [784, 300]);
    assert!(
        grads
            .get::<1>(model.fc3.bias.as_ref().unwrap().id)
            .is_some()
    );

    // A model built on a plain device and moved to an autodiff one trains too.
    // A model built on a plain device, moved to an autodiff one and switched to
    // training mode (as burn requires for any model) trains too: the seeded
    // initialization keeps each parameter's training state.
    let moved = LeNetConfig::new()
        .init_seeded(&device(), 2)
        .fork(&ad)
        .train();
    assert!(moved.fc1.weight.val().is_require_grad());
    assert!(moved.fc3.bias.as_ref().unwrap().val().is_require_grad());
}
