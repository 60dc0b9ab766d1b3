//! `arith`: generated arithmetic problems with exact answers, so that small
//! models get a reward signal (GSM8K/MATH are out of reach for them).
//!
//! Problem `i` of a seed depends only on `(seed, i)`, never on how many are
//! generated, so a training set and a held-out set can be cut from one stream
//! (`generate(cfg, 0..1000)` and `generate(cfg, 1000..1200)`).

use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::Map;

use crate::data::Problem;

/// A binary operation of the generated expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
        }
    }
}

/// What problems look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithConfig {
    /// Operations drawn uniformly between consecutive operands.
    pub ops: Vec<Op>,
    /// Operands are drawn uniformly from `min_operand..=max_operand`.
    pub min_operand: i64,
    pub max_operand: i64,
    /// Operands per expression (>= 2).
    pub terms: usize,
    pub seed: u64,
}

impl Default for ArithConfig {
    fn default() -> Self {
        Self {
            ops: vec![Op::Add, Op::Sub],
            min_operand: 0,
            max_operand: 99,
            terms: 2,
            seed: 0,
        }
    }
}

/// Largest operand magnitude the generator accepts.
const OPERAND_BOUND: i64 = 1_000_000;

/// Why arithmetic problems could not be generated; the message names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArithError {
    #[error("arith.ops must name at least one of add, sub, mul")]
    NoOps,
    #[error("arith.terms must be in 2..=16, got {0}")]
    Terms(usize),
    #[error("arith.min_operand ({min}) must not exceed arith.max_operand ({max})")]
    EmptyRange { min: i64, max: i64 },
    #[error("arith operands must lie in [-{OPERAND_BOUND}, {OPERAND_BOUND}]")]
    OperandBound,
    #[error(
        "arith: problem {0} overflows i128 in 1000 draws; use smaller operands or fewer terms"
    )]
    Overflow(usize),
}

impl ArithConfig {
    /// Checks the settings; the error names the key.
    pub fn validate(&self) -> Result<(), ArithError> {
        if self.ops.is_empty() {
            return Err(ArithError::NoOps);
        }
        if self.terms < 2 || self.terms > 16 {
            return Err(ArithError::Terms(self.terms));
        }
        if self.min_operand > self.max_operand {
            return Err(ArithError::EmptyRange {
                min: self.min_operand,
                max: self.max_operand,
            });
        }
        if self.min_operand < -OPERAND_BOUND || self.max_operand > OPERAND_BOUND {
            return Err(ArithError::OperandBound);
        }
        Ok(())
    }
}

/// SplitMix64: a tiny, well-mixed generator; enough for drawing problems.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n >= 1), by rejection so there is no modulo bias.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// The value of `operands[0] ops[0] operands[1] ...` with the usual
/// precedence (`*` before `+`/`-`, left to right otherwise), in checked i128
/// arithmetic: `None` when a long product of large operands overflows.
fn evaluate(operands: &[i64], ops: &[Op]) -> Option<i128> {
    // Fold products first, then add the signed terms.
    let mut total: i128 = 0;
    let mut term = operands[0] as i128;
    let mut sign: i128 = 1;
    for (op, &x) in ops.iter().zip(&operands[1..]) {
        match op {
            Op::Mul => term = term.checked_mul(x as i128)?,
            Op::Add | Op::Sub => {
                total = total.checked_add(sign * term)?;
                sign = if *op == Op::Add { 1 } else { -1 };
                term = x as i128;
            }
        }
    }
    total.checked_add(sign * term)
}

