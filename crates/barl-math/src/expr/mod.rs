//! Symbolic equality of math answers.
//!
//! A small parser for LaTeX / plain-text math expressions (`\frac{1}{2}`, `2\sqrt{2}`,
//! `\sin^2 x + \cos^2 x`, `1.5e-3`, `x_1 y`, `3!`, `|x|`, `50\%`, ...) and an equivalence
//! test that is exact where it can be and numeric otherwise.
//!
//! [`latex_equal`] decides, in order:
//! 1. both sides must parse (at most [`MAX_INPUT_CHARS`] characters, nesting at most
//!    [`MAX_DEPTH`] levels), otherwise `None`;
//! 2. identical trees are equal;
//! 3. `\infty`: a side containing it equals only a side with the same sign of infinity;
//! 4. constants whose value is rational (integers, decimals, fractions, integer powers,
//!    perfect roots, small factorials) are compared exactly, over `i128` rationals with
//!    checked arithmetic; any overflow falls through to step 5;
//! 5. otherwise both sides are evaluated in `f64`, once for constants, or at
//!    [`N_POINTS`] seeded pseudo-random points for the union of their free variables.
//!    Two values `x`, `y` agree when `|x - y| <= tol * max(|x|, |y|)` or
//!    `|x - y| <= abs_floor` (1e-12 for constants, 1e-9 at sampled points, where
//!    cancellation leaves rounding noise). `tol` is [`DEFAULT_REL_TOL`] at sampled points
//!    and [`CONST_STRICT_REL_TOL`] for constants (only rounding is forgiven, so
//!    `\frac{\pi}{2}` is not `1.5707963`); [`latex_equal_tol`] uses the caller's `tol`
//!    everywhere. Points where either side is not finite (outside a domain) are skipped;
//!    at least [`MIN_VALID_POINTS`] must remain.
//!
//! Conventions: `e` is Euler's number, `\log x` is base 10, `\sin^{-1}` is `\arcsin`,
//! `2\frac{1}{3}` (integer then a proper fraction of integers) is the mixed number 7/3,
//! `x^\circ` is `x` (degrees are kept as written), `%` divides by 100. A bare number
//! exponent is taken whole (`2^10` = 1024, the plain-text reading), while a bare number
//! argument of `\frac`, `\sqrt`, `\binom` is one digit as in TeX (`\frac12` = 1/2). A variable named
//! `i` may be the imaginary unit, so a `false` verdict involving `i` becomes `None`.
//!
//! Every call is bounded: long or deeply nested input is refused, exact powers,
//! factorials and binomials give up past `i128`, and evaluation is a single pass. The
//! deepest accepted nesting needs under 1 MiB of stack even in unoptimised builds.

/// Longest input (in characters) that [`parse`] accepts.
pub const MAX_INPUT_CHARS: usize = 2000;
/// Deepest nesting of the recursive-descent parser (one bracket level costs about 4,
/// so about 100 bracket levels).
pub const MAX_DEPTH: usize = 400;
/// Default relative tolerance of [`latex_equal`] and [`equations_equal`].
pub const DEFAULT_REL_TOL: f64 = 1e-6;
/// Number of sample points for expressions with free variables.
pub const N_POINTS: usize = 30;
/// Fewest sample points where both sides must be finite for a verdict.
pub const MIN_VALID_POINTS: usize = 4;

/// Relative tolerance of [`latex_equal`] between constants that are not both rational:
/// only `f64` rounding is forgiven, so `\frac{\pi}{2}` differs from `1.5707963`.
pub const CONST_STRICT_REL_TOL: f64 = 1e-9;

const CONST_ABS_FLOOR: f64 = 1e-12;
const POINT_ABS_FLOOR: f64 = 1e-9;
const SAMPLE_SEED: u64 = 0x5eed_ba71_0000_0001;

/// Parse or evaluation error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// Nothing to parse.
    #[error("expression is empty")]
    Empty,
    /// Input longer than [`MAX_INPUT_CHARS`].
    #[error("expression has {len} characters, more than the limit of {max}")]
    TooLong { len: usize, max: usize },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("expression nests deeper than {max} levels")]
    TooDeep { max: usize },
    /// A character the tokenizer does not know.
    #[error("unexpected character {ch:?} at position {pos}")]
    UnexpectedChar { ch: char, pos: usize },
    /// A LaTeX command the parser does not know.
    #[error("unknown command \\{0}")]
    UnknownCommand(String),
    /// A known but unsupported construct (for example `\text{cm}`).
    #[error("unsupported construct: {0}")]
    Unsupported(String),
    /// A token where the grammar does not allow it.
    #[error("unexpected {found} at token {pos}")]
    UnexpectedToken { found: String, pos: usize },
    /// Input ended early.
    #[error("unexpected end of expression: expected {0}")]
    UnexpectedEnd(String),
    /// The expression has no finite value (free variables, division by zero, overflow, ...).
    #[error("cannot evaluate: {0}")]
    Eval(String),
}

type Result<T> = std::result::Result<T, ExprError>;

mod compare;
mod lexer;
mod parser;
mod rational;
mod tree;

pub use compare::{equations_equal, latex_equal, latex_equal_tol, latex_value, relation_ratio};
pub use parser::parse;
pub use tree::Expr;

#[cfg(test)]
mod tests;
