//! The repeat-a-symbol task of the paper's didactic experiment (spec section 8).
//!
//! A prompt is one symbol `c` of an alphabet of size `V`. The policy makes up to
//! `T` attempts of `L` symbols; after each attempt the environment appends a
//! feedback token (fail or success) and the episode ends at the first rewarded
//! attempt. An attempt is rewarded iff it equals `c` repeated `L` times.
//!
//! Token layout of an episode (fixed positions, so batches need no padding
//! masks inside attention): `[c, a0_0 .. a0_{L-1}, f0, a1_0 .., f1, ...]`.
//! Symbols are ids `0..V`, the fail token is `V`, the success token `V + 1`.
//! The prompt uses the symbol's own id: the prompt *is* the symbol.

use serde::{Deserialize, Serialize};

/// Largest hypothesis set we agree to enumerate (`V^L` without a prior).
pub const MAX_HYPOTHESES: usize = 4096;

/// Shape of the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// Alphabet size `V` (>= 2).
    pub alphabet_size: usize,
    /// Symbols per attempt `L` (>= 1).
    pub attempt_len: usize,
    /// Attempts per episode `T` (>= 1).
    pub max_attempts: usize,
    /// Prompt symbols trained on.
    pub train_prompts: Vec<u32>,
    /// Prompt symbols only evaluated (unseen in training).
    pub test_prompts: Vec<u32>,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            alphabet_size: 3,
            attempt_len: 3,
            max_attempts: 3,
            train_prompts: vec![0, 1],
            test_prompts: vec![2],
        }
    }
}

