//! Progress output of an experiment: a progress bar on a terminal, plain log
//! lines otherwise (CI, pipes, files).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::imp::{ImpObserver, LevelSummary};

/// Prints the progress of an IMP experiment to stderr: iteration, level,
/// condition, loss, accuracy and ETA.
pub struct Progress {
    bar: Option<ProgressBar>,
    log_every: Duration,
    label: String,
    range: (u64, u64),
    started: Instant,
    last_log: Instant,
    last_loss: Option<f64>,
}

impl Progress {
    /// A progress bar when stderr is a terminal, plain lines (at most one
    /// every 10 seconds per level) otherwise.
    pub fn new() -> Self {
        Self::with_bar(std::io::stderr().is_terminal())
    }

    /// Forces the bar on or off.
    pub fn with_bar(bar: bool) -> Self {
        let bar = bar.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} it ({per_sec}, ETA {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            log_every: Duration::from_secs(10),
            label: String::new(),
            range: (0, 0),
            started: Instant::now(),
            last_log: Instant::now(),
            last_loss: None,
        }
    }

    /// Sets the interval of plain log lines.
    pub fn with_log_interval(mut self, interval: Duration) -> Self {
        self.log_every = interval;
        self
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl ImpObserver for Progress {
    fn level_started(&mut self, condition: &str, level: usize, density: f64, range: (u64, u64)) {
        self.label = format!(
            "{condition} level {level} ({:.2}% weights)",
            100.0 * density
        );
        self.range = range;
        self.started = Instant::now();
        self.last_log = Instant::now();
        self.last_loss = None;
        match &self.bar {
            Some(bar) => {
                bar.set_length(range.1);
                bar.set_position(range.0);
                bar.reset_eta();
                bar.set_message(self.label.clone());
            }
            None if range.0 < range.1 => {
                eprintln!(
                    "{}: training iterations {}..{}",
                    self.label, range.0, range.1
                );
            }
            None => {}
        }
    }

    fn step(&mut self, completed: u64, loss: Option<f64>) {
        if loss.is_some() {
            self.last_loss = loss;
        }
        let loss = self
            .last_loss
            .map_or_else(|| "-".to_string(), |l| format!("{l:.4}"));
        match &self.bar {
            Some(bar) => {
                bar.set_position(completed);
                if completed.is_multiple_of(10) {
                    bar.set_message(format!("{} loss {loss}", self.label));
                }
            }
            None if self.last_log.elapsed() >= self.log_every => {
                self.last_log = Instant::now();
                let done = completed.saturating_sub(self.range.0) as f64;
                let left = self.range.1.saturating_sub(completed) as f64;
                let elapsed = self.started.elapsed().as_secs_f64();
                let eta = if done > 0.0 {
                    elapsed / done * left
                } else {
                    0.0
                };
                eprintln!(
                    "{}: iteration {completed}/{}, loss {loss}, {:.1} it/s, ETA {:.0} s",
                    self.label,
                    self.range.1,
                    done / elapsed.max(1e-9),
                    eta
                );
            }
            None => {}
        }
    }

    fn level_finished(&mut self, summary: &LevelSummary, skipped: bool) {
        let line = format!(
            "{} level {} ({:.2}% weights): test {}{}",
            summary.condition,
            summary.level,
            100.0 * summary.weights_remaining,
            describe_metrics(summary),
            if skipped {
                " (stored, not retrained)".to_string()
            } else {
                format!(" ({:.1} s)", summary.wall_seconds)
            }
        );
        self.println(line);
    }

    fn file_discarded(&mut self, file: &std::path::Path, reason: &str) {
        self.println(format!(
            "discarded {}: {reason}; its work is recomputed",
            file.display()
        ));
    }
}

/// `accuracy 88.73%` for classification, else every metric (`mae 0.1234, mse 0.0301`).
fn describe_metrics(summary: &LevelSummary) -> String {
    match summary.metric("accuracy") {
        Some(accuracy) => format!("accuracy {:.2}%", 100.0 * accuracy),
        None => summary.metrics.to_string(),
    }
}

impl Progress {
    /// Prints a line above the bar, or to stderr without one.
    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}
