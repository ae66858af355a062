use serde::{Deserialize, Serialize};

use super::MaskError;
use crate::params::ParamInfo;

/// Chooses which parameters are prunable.
///
/// A parameter is selected when it is a trainable float tensor (never a
/// BatchNorm running statistic), has rank at least `min_rank`, matches one of
/// `include` (or `include` is empty) and matches none of `exclude`.
///
/// The default (rank >= 2, no patterns) selects the weights of `Conv2d` and
/// `Linear` and never biases or BatchNorm parameters, as the paper does.
///
/// Patterns are matched against the whole path: `*` matches within one path
/// segment (no `.`), `**` matches across segments. `fc.weight`,
/// `blocks.*.conv1.weight` and `**.shortcut.**` are valid patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamSelector {
    /// Smallest tensor rank that can be pruned (default 2: matrices and kernels).
    pub min_rank: usize,
    /// Only parameters matching one of these patterns (empty: all).
    pub include: Vec<String>,
    /// Parameters matching any of these patterns are left out.
    pub exclude: Vec<String>,
}

impl Default for ParamSelector {
    fn default() -> Self {
        Self {
            min_rank: 2,
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

impl ParamSelector {
    /// Adds an exclude pattern.
    pub fn exclude(mut self, pattern: impl Into<String>) -> Self {
        self.exclude.push(pattern.into());
        self
    }

    /// Adds an include pattern.
    pub fn include(mut self, pattern: impl Into<String>) -> Self {
        self.include.push(pattern.into());
        self
    }

    /// Whether the parameter is selected (patterns are not validated here).
    pub fn selects(&self, param: &ParamInfo) -> bool {
        !param.is_running_stat
            && param.shape.len() >= self.min_rank
            && (self.include.is_empty() || self.include.iter().any(|p| glob_match(p, &param.path)))
            && !self.exclude.iter().any(|p| glob_match(p, &param.path))
    }

    /// The selected parameters, after checking that every pattern matches some
    /// parameter and that the selection is not empty.
    pub fn select<'a>(&self, params: &'a [ParamInfo]) -> Result<Vec<&'a ParamInfo>, MaskError> {
        for pattern in self.include.iter().chain(&self.exclude) {
            if !params
                .iter()
                .any(|p| !p.is_running_stat && glob_match(pattern, &p.path))
            {
                return Err(MaskError::PatternMatchesNothing {
                    pattern: pattern.clone(),
                });
            }
        }
        let selected: Vec<_> = params.iter().filter(|p| self.selects(p)).collect();
        if selected.is_empty() {
            return Err(MaskError::EmptySelection);
        }
        Ok(selected)
    }
}

/// Glob match on a dotted path: `*` within one segment, `**` across segments.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                let mut i = 0;
                loop {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    if i == s.len() || s[i] == b'.' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(&c) => s.first() == Some(&c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("fc.weight", "fc.weight"));
        assert!(!glob_match("fc.weight", "fc.weight2"));
        assert!(glob_match("blocks.*.conv1.weight", "blocks.3.conv1.weight"));
        assert!(!glob_match("blocks.*.weight", "blocks.3.conv1.weight"));
        assert!(glob_match(
            "**.shortcut.**",
            "blocks.3.shortcut.conv.weight"
        ));
        assert!(glob_match("**weight", "a.b.weight"));
        assert!(!glob_match("*weight", "a.weight"));
    }
}