/// An invalid task setting; `option` names the setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for {option}: {message}")]
pub struct TaskError {
    /// The option (command-line flag / config key) at fault.
    pub option: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn err(option: &'static str, message: String) -> TaskError {
    TaskError { option, message }
}

impl TaskConfig {
    /// Checks every setting, naming the first one at fault.
    pub fn validate(&self) -> Result<(), TaskError> {
        if self.alphabet_size < 2 {
            return Err(err(
                "alphabet-size",
                format!("must be at least 2, got {}", self.alphabet_size),
            ));
        }
        if self.alphabet_size > 1000 {
            return Err(err(
                "alphabet-size",
                format!("must be at most 1000, got {}", self.alphabet_size),
            ));
        }
        if self.attempt_len == 0 {
            return Err(err("attempt-len", "must be at least 1, got 0".into()));
        }
        if self.max_attempts == 0 {
            return Err(err("max-attempts", "must be at least 1, got 0".into()));
        }
        if self.seq_len() > 4096 {
            return Err(err(
                "max-attempts",
                format!(
                    "episodes of {} tokens are too long (at most 4096)",
                    self.seq_len()
                ),
            ));
        }
        if self.train_prompts.is_empty() {
            return Err(err("train-prompts", "must name at least one symbol".into()));
        }
        for (option, list) in [
            ("train-prompts", &self.train_prompts),
            ("test-prompts", &self.test_prompts),
        ] {
            if let Some(&c) = list.iter().find(|&&c| c as usize >= self.alphabet_size) {
                return Err(err(
                    option,
                    format!(
                        "symbol {c} is outside the alphabet 0..{}",
                        self.alphabet_size - 1
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Id of the fail feedback token.
    pub fn fail_token(&self) -> u32 {
        self.alphabet_size as u32
    }

    /// Id of the success feedback token.
    pub fn success_token(&self) -> u32 {
        self.alphabet_size as u32 + 1
    }

    /// Input vocabulary: symbols and the two feedback tokens.
    pub fn vocab_size(&self) -> usize {
        self.alphabet_size + 2
    }

    /// Tokens in a full episode: prompt plus `T` times (attempt + feedback).
    pub fn seq_len(&self) -> usize {
        1 + self.max_attempts * (self.attempt_len + 1)
    }

    /// Position of symbol `j` of attempt `k`.
    pub fn attempt_pos(&self, k: usize, j: usize) -> usize {
        1 + k * (self.attempt_len + 1) + j
    }

    /// Tokens of the history before attempt `k` (prompt and `k` attempts with feedback).
    pub fn history_len(&self, k: usize) -> usize {
        1 + k * (self.attempt_len + 1)
    }

    /// The rewarded attempt for prompt `c`.
    pub fn target(&self, c: u32) -> Vec<u32> {
        vec![c; self.attempt_len]
    }

    /// Reward of an attempt for prompt `c`.
    pub fn reward(&self, c: u32, attempt: &[u32]) -> f32 {
        if attempt.iter().all(|&a| a == c) && attempt.len() == self.attempt_len {
            1.0
        } else {
            0.0
        }
    }
}

/// Which hypothesis set (candidate rewarded strings) BARL reasons over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    /// All `V^L` strings.
    None,
    /// "The rewarded string is one symbol repeated": `V` strings.
    Repeated,
}

/// The hypothesis strings `s_i` in a fixed order (lexicographic).
pub fn hypotheses(task: &TaskConfig, prior: Prior) -> Result<Vec<Vec<u32>>, TaskError> {
    let (v, l) = (task.alphabet_size, task.attempt_len);
    match prior {
        Prior::Repeated => Ok((0..v as u32).map(|c| vec![c; l]).collect()),
        Prior::None => {
            let count = (v as u128).checked_pow(l as u32).unwrap_or(u128::MAX);
            if count > MAX_HYPOTHESES as u128 {
                return Err(err(
                    "attempt-len",
                    format!(
                        "BARL without a prior enumerates V^L = {v}^{l} hypotheses, more than {MAX_HYPOTHESES}"
                    ),
                ));
            }
            let mut out = Vec::with_capacity(count as usize);
            for mut n in 0..count as usize {
                let mut s = vec![0u32; l];
                for slot in s.iter_mut().rev() {
                    *slot = (n % v) as u32;
                    n /= v;
                }
                out.push(s);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_reward() {
        let t = TaskConfig::default();
        t.validate().unwrap();
        // 1 + 3 * (3 + 1) = 13
        assert_eq!(t.seq_len(), 13);
        assert_eq!(t.attempt_pos(0, 0), 1);
        assert_eq!(t.attempt_pos(1, 2), 7);
        assert_eq!(t.history_len(2), 9);
        assert_eq!(
            (t.fail_token(), t.success_token(), t.vocab_size()),
            (3, 4, 5)
        );
        assert_eq!(t.reward(1, &[1, 1, 1]), 1.0);
        assert_eq!(t.reward(1, &[1, 1, 0]), 0.0);
        assert_eq!(t.reward(2, &[1, 1, 1]), 0.0);
    }

    #[test]
    fn hypothesis_sets() {
        let t = TaskConfig::default();
        let all = hypotheses(&t, Prior::None).unwrap();
        assert_eq!(all.len(), 27);
        assert_eq!(all[0], vec![0, 0, 0]);
        assert_eq!(all[5], vec![0, 1, 2]); // 5 = 0*9 + 1*3 + 2
        assert_eq!(all[26], vec![2, 2, 2]);
        let rep = hypotheses(&t, Prior::Repeated).unwrap();
        assert_eq!(rep, vec![vec![0, 0, 0], vec![1, 1, 1], vec![2, 2, 2]]);
        let big = TaskConfig {
            alphabet_size: 10,
            attempt_len: 5,
            ..TaskConfig::default()
        };
        assert!(hypotheses(&big, Prior::None).is_err());
    }

    #[test]
    fn validation_names_the_option() {
        let cases = [
            (
                TaskConfig {
                    alphabet_size: 1,
                    ..Default::default()
                },
                "alphabet-size",
            ),
            (
                TaskConfig {
                    attempt_len: 0,
                    ..Default::default()
                },
                "attempt-len",
            ),
            (
                TaskConfig {
                    max_attempts: 0,
                    ..Default::default()
                },
                "max-attempts",
            ),
            (
                TaskConfig {
                    test_prompts: vec![3],
                    ..Default::default()
                },
                "test-prompts",
            ),
            (
                TaskConfig {
                    train_prompts: vec![0, 7],
                    ..Default::default()
                },
                "train-prompts",
            ),
            (
                TaskConfig {
                    train_prompts: vec![],
                    ..Default::default()
                },
                "train-prompts",
            ),
        ];
        for (cfg, option) in cases {
            assert_eq!(cfg.validate().unwrap_err().option, option);
        }
    }
}