/// Problems `range` of the stream defined by `cfg` (ids `arith/<seed>/<i>`;
/// question "What is 12 + 30?", gold "42"). A problem whose value would not
/// fit in i128 is redrawn, deterministically (an error if 1000 draws in a row
/// overflow, which only absurd settings such as 16 factors of 10^6 reach).
pub fn generate(cfg: &ArithConfig, range: Range<usize>) -> Result<Vec<Problem>, ArithError> {
    cfg.validate()?;
    let span = (cfg.max_operand - cfg.min_operand) as u64 + 1;
    let mut out = Vec::with_capacity(range.len());
    for i in range {
        let mut rng = SplitMix(cfg.seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut tries = 0;
        let (operands, ops, value) = loop {
            tries += 1;
            if tries > 1000 {
                return Err(ArithError::Overflow(i));
            }
            let operands: Vec<i64> = (0..cfg.terms)
                .map(|_| cfg.min_operand + rng.below(span) as i64)
                .collect();
            let ops: Vec<Op> = (1..cfg.terms)
                .map(|_| cfg.ops[rng.below(cfg.ops.len() as u64) as usize])
                .collect();
            if let Some(v) = evaluate(&operands, &ops) {
                break (operands, ops, v);
            }
        };
        let mut expr = operand_text(operands[0]);
        for (op, &x) in ops.iter().zip(&operands[1..]) {
            expr.push_str(&format!(" {} {}", op.symbol(), operand_text(x)));
        }
        let mut meta = Map::new();
        meta.insert("expression".into(), expr.clone().into());
        out.push(Problem {
            id: format!("arith/{}/{i}", cfg.seed),
            benchmark: "arith".into(),
            question: format!("What is {expr}?"),
            gold: value.to_string(),
            meta,
        });
    }
    Ok(out)
}

/// Negative operands in parentheses, so `3 - (-2)` reads unambiguously.
fn operand_text(x: i64) -> String {
    if x < 0 {
        format!("({x})")
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_signs_by_hand() {
        // 2 + 3 * 4 = 2 + 12 = 14
        assert_eq!(evaluate(&[2, 3, 4], &[Op::Add, Op::Mul]), Some(14));
        // 10 - 2 * 3 - 1 = 10 - 6 - 1 = 3
        assert_eq!(
            evaluate(&[10, 2, 3, 1], &[Op::Sub, Op::Mul, Op::Sub]),
            Some(3)
        );
        // 5 * 6 - 7 = 30 - 7 = 23
        assert_eq!(evaluate(&[5, 6, 7], &[Op::Mul, Op::Sub]), Some(23));
        // 3 - (-2) = 5
        assert_eq!(evaluate(&[3, -2], &[Op::Sub]), Some(5));
    }

    #[test]
    fn problems_depend_only_on_seed_and_index() {
        let cfg = ArithConfig {
            ops: vec![Op::Add, Op::Sub, Op::Mul],
            terms: 3,
            ..ArithConfig::default()
        };
        let all = generate(&cfg, 0..50).unwrap();
        let tail = generate(&cfg, 40..50).unwrap();
        assert_eq!(&all[40..], &tail[..]);
        assert_eq!(all[7].id, "arith/0/7");
        let other = generate(
            &ArithConfig {
                seed: 1,
                ..cfg.clone()
            },
            0..50,
        )
        .unwrap();
        assert_ne!(all, other);
        // Not all alike: the stream covers the operand range and the ops.
        let distinct: std::collections::HashSet<_> = all.iter().map(|p| &p.question).collect();
        assert!(distinct.len() > 45);
        for op in ["+", "-", "*"] {
            assert!(all.iter().any(|p| p.question.contains(&format!(" {op} "))));
        }
    }

    #[test]
    fn golds_agree_with_the_expression_engine() {
        // A second implementation: our LaTeX expression evaluator reads the
        // same expression text (with `*` as multiplication) and must get the
        // gold exactly, for every problem.
        let cfg = ArithConfig {
            ops: vec![Op::Add, Op::Sub, Op::Mul],
            min_operand: -50,
            max_operand: 999,
            terms: 4,
            seed: 42,
        };
        for p in generate(&cfg, 0..500).unwrap() {
            let expr = p.meta["expression"].as_str().unwrap();
            let v = crate::expr::latex_value(expr).unwrap_or(f64::NAN);
            assert_eq!(v, p.gold.parse::<f64>().unwrap(), "{expr} = {}", p.gold);
            assert!(p.question.starts_with("What is ") && p.question.ends_with('?'));
        }
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = |c: ArithConfig| generate(&c, 0..1).unwrap_err().to_string();
        assert!(e(ArithConfig {
            ops: vec![],
            ..Default::default()
        })
        .contains("arith.ops"));
        assert!(e(ArithConfig {
            terms: 1,
            ..Default::default()
        })
        .contains("arith.terms"));
        let swapped = ArithConfig {
            min_operand: 5,
            max_operand: 1,
            ..Default::default()
        };
        assert!(e(swapped).contains("arith.min_operand"));
        // 16 factors of 10^6 = 10^96 never fit in i128 (about 1.7e38): an
        // error after the bounded redraws, not a hang.
        let huge = ArithConfig {
            ops: vec![Op::Mul],
            min_operand: 1_000_000,
            max_operand: 1_000_000,
            terms: 16,
            seed: 0,
        };
        assert!(e(huge).contains("overflows"));
    }
}
