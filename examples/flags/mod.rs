//! Checks of command-line flags shared by the research examples
//! (`fashion_mnist_lenet`, `stability`, `diabetes_regression`).

use std::fmt::Display;

/// Refuses a list flag naming a value twice: the run would train nothing
/// new, but its rows would count twice in the report.
pub fn no_repeats<T: PartialEq + Display>(flag: &str, values: &[T]) -> Result<(), String> {
    match values
        .iter()
        .find(|&v| values.iter().filter(|&w| w == v).count() > 1)
    {
        Some(value) => Err(format!("{flag} lists {value} more than once")),
        None => Ok(()),
    }
}
