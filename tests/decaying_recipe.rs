//! The decaying-rate LeNet recipe (for Renda et al.'s comparison of
//! retraining modes): its rates pinned at a few iterations, shortened
//! runs keeping the shape, and the constant preset left as it was.

use burn_lottery::imp::{Branch, ImpConfig, Retrain};
use burn_lottery::train::iteration::Iteration;
use burn_lottery::train::recipe::TrainingRecipe;
use burn_lottery::train::schedule::{LrDecay, LrSchedule};

/// `actual` is `expected` up to rounding of the decimal literal.
fn assert_rate(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-15 * expected,
        "{what}: {actual} vs {expected}"
    );
}

#[test]
fn the_decaying_recipe_drops_the_rate_tenfold_at_half_and_three_quarters() {
    let recipe = TrainingRecipe::lenet_fashion_mnist_decaying();
    recipe.validate().unwrap();
    assert_eq!(
        (recipe.batch_size, recipe.training_iterations),
        (60, 50_000)
    );
    for (iteration, expected) in [
        (0, 1.2e-3),
        (24_999, 1.2e-3),
        (25_000, 1.2e-4),
        (37_499, 1.2e-4),
        (37_500, 1.2e-5),
        (49_999, 1.2e-5),
    ] {
        let rate = recipe.lr_at(Iteration(iteration));
        assert_rate(rate, expected, &format!("iteration {iteration}"));
    }
    // The rates the trainer steps through (burn's scheduler) agree.
    let mut rates = recipe.learning_rates(24_999).unwrap();
    assert_eq!(rates.next_rate().base(), recipe.lr_at(Iteration(24_999)));
    assert_eq!(rates.next_rate().base(), recipe.lr_at(Iteration(25_000)));

    // Shortened to the README's 8,000 iterations: drops at 4,000 and 6,000.
    let short = recipe.shortened(8000);
    assert_eq!(
        short.schedule.decay,
        LrDecay::MultiStep {
            milestones: vec![4000, 6000],
            gamma: 0.1
        }
    );
    assert_rate(short.lr_at(Iteration(3999)), 1.2e-3, "3999");
    assert_rate(short.lr_at(Iteration(4000)), 1.2e-4, "4000");
    assert_rate(short.lr_at(Iteration(7999)), 1.2e-5, "7999");
}

#[test]
fn with_the_decaying_recipe_learning_rate_rewinding_and_fine_tuning_differ() {
    let (iterations, k) = (8000, 500);
    let config = |retrain| ImpConfig {
        training: TrainingRecipe::lenet_fashion_mnist_decaying().shortened(iterations),
        retrain,
        ..ImpConfig::lenet_fashion_mnist(iterations, k, 0)
    };
    let lr_rewinding = config(Retrain::LearningRateRewinding);
    let fine_tuning = config(Retrain::FineTuning {
        iterations: iterations - k,
    });
    // Learning-rate rewinding replays the schedule from k; fine-tuning
    // trains at the final rate throughout.
    assert_eq!(Branch::Main.fixed_learning_rate(1, &lr_rewinding), None);
    let rewound = lr_rewinding
        .retrain
        .learning_rate(&lr_rewinding.training, k);
    assert_rate(rewound, 1.2e-3, "learning-rate rewinding at k");
    let fixed = Branch::Main.fixed_learning_rate(1, &fine_tuning).unwrap();
    assert_rate(fixed, 1.2e-5, "fine-tuning");
    // The constant preset and its directory name are untouched.
    let constant = ImpConfig::lenet_fashion_mnist(iterations, k, 0);
    assert_eq!(constant.training.schedule, LrSchedule::constant());
    assert_eq!(
        TrainingRecipe::lenet_fashion_mnist().schedule,
        LrSchedule::constant()
    );
    assert_ne!(
        lr_rewinding.directory_name(),
        ImpConfig {
            retrain: Retrain::LearningRateRewinding,
            ..constant
        }
        .directory_name()
    );
}
