//! Mask: selection, counts, reports, overlap, apply, save/load, validation.

use crate::common::{TinyNet, ndarray};
use burn_lottery::mask::{LayerMask, Mask, MaskError, ParamSelector};
use burn_lottery::params::float_values;

fn half_mask(model: &TinyNet) -> Mask {
    let dense = Mask::dense(model, &ParamSelector::default()).unwrap();
    Mask::from_layers(dense.layers().map(|(path, layer)| {
        let kept = (0..layer.total_count()).map(|i| i % 2 == 0).collect();
        (
            path.to_string(),
            LayerMask::from_kept(path, layer.shape().to_vec(), kept).unwrap(),
        )
    }))
}

#[test]
fn default_selector_takes_conv_and_linear_weights_only() {
    let model = TinyNet::new(&ndarray());
    let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let paths: Vec<_> = mask.paths().collect();
    assert_eq!(paths, vec!["conv.weight", "fc.weight"]);
    assert_eq!(mask.layer("conv.weight").unwrap().shape(), &[4, 1, 3, 3]);
    assert_eq!(mask.total_count(), 4 * 9 + 144 * 3);
    assert_eq!(mask.kept_count(), mask.total_count());
    assert_eq!(mask.density(), 1.0);
}

#[test]
fn selector_patterns_and_errors() {
    let model = TinyNet::new(&ndarray());
    let no_fc = ParamSelector::default().exclude("fc.weight");
    let mask = Mask::dense(&model, &no_fc).unwrap();
    assert_eq!(mask.paths().collect::<Vec<_>>(), vec!["conv.weight"]);

    let only_fc = ParamSelector::default().include("fc.*");
    assert_eq!(
        Mask::dense(&model, &only_fc)
            .unwrap()
            .paths()
            .collect::<Vec<_>>(),
        vec!["fc.weight"]
    );

    let err = Mask::dense(&model, &ParamSelector::default().exclude("head.weight")).unwrap_err();
    assert!(
        matches!(err, MaskError::PatternMatchesNothing { ref pattern } if pattern == "head.weight")
    );
    assert!(err.to_string().contains("head.weight"));

    let none = ParamSelector {
        min_rank: 5,
        ..ParamSelector::default()
    };
    assert!(matches!(
        Mask::dense(&model, &none).unwrap_err(),
        MaskError::EmptySelection
    ));
    // BatchNorm running statistics are never selectable, even by pattern.
    let stats = ParamSelector {
        min_rank: 1,
        include: vec!["bn.*".into()],
        exclude: vec![],
    };
    let mask = Mask::dense(&model, &stats).unwrap();
    assert_eq!(
        mask.paths().collect::<Vec<_>>(),
        vec!["bn.beta", "bn.gamma"]
    );
}

#[test]
fn report_counts_and_json() {
    let model = TinyNet::new(&ndarray());
    let mask = half_mask(&model);
    let report = mask.report();
    assert_eq!(report.total, 468);
    assert_eq!(report.kept, 18 + 216);
    assert_eq!(report.pruned, report.total - report.kept);
    assert_eq!(report.layers[0].path, "conv.weight");
    assert_eq!(report.layers[0].kept, 18);
    let json = serde_json::to_string(&report).unwrap();
    let back: burn_lottery::mask::SparsityReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let table = report.to_string();
    assert!(table.contains("fc.weight") && table.contains("total"));
}

#[test]
fn overlap_is_intersection_over_union() {
    let model = TinyNet::new(&ndarray());
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let half = half_mask(&model);
    let same = half.overlap(&half).unwrap();
    assert_eq!(same.iou, 1.0);
    let o = half.overlap(&dense).unwrap();
    assert_eq!(o.intersection, half.kept_count());
    assert_eq!(o.union, dense.kept_count());
    assert!((o.iou - half.kept_count() as f64 / 468.0).abs() < 1e-12);
    // Complementary masks share nothing.
    let other = Mask::from_layers(half.layers().map(|(p, l)| {
        let kept = l.kept().iter().map(|k| !k).collect();
        (
            p.to_string(),
            LayerMask::from_kept(p, l.shape().to_vec(), kept).unwrap(),
        )
    }));
    assert_eq!(half.overlap(&other).unwrap().iou, 0.0);
    let conv_only = Mask::dense(&model, &ParamSelector::default().exclude("fc.weight")).unwrap();
    assert!(matches!(
        conv_only.overlap(&dense),
        Err(MaskError::LayerSetMismatch { .. })
    ));
}

#[test]
fn apply_zeroes_pruned_weights_and_nothing_else() {
    let device = ndarray();
    let model = TinyNet::new(&device);
    let before = float_values(&model, |_| true);
    let mask = half_mask(&model);
    let masked = mask.apply(model).unwrap();
    let after = float_values(&masked, |_| true);
    for (path, values) in &after {
        match mask.layer(path) {
            Some(layer) => {
                for (i, (&v, &k)) in values.iter().zip(layer.kept()).enumerate() {
                    if k {
                        assert_eq!(v, before[path][i], "{path}[{i}] kept weight changed");
                    } else {
                        assert_eq!(v, 0.0, "{path}[{i}] pruned weight not zero");
                    }
                }
            }
            None => assert_eq!(values, &before[path], "{path} is not masked but changed"),
        }
    }
}

#[test]
fn binary_round_trip_and_corruption() {
    let model = TinyNet::new(&ndarray());
    let mask = half_mask(&model);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mask.bin");
    mask.save(&file).unwrap();
    assert_eq!(Mask::load(&file).unwrap(), mask);
    let bytes = std::fs::read(&file).unwrap();
    // Bit-packed: about one bit per weight.
    assert!(bytes.len() < 468 / 8 + 120, "{} bytes", bytes.len());

    std::fs::write(&file, &bytes[..bytes.len() - 7]).unwrap();
    let err = Mask::load(&file).unwrap_err();
    assert!(matches!(err, MaskError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("mask.bin"));

    let mut flipped = bytes.clone();
    flipped[40] ^= 0x10;
    assert!(matches!(
        Mask::from_bytes(&flipped),
        Err(MaskError::Corrupt { .. })
    ));
    assert!(matches!(
        Mask::from_bytes(b"not a mask at all"),
        Err(MaskError::Corrupt { .. })
    ));
    assert!(matches!(
        Mask::load(dir.path().join("missing.bin")),
        Err(MaskError::Io { .. })
    ));
    // serde (JSON) round trip too.
    let json = serde_json::to_string(&mask).unwrap();
    assert_eq!(serde_json::from_str::<Mask>(&json).unwrap(), mask);
}

#[test]
fn safetensors_round_trip_and_non_binary_values() {
    let model = TinyNet::new(&ndarray());
    let mask = half_mask(&model);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mask.safetensors");
    mask.save_safetensors(&file).unwrap();
    assert_eq!(Mask::load_safetensors(&file).unwrap(), mask);

    // Each tensor is u8 with the parameter's shape.
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let conv = st.tensor("conv.weight").unwrap();
    assert_eq!(conv.dtype(), safetensors::Dtype::U8);
    assert_eq!(conv.shape(), &[4, 1, 3, 3]);

    let values: Vec<u8> = [0.0f32, 1.0, 0.5, 1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &values).unwrap();
    let bad = safetensors::serialize([("fc.weight", view)], None).unwrap();
    match Mask::from_safetensors(&bad).unwrap_err() {
        MaskError::NonBinary { path, index, value } => {
            assert_eq!((path.as_str(), index, value), ("fc.weight", 2, 0.5));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(
        Mask::from_safetensors(b"garbage"),
        Err(MaskError::Corrupt { .. })
    ));
}

#[test]
fn validation_names_the_parameter() {
    let model = TinyNet::new(&ndarray());
    let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
    mask.validate(&model, Some(&ParamSelector::default()))
        .unwrap();

    let extra = Mask::from_layers([("head.weight".to_string(), LayerMask::dense(vec![2, 2]))]);
    match extra.validate(&model, None).unwrap_err() {
        MaskError::UnknownParameter { path } => assert_eq!(path, "head.weight"),
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(
        extra.apply(TinyNet::new(&ndarray())),
        Err(MaskError::UnknownParameter { .. })
    ));

    let partial = Mask::dense(&model, &ParamSelector::default().exclude("fc.weight")).unwrap();
    partial.validate(&model, None).unwrap();
    match partial
        .validate(&model, Some(&ParamSelector::default()))
        .unwrap_err()
    {
        MaskError::MissingParameter { path } => assert_eq!(path, "fc.weight"),
        other => panic!("unexpected {other}"),
    }

    let wrong_shape =
        Mask::from_layers([("fc.weight".to_string(), LayerMask::dense(vec![3, 144]))]);
    match wrong_shape.validate(&model, None).unwrap_err() {
        MaskError::ShapeMismatch {
            path,
            mask_shape,
            param_shape,
        } => {
            assert_eq!(path, "fc.weight");
            assert_eq!(mask_shape, vec![3, 144]);
            assert_eq!(param_shape, vec![144, 3]);
        }
        other => panic!("unexpected {other}"),
    }

    assert!(matches!(
        LayerMask::from_kept("x", vec![2, 3], vec![true; 5]),
        Err(MaskError::LengthMismatch {
            expected: 6,
            actual: 5,
            ..
        })
    ));
    assert!(matches!(
        LayerMask::from_values("x", vec![2], &[1.0, 2.0]),
        Err(MaskError::NonBinary { index: 1, .. })
    ));
}
