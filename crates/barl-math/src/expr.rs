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

use std::f64::consts::{E, PI};

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

// ---------------------------------------------------------------------------------------
// Exact rationals over i128
// ---------------------------------------------------------------------------------------

/// Reduced fraction `n / d` with `d > 0`; every operation is checked and returns `None`
/// on overflow, so callers fall back to `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Q {
    n: i128,
    d: i128,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Q {
    fn int(n: i128) -> Q {
        Q { n, d: 1 }
    }

    fn new(n: i128, d: i128) -> Option<Q> {
        if d == 0 {
            return None;
        }
        let g = gcd(n.unsigned_abs(), d.unsigned_abs());
        let g = i128::try_from(g).ok()?;
        let (mut n, mut d) = (n / g, d / g);
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Q { n, d })
    }

    /// `a/b + c/d = (a*(d/g) + c*(b/g)) / (b*(d/g))` with `g = gcd(b, d)`.
    fn add(self, o: Q) -> Option<Q> {
        let g = i128::try_from(gcd(self.d as u128, o.d as u128)).ok()?;
        let n = self
            .n
            .checked_mul(o.d / g)?
            .checked_add(o.n.checked_mul(self.d / g)?)?;
        Q::new(n, self.d.checked_mul(o.d / g)?)
    }

    /// Cross-reduced product, so that intermediate values stay small.
    fn mul(self, o: Q) -> Option<Q> {
        let g1 = i128::try_from(gcd(self.n.unsigned_abs(), o.d as u128))
            .ok()?
            .max(1);
        let g2 = i128::try_from(gcd(o.n.unsigned_abs(), self.d as u128))
            .ok()?
            .max(1);
        let n = (self.n / g1).checked_mul(o.n / g2)?;
        let d = (self.d / g2).checked_mul(o.d / g1)?;
        Q::new(n, d)
    }

    fn neg(self) -> Option<Q> {
        Some(Q {
            n: self.n.checked_neg()?,
            d: self.d,
        })
    }

    fn recip(self) -> Option<Q> {
        Q::new(self.d, self.n)
    }

    fn is_int(self) -> bool {
        self.d == 1
    }

    /// `self^e` by repeated squaring; bases other than 0, ±1 overflow i128 beyond e = 127.
    fn pow(self, e: i128) -> Option<Q> {
        if e < 0 {
            return self.recip()?.pow(e.checked_neg()?);
        }
        if e == 0 {
            return Some(Q::int(1));
        }
        if self.n == 0 || self == Q::int(1) {
            return Some(self);
        }
        if self == Q::int(-1) {
            return Some(if e % 2 == 0 { Q::int(1) } else { self });
        }
        if e > 128 {
            return None;
        }
        let (mut acc, mut base, mut e) = (Q::int(1), self, e);
        while e > 0 {
            if e & 1 == 1 {
                acc = acc.mul(base)?;
            }
            e >>= 1;
            if e > 0 {
                base = base.mul(base)?;
            }
        }
        Some(acc)
    }

    /// Exact `k`-th root when numerator and denominator are perfect `k`-th powers.
    fn root(self, k: i128) -> Option<Q> {
        if !(1..=128).contains(&k) {
            return None;
        }
        let k = k as u32;
        if self.n < 0 && k & 1 == 0 {
            return None;
        }
        let n = i128::try_from(iroot(self.n.unsigned_abs(), k)?).ok()?;
        let d = i128::try_from(iroot(self.d as u128, k)?).ok()?;
        Q::new(if self.n < 0 { -n } else { n }, d)
    }

    fn floor(self) -> i128 {
        self.n.div_euclid(self.d)
    }

    fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }
}

/// Exact integer `k`-th root of `x`, if there is one.
fn iroot(x: u128, k: u32) -> Option<u128> {
    if x < 2 || k == 1 {
        return Some(x);
    }
    let guess = (x as f64).powf(1.0 / k as f64).round() as u128;
    (guess.saturating_sub(1)..=guess + 1).find(|r| r.checked_pow(k) == Some(x))
}

// ---------------------------------------------------------------------------------------
// Expression tree
// ---------------------------------------------------------------------------------------

/// Elementary functions known to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Ln,
    Log10,
    Exp,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "cot" => Func::Cot,
            "sec" => Func::Sec,
            "csc" => Func::Csc,
            "arcsin" => Func::Asin,
            "arccos" => Func::Acos,
            "arctan" => Func::Atan,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "tanh" => Func::Tanh,
            "ln" => Func::Ln,
            "log" => Func::Log10,
            "exp" => Func::Exp,
            _ => return None,
        })
    }

    /// `\sin^{-1}` means `\arcsin`.
    fn inverse(self) -> Option<Func> {
        match self {
            Func::Sin => Some(Func::Asin),
            Func::Cos => Some(Func::Acos),
            Func::Tan => Some(Func::Atan),
            _ => None,
        }
    }

    fn apply(self, x: f64) -> f64 {
        match self {
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Cot => 1.0 / x.tan(),
            Func::Sec => 1.0 / x.cos(),
            Func::Csc => 1.0 / x.sin(),
            Func::Asin => x.asin(),
            Func::Acos => x.acos(),
            Func::Atan => x.atan(),
            Func::Sinh => x.sinh(),
            Func::Cosh => x.cosh(),
            Func::Tanh => x.tanh(),
            Func::Ln => x.ln(),
            Func::Log10 => x.log10(),
            Func::Exp => x.exp(),
        }
    }
}

/// A numeric literal: its canonical text, `f64` value and exact value when it fits.
#[derive(Debug, Clone, PartialEq)]
struct NumLit {
    text: String,
    value: f64,
    exact: Option<Q>,
}

impl NumLit {
    /// `text` is `digits[.digits][e[+-]digits]`, as produced by the tokenizer.
    fn new(text: &str) -> Result<NumLit> {
        let value = text
            .parse::<f64>()
            .map_err(|_| ExprError::Unsupported(format!("number {text:?}")))?;
        Ok(NumLit {
            text: text.to_string(),
            value,
            exact: exact_decimal(text),
        })
    }
}

/// Exact value of a decimal literal: mantissa digits times a power of ten.
fn exact_decimal(text: &str) -> Option<Q> {
    let (mant, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int_part}{frac_part}");
    let n: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let exp10 = exp.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
    if exp10.unsigned_abs() > 38 {
        return if n == 0 { Some(Q::int(0)) } else { None };
    }
    let scale = 10i128.checked_pow(exp10.unsigned_abs() as u32)?;
    if exp10 >= 0 {
        Some(Q::int(n.checked_mul(scale)?))
    } else {
        Q::new(n, scale)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(Box<NumLit>),
    Var(String),
    Pi,
    E,
    Inf,
    Sum(Vec<Node>),
    Prod(Vec<Node>),
    Neg(Box<Node>),
    Recip(Box<Node>),
    Pow(Box<Node>, Box<Node>),
    /// `Root(k, x)`: the `k`-th root of `x` (real odd roots of negatives included).
    Root(Box<Node>, Box<Node>),
    Func(Func, Box<Node>),
    /// `Log(base, x) = ln x / ln base`.
    Log(Box<Node>, Box<Node>),
    Fact(Box<Node>),
    Abs(Box<Node>),
    Floor(Box<Node>),
    Ceil(Box<Node>),
    Binom(Box<Node>, Box<Node>),
}

fn bx(n: Node) -> Box<Node> {
    Box::new(n)
}

fn int_node(n: i128) -> Node {
    Node::Num(Box::new(NumLit {
        text: n.to_string(),
        value: n as f64,
        exact: Some(Q::int(n)),
    }))
}

impl Node {
    fn children(&self) -> Vec<&Node> {
        match self {
            Node::Num(_) | Node::Var(_) | Node::Pi | Node::E | Node::Inf => vec![],
            Node::Sum(v) | Node::Prod(v) => v.iter().collect(),
            Node::Neg(a)
            | Node::Recip(a)
            | Node::Func(_, a)
            | Node::Fact(a)
            | Node::Abs(a)
            | Node::Floor(a)
            | Node::Ceil(a) => vec![a],
            Node::Pow(a, b) | Node::Root(a, b) | Node::Log(a, b) | Node::Binom(a, b) => {
                vec![a, b]
            }
        }
    }

    fn collect_vars(&self, out: &mut Vec<String>) {
        if let Node::Var(v) = self {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        for c in self.children() {
            c.collect_vars(out);
        }
    }

    fn has_inf(&self) -> bool {
        matches!(self, Node::Inf) || self.children().iter().any(|c| c.has_inf())
    }

    /// `+1` / `-1` for `\infty` / `-\infty` (possibly wrapped in signs), else `None`.
    fn inf_sign(&self) -> Option<i8> {
        match self {
            Node::Inf => Some(1),
            Node::Neg(a) => a.inf_sign().map(|s| -s),
            Node::Sum(v) | Node::Prod(v) if v.len() == 1 => v[0].inf_sign(),
            _ => None,
        }
    }

    /// Exact rational value, if the expression is a rational constant within `i128`.
    fn exact(&self) -> Option<Q> {
        match self {
            Node::Num(lit) => lit.exact,
            Node::Sum(v) => v.iter().try_fold(Q::int(0), |acc, c| acc.add(c.exact()?)),
            Node::Prod(v) => v.iter().try_fold(Q::int(1), |acc, c| acc.mul(c.exact()?)),
            Node::Neg(a) => a.exact()?.neg(),
            Node::Recip(a) => a.exact()?.recip(),
            Node::Pow(b, e) => {
                let e = e.exact()?;
                let b = b.exact()?;
                if e.is_int() {
                    b.pow(e.n)
                } else {
                    b.root(e.d)?.pow(e.n)
                }
            }
            Node::Root(k, x) => {
                let k = k.exact()?;
                if !k.is_int() {
                    return None;
                }
                x.exact()?.root(k.n)
            }
            Node::Fact(a) => {
                let a = a.exact()?;
                if !a.is_int() || !(0..=33).contains(&a.n) {
                    return None;
                }
                (1..=a.n).try_fold(Q::int(1), |acc, k| acc.mul(Q::int(k)))
            }
            Node::Abs(a) => {
                let a = a.exact()?;
                Some(Q {
                    n: a.n.checked_abs()?,
                    d: a.d,
                })
            }
            Node::Floor(a) => Some(Q::int(a.exact()?.floor())),
            Node::Ceil(a) => Some(Q::int(a.exact()?.neg()?.floor().checked_neg()?)),
            Node::Binom(n, k) => {
                let (n, k) = (n.exact()?, k.exact()?);
                if !n.is_int() || !k.is_int() || n.n < 0 {
                    return None;
                }
                exact_binom(n.n, k.n)
            }
            Node::Var(_) | Node::Pi | Node::E | Node::Inf | Node::Func(..) | Node::Log(..) => None,
        }
    }

    /// `f64` value with the variables bound in `env` (unbound variables give NaN).
    fn eval(&self, env: &[(String, f64)]) -> f64 {
        match self {
            Node::Num(lit) => lit.value,
            Node::Var(v) => env
                .iter()
                .find(|(name, _)| name == v)
                .map_or(f64::NAN, |(_, x)| *x),
            Node::Pi => PI,
            Node::E => E,
            Node::Inf => f64::INFINITY,
            Node::Sum(v) => v.iter().map(|c| c.eval(env)).sum(),
            Node::Prod(v) => v.iter().map(|c| c.eval(env)).product(),
            Node::Neg(a) => -a.eval(env),
            Node::Recip(a) => 1.0 / a.eval(env),
            Node::Pow(b, e) => {
                let (bv, ev) = (b.eval(env), e.eval(env));
                if bv < 0.0 && ev.is_finite() && ev.fract() != 0.0 {
                    // A negative base has a real power only for exponents p/q with q odd.
                    return match e.exact() {
                        Some(q) if q.d % 2 == 1 => {
                            let mag = (-bv).powf(ev);
                            if q.n % 2 == 0 {
                                mag
                            } else {
                                -mag
                            }
                        }
                        _ => f64::NAN,
                    };
                }
                bv.powf(ev)
            }
            Node::Root(k, x) => {
                let (kv, xv) = (k.eval(env), x.eval(env));
                if xv < 0.0 && kv.fract() == 0.0 && kv.rem_euclid(2.0) == 1.0 {
                    -(-xv).powf(1.0 / kv)
                } else {
                    xv.powf(1.0 / kv)
                }
            }
            Node::Func(f, a) => f.apply(a.eval(env)),
            Node::Log(b, a) => a.eval(env).ln() / b.eval(env).ln(),
            Node::Fact(a) => float_factorial(a.eval(env)),
            Node::Abs(a) => a.eval(env).abs(),
            Node::Floor(a) => a.eval(env).floor(),
            Node::Ceil(a) => a.eval(env).ceil(),
            Node::Binom(n, k) => float_binom(n.eval(env), k.eval(env)),
        }
    }
}

/// `C(n, k)` by `C(n, i+1) = C(n, i) * (n - i) / (i + 1)`, each step exact.
fn exact_binom(n: i128, k: i128) -> Option<Q> {
    if k < 0 || k > n {
        return Some(Q::int(0));
    }
    let k = k.min(n - k);
    if k > 200 {
        return None; // C(n, k) >= 2^k overflows long before this
    }
    let mut c: i128 = 1;
    for i in 0..k {
        c = c.checked_mul(n - i)? / (i + 1);
    }
    Some(Q::int(c))
}

fn float_binom(n: f64, k: f64) -> f64 {
    if n.fract() != 0.0 || k.fract() != 0.0 || n < 0.0 || !n.is_finite() {
        return f64::NAN;
    }
    if k < 0.0 || k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    if k <= 30.0 {
        return (0..k as u32).fold(1.0, |c, i| c * (n - f64::from(i)) / f64::from(i + 1));
    }
    // O(1) instead of a k-step loop; a finite result (k > 30) needs n < ~1e11, where the
    // rounding of the ln-gamma difference stays far below 1e-6 relative.
    (ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)).exp()
}

/// `n!` for integers `0 <= n`: exact product up to 30, `exp(ln Γ(n + 1))` beyond.
fn float_factorial(n: f64) -> f64 {
    if n < 0.0 || n.fract() != 0.0 {
        f64::NAN
    } else if n > 170.0 {
        f64::INFINITY
    } else if n <= 30.0 {
        (1..=n as u32).map(f64::from).product()
    } else {
        ln_gamma(n + 1.0).exp()
    }
}

/// `ln Γ(x)` for `x > 0`: shift to `x >= 10` with `ln Γ(x) = ln Γ(x + 1) - ln x`, then
/// Stirling's series `(x - 1/2) ln x - x + ln(2π)/2 + 1/(12x) - 1/(360x³) + 1/(1260x⁵)
/// - 1/(1680x⁷)` (truncation error below 1e-12 at x = 10).
fn ln_gamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= x.ln();
        x += 1.0;
    }
    let (inv, inv2) = (1.0 / x, 1.0 / (x * x));
    let series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    shift + (x - 0.5) * x.ln() - x + 0.5 * (2.0 * PI).ln() + series
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
}

impl Expr {
    /// Free variables in order of first appearance (`x`, `alpha`, `x_1`, ...).
    pub fn variables(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.root.collect_vars(&mut out);
        out
    }

    /// Value with the given variable bindings; errors when the result is not finite
    /// (unbound variable, division by zero, overflow, outside a domain).
    pub fn eval(&self, vars: &[(&str, f64)]) -> Result<f64> {
        let env: Vec<(String, f64)> = vars.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let v = match self.root.exact() {
            Some(q) => q.to_f64(),
            None => self.root.eval(&env),
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(ExprError::Eval(format!("value is {v}")))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Var(String),
    E,
    Pi,
    Inf,
    Frac,
    Binom,
    /// `latex`: a `\sqrt` whose bare-number argument is one digit (`\sqrt23` = `\sqrt{2}3`);
    /// plain-text `sqrt 16` takes the whole number.
    Sqrt {
        latex: bool,
    },
    Func(Func),
    LFloor,
    RFloor,
    LCeil,
    RCeil,
    /// `\circ` (degrees), skipped after `^`.
    Circ,
    /// One of `+ - * / ^ _ ! % | ( ) [ ] { }`.
    Op(char),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(s) => format!("number {s}"),
            Tok::Var(v) => format!("variable {v}"),
            Tok::Op(c) => format!("'{c}'"),
            other => format!("{other:?}"),
        }
    }
}

/// Plain-text words recognised inside a run of letters, longest first.
const PLAIN_WORDS: [&str; 19] = [
    "infinity", "arcsin", "arccos", "arctan", "infty", "sqrt", "sinh", "cosh", "tanh", "sin",
    "cos", "tan", "cot", "sec", "csc", "exp", "log", "ln", "pi",
];

fn word_token(word: &str, latex: bool) -> Option<Tok> {
    Some(match word {
        "pi" => Tok::Pi,
        "infty" | "infinity" => Tok::Inf,
        "sqrt" => Tok::Sqrt { latex },
        "e" => Tok::E,
        _ => Tok::Func(Func::from_name(word)?),
    })
}

const GREEK: [&str; 40] = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "rho",
    "varrho",
    "sigma",
    "varsigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Pi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
    "ell",
];

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    toks: Vec<Tok>,
}

impl Lexer {
    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn digit_at(&self, k: usize) -> bool {
        self.peek_at(k).is_some_and(|c| c.is_ascii_digit())
    }

    fn run(mut self) -> Result<Vec<Tok>> {
        while let Some(c) = self.peek_at(0) {
            if c.is_whitespace() || c == '$' || c == '~' {
                self.pos += 1;
            } else if c.is_ascii_digit() || (c == '.' && self.digit_at(1)) {
                self.number();
            } else if c.is_ascii_alphabetic() {
                self.letters();
            } else if c == '\\' {
                self.command()?;
            } else {
                self.pos += 1;
                match c {
                    '+' | '-' | '*' | '/' | '^' | '_' | '!' | '%' | '|' | '(' | ')' | '[' | ']'
                    | '{' | '}' => self.toks.push(Tok::Op(c)),
                    '−' | '–' => self.toks.push(Tok::Op('-')),
                    '×' | '·' | '⋅' => self.toks.push(Tok::Op('*')),
                    '÷' => self.toks.push(Tok::Op('/')),
                    'π' => self.toks.push(Tok::Pi),
                    '∞' => self.toks.push(Tok::Inf),
                    '√' => self.toks.push(Tok::Sqrt { latex: false }),
                    '°' => {}
                    '²' | '³' => {
                        self.toks.push(Tok::Op('^'));
                        let p = if c == '²' { "2" } else { "3" };
                        self.toks.push(Tok::Num(p.into()));
                    }
                    _ => {
                        return Err(ExprError::UnexpectedChar {
                            ch: c,
                            pos: self.pos - 1,
                        })
                    }
                }
            }
        }
        Ok(self.toks)
    }

    fn digits(&mut self, out: &mut String) {
        while let Some(c) = self.peek_at(0).filter(char::is_ascii_digit) {
            out.push(c);
            self.pos += 1;
        }
    }

    /// Digits, thousands groups (`1{,}000`, `1\,000`, `1 000`: exactly three digits), a decimal part, and scientific
    /// notation `1.5e-3`.
    fn number(&mut self) {
        let mut text = String::new();
        self.digits(&mut text);
        loop {
            let sep = match (self.peek_at(0), self.peek_at(1), self.peek_at(2)) {
                (Some('{'), Some(','), Some('}')) => 3,
                (Some('\\'), Some(','), _) => 2,
                (Some(' '), _, _) => 1,
                _ => break,
            };
            let group = (sep..sep + 3).all(|k| self.digit_at(k)) && !self.digit_at(sep + 3);
            if text.is_empty() || !group {
                break;
            }
            self.pos += sep;
            self.digits(&mut text);
        }
        if self.peek_at(0) == Some('.') {
            self.pos += 1;
            let mut frac = String::new();
            self.digits(&mut frac);
            if !frac.is_empty() {
                text = format!("{}.{frac}", if text.is_empty() { "0" } else { &text });
            }
        }
        if matches!(self.peek_at(0), Some('e' | 'E')) {
            let signed = matches!(self.peek_at(1), Some('+' | '-'));
            let first = if signed { 2 } else { 1 };
            if self.digit_at(first) {
                text.push('e');
                if self.peek_at(1) == Some('-') {
                    text.push('-');
                }
                self.pos += first;
                self.digits(&mut text);
            }
        }
        self.toks.push(Tok::Num(text));
    }

    /// A run of ASCII letters: known words (`sqrt`, `sin`, `pi`, ...) or single-letter
    /// variables (`xy` is `x*y`).
    fn letters(&mut self) {
        let start = self.pos;
        while self.peek_at(0).is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        let run: String = self.chars[start..self.pos].iter().collect();
        let mut rest = run.as_str();
        while let Some(c) = rest.chars().next() {
            if let Some(w) = PLAIN_WORDS.iter().find(|w| rest.starts_with(**w)) {
                if let Some(t) = word_token(w, false) {
                    self.toks.push(t);
                }
                rest = &rest[w.len()..];
            } else {
                self.toks.push(if c == 'e' {
                    Tok::E
                } else {
                    Tok::Var(c.to_string())
                });
                rest = &rest[1..];
            }
        }
    }

    fn command(&mut self) -> Result<()> {
        self.pos += 1; // the backslash
        let Some(c) = self.peek_at(0) else {
            return Err(ExprError::UnexpectedEnd("a command after '\\'".into()));
        };
        if !c.is_ascii_alphabetic() {
            self.pos += 1;
            match c {
                ',' | ';' | ':' | '!' | ' ' | '\\' | '$' => {}
                '%' => self.toks.push(Tok::Op('%')),
                '{' => self.toks.push(Tok::Op('(')),
                '}' => self.toks.push(Tok::Op(')')),
                '|' => self.toks.push(Tok::Op('|')),
                _ => return Err(ExprError::UnknownCommand(c.to_string())),
            }
            return Ok(());
        }
        let start = self.pos;
        while self.peek_at(0).is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let tok = match name.as_str() {
            "frac" | "dfrac" | "tfrac" | "cfrac" => Tok::Frac,
            "binom" | "dbinom" | "tbinom" => Tok::Binom,
            "cdot" | "times" | "ast" => Tok::Op('*'),
            "div" => Tok::Op('/'),
            "lvert" | "rvert" | "vert" => Tok::Op('|'),
            "lfloor" => Tok::LFloor,
            "rfloor" => Tok::RFloor,
            "lceil" => Tok::LCeil,
            "rceil" => Tok::RCeil,
            "circ" | "degree" => Tok::Circ,
            "left" | "right" | "bigl" | "bigr" | "Bigl" | "Bigr" | "biggl" | "biggr" | "big"
            | "Big" | "bigg" | "Bigg" => {
                while self.peek_at(0).is_some_and(char::is_whitespace) {
                    self.pos += 1;
                }
                if self.peek_at(0) == Some('.') {
                    self.pos += 1; // `\left.` is an invisible delimiter
                }
                return Ok(());
            }
            "displaystyle" | "textstyle" | "quad" | "qquad" => return Ok(()),
            "text" | "textrm" | "textit" | "textbf" | "mathrm" | "mathit" | "mathbf"
            | "operatorname" | "rm" => return self.text_arg(&name),
            n if GREEK.contains(&n) => Tok::Var(n.to_string()),
            n => word_token(n, true).ok_or_else(|| ExprError::UnknownCommand(n.to_string()))?,
        };
        self.toks.push(tok);
        Ok(())
    }

    /// `\text{...}` and friends: accepted only when the content is a single token we
    /// know (`\mathrm{e}`, `\operatorname{sin}`, `\text{5}`, `\mathbf{v}`) or blank.
    fn text_arg(&mut self, cmd: &str) -> Result<()> {
        while self.peek_at(0).is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        if self.peek_at(0) != Some('{') {
            return Err(ExprError::Unsupported(format!("\\{cmd} without braces")));
        }
        let start = self.pos + 1;
        let mut depth = 0usize;
        let end = loop {
            match self.peek_at(0) {
                None => return Err(ExprError::UnexpectedEnd(format!("'}}' after \\{cmd}"))),
                Some('{') => depth += 1,
                Some('}') => {
                    depth -= 1;
                    if depth == 0 {
                        break self.pos;
                    }
                }
                Some(_) => {}
            }
            self.pos += 1;
        };
        self.pos = end + 1;
        let content: String = self.chars[start..end].iter().collect();
        let word = content.trim();
        let tok = if word.is_empty() {
            return Ok(());
        } else if word.len() == 1 && word.chars().all(|c| c.is_ascii_alphabetic()) {
            if word == "e" {
                Tok::E
            } else {
                Tok::Var(word.to_string())
            }
        } else if word.chars().all(|c| c.is_ascii_digit()) {
            Tok::Num(word.to_string())
        } else if let Some(t) = word_token(word, true) {
            t
        } else {
            return Err(ExprError::Unsupported(format!("\\{cmd}{{{content}}}")));
        };
        self.toks.push(tok);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Parser (recursive descent)
// ---------------------------------------------------------------------------------------
//
// sum      := term (('+' | '-') term)*
// term     := unary (('*' | '/') unary | power)*        -- juxtaposition multiplies
// unary    := ('-' | '+') unary | power
// power    := postfix ('^' exponent)?
// exponent := ('-' | '+') exponent | power | '\circ'     -- right associative
// postfix  := primary ('!' | '%')*
// primary  := number | variable('_' sub)? | constant | (sum) | [sum] | {sum} | |sum|
//           | \frac arg arg | \binom arg arg | \sqrt([sum])? arg | function | floor/ceil

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    /// Open `|...|` groups at this bracket level: there `|` closes instead of multiplying.
    abs_depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn is_op(&self, c: char) -> bool {
        matches!(self.peek(), Some(Tok::Op(x)) if *x == c)
    }

    fn eat_op(&mut self, c: char) -> bool {
        let hit = self.is_op(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn unexpected(&self, wanted: &str) -> ExprError {
        match self.peek() {
            Some(t) => ExprError::UnexpectedToken {
                found: format!("{} (expected {wanted})", t.describe()),
                pos: self.pos,
            },
            None => ExprError::UnexpectedEnd(wanted.to_string()),
        }
    }

    fn expect_op(&mut self, c: char) -> Result<()> {
        if self.eat_op(c) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}'")))
        }
    }

    /// Enters one nesting level, refusing beyond [`MAX_DEPTH`]. Callers undo it with
    /// `self.depth -= 1` on success; an error aborts the whole parse, so it needs no undo.
    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep { max: MAX_DEPTH });
        }
        self.depth += 1;
        Ok(())
    }

    fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Op(c)) => matches!(c, '(' | '[' | '{') || (*c == '|' && self.abs_depth == 0),
            Some(
                Tok::Num(_)
                | Tok::Var(_)
                | Tok::E
                | Tok::Pi
                | Tok::Inf
                | Tok::Frac
                | Tok::Binom
                | Tok::Sqrt { .. }
                | Tok::Func(_)
                | Tok::LFloor
                | Tok::LCeil,
            ) => true,
            _ => false,
        }
    }

    fn sum(&mut self) -> Result<Node> {
        self.enter()?;
        let mut terms = vec![self.term()?];
        loop {
            if self.eat_op('+') {
                terms.push(self.term()?);
            } else if self.eat_op('-') {
                terms.push(Node::Neg(bx(self.term()?)));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Node::Sum(terms)
        })
    }

    fn term(&mut self) -> Result<Node> {
        let mut factors = vec![self.unary()?];
        loop {
            if self.eat_op('*') {
                factors.push(self.unary()?);
            } else if self.eat_op('/') {
                factors.push(Node::Recip(bx(self.unary()?)));
            } else if self.starts_factor() {
                factors.push(self.power()?);
            } else {
                break;
            }
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Node::Prod(factors)
        })
    }

    fn unary(&mut self) -> Result<Node> {
        self.enter()?;
        let node = if self.eat_op('-') {
            Node::Neg(bx(self.unary()?))
        } else if self.eat_op('+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(node)
    }

    fn power(&mut self) -> Result<Node> {
        self.enter()?;
        let base = self.postfix()?;
        let node = if self.eat_op('^') && !self.skip_degree() {
            Node::Pow(bx(base), bx(self.exponent()?))
        } else {
            base
        };
        self.depth -= 1;
        Ok(node)
    }

    /// `^\circ` or `^{\circ}`: degrees, kept as the bare number.
    fn skip_degree(&mut self) -> bool {
        let rest = &self.toks[self.pos..];
        let n = match rest {
            [Tok::Circ, ..] => 1,
            [Tok::Op('{'), Tok::Circ, Tok::Op('}'), ..] => 3,
            _ => 0,
        };
        self.pos += n;
        n > 0
    }

    fn exponent(&mut self) -> Result<Node> {
        self.enter()?;
        let node = if self.eat_op('-') {
            Node::Neg(bx(self.exponent()?))
        } else if self.eat_op('+') {
            self.exponent()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(node)
    }

    fn postfix(&mut self) -> Result<Node> {
        let mut node = self.primary()?;
        loop {
            if self.eat_op('!') {
                node = Node::Fact(bx(node));
            } else if self.eat_op('%') {
                node = Node::Prod(vec![node, Node::Recip(bx(int_node(100)))]);
            } else {
                return Ok(node);
            }
        }
    }

    /// `sum` followed by `close`, with `|` nesting reset inside the brackets.
    fn group(&mut self, close: char) -> Result<Node> {
        let saved = std::mem::replace(&mut self.abs_depth, 0);
        let inner = self.sum()?;
        self.expect_op(close)?;
        self.abs_depth = saved;
        Ok(inner)
    }

    // Every construct has its own small function: unoptimised builds give each local its
    // own stack slot, so one big `match` here would make every nesting level costly.
    fn primary(&mut self) -> Result<Node> {
        self.enter()?;
        let Some(tok) = self.peek().cloned() else {
            return Err(ExprError::UnexpectedEnd("an operand".into()));
        };
        self.pos += 1;
        let node = match tok {
            Tok::Num(text) => self.number(&text)?,
            Tok::Var(v) => Node::Var(self.subscript(v)?),
            Tok::E if self.is_op('_') => Node::Var(self.subscript("e".into())?),
            Tok::E => Node::E,
            Tok::Pi => Node::Pi,
            Tok::Inf => Node::Inf,
            Tok::Op('(') => self.group(')')?,
            Tok::Op('[') => self.group(']')?,
            Tok::Op('{') => self.group('}')?,
            Tok::Op('|') => self.abs()?,
            Tok::Frac => self.frac(false)?,
            Tok::Binom => self.frac(true)?,
            Tok::Sqrt { latex } => self.root(latex)?,
            Tok::Func(f) => self.function(f)?,
            Tok::LFloor => self.floor_ceil(Tok::RFloor)?,
            Tok::LCeil => self.floor_ceil(Tok::RCeil)?,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("an operand"));
            }
        };
        self.depth -= 1;
        Ok(node)
    }

    fn abs(&mut self) -> Result<Node> {
        self.abs_depth += 1;
        let inner = self.sum()?;
        self.expect_op('|')?;
        self.abs_depth -= 1;
        Ok(Node::Abs(bx(inner)))
    }

    /// `\frac{a}{b}` = `a * b^-1`, or `\binom{a}{b}`.
    fn frac(&mut self, binom: bool) -> Result<Node> {
        let a = self.arg(true)?;
        let b = self.arg(true)?;
        Ok(if binom {
            Node::Binom(bx(a), bx(b))
        } else {
            Node::Prod(vec![a, Node::Recip(bx(b))])
        })
    }

    /// `\sqrt{x}`, `\sqrt[n]{x}`.
    fn root(&mut self, latex: bool) -> Result<Node> {
        let index = if self.eat_op('[') {
            self.group(']')?
        } else {
            int_node(2)
        };
        let x = self.arg(latex)?;
        Ok(Node::Root(bx(index), bx(x)))
    }

    /// `\lfloor x \rfloor` or `\lceil x \rceil` (after the opening token).
    fn floor_ceil(&mut self, close: Tok) -> Result<Node> {
        let inner = self.sum()?;
        if self.peek() != Some(&close) {
            let want = if close == Tok::RFloor {
                "\\rfloor"
            } else {
                "\\rceil"
            };
            return Err(self.unexpected(want));
        }
        self.pos += 1;
        Ok(if close == Tok::RFloor {
            Node::Floor(bx(inner))
        } else {
            Node::Ceil(bx(inner))
        })
    }

    /// A number; an integer directly followed by `\frac{p}{q}` with integers
    /// `0 < p < q` is a mixed number (`2\frac{1}{3}` = 7/3).
    fn number(&mut self, text: &str) -> Result<Node> {
        let lit = NumLit::new(text)?;
        let is_int = text.chars().all(|c| c.is_ascii_digit());
        if is_int && self.peek() == Some(&Tok::Frac) {
            let save = self.pos;
            self.pos += 1;
            let num = self.arg(true)?;
            let den = self.arg(true)?;
            if let (Node::Num(a), Node::Num(b)) = (&num, &den) {
                let int_lit = |l: &NumLit| l.exact.filter(|q| q.is_int() && !l.text.contains('.'));
                if let (Some(qa), Some(qb)) = (int_lit(a), int_lit(b)) {
                    if 0 < qa.n && qa.n < qb.n {
                        let frac = Node::Prod(vec![num, Node::Recip(bx(den))]);
                        return Ok(Node::Sum(vec![Node::Num(Box::new(lit)), frac]));
                    }
                }
            }
            self.pos = save;
        }
        Ok(Node::Num(Box::new(lit)))
    }

    /// `x_1`, `a_{n+1}`: the subscript becomes part of the variable's name.
    fn subscript(&mut self, name: String) -> Result<String> {
        if !self.eat_op('_') {
            return Ok(name);
        }
        let mut sub = String::new();
        let mut depth = 0usize;
        loop {
            let Some(tok) = self.peek().cloned() else {
                return Err(ExprError::UnexpectedEnd(format!("subscript of {name}")));
            };
            self.pos += 1;
            match tok {
                Tok::Op('{') => depth += 1,
                Tok::Op('}') if depth > 0 => depth -= 1,
                Tok::Num(s) | Tok::Var(s) => sub.push_str(&s),
                Tok::E => sub.push('e'),
                Tok::Op(c @ ('+' | '-' | ',')) if depth > 0 => sub.push(c),
                other => {
                    return Err(ExprError::Unsupported(format!(
                        "{} in the subscript of {name}",
                        other.describe()
                    )))
                }
            }
            if depth == 0 {
                break;
            }
        }
        if sub.is_empty() {
            return Err(ExprError::Unsupported(format!("empty subscript of {name}")));
        }
        Ok(format!("{name}_{sub}"))
    }

    /// Argument of `\frac`, `\sqrt`, `\binom`, `\log_b`: a braced group, or one token.
    /// In LaTeX a bare number argument is one digit (`\frac12` = 1/2).
    fn arg(&mut self, latex: bool) -> Result<Node> {
        match self.peek() {
            Some(Tok::Op('{')) => {
                self.pos += 1;
                self.group('}')
            }
            Some(Tok::Num(text)) if latex && text.len() > 1 && !text.contains('e') => {
                let (first, rest) = text.split_at(1);
                let rest = if rest.starts_with('.') {
                    format!("0{rest}")
                } else {
                    rest.to_string()
                };
                let lit = NumLit::new(first)?;
                self.toks[self.pos] = Tok::Num(rest);
                Ok(Node::Num(Box::new(lit)))
            }
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Ok(Node::Neg(bx(self.arg(latex)?)))
            }
            _ => self.primary(),
        }
    }

    /// `\sin x`, `\sin(x)`, `\sin^2 x`, `\sin^{-1} x`, `\log_2 8`, `\ln 2x`.
    fn function(&mut self, f: Func) -> Result<Node> {
        let mut f = f;
        let mut power = None;
        let mut base = None;
        for _ in 0..2 {
            if power.is_none() && self.eat_op('^') {
                let p = self.exponent()?;
                let minus_one = matches!(&p, Node::Neg(a) if a.exact() == Some(Q::int(1)));
                match f.inverse() {
                    Some(inv) if minus_one => f = inv,
                    _ => power = Some(p),
                }
            } else if f == Func::Log10 && base.is_none() && self.eat_op('_') {
                base = Some(self.arg(true)?);
            }
        }
        // `\sin(x)^2` is `(\sin x)^2`: a parenthesised argument ends the function, and
        // the caller's `power` applies any exponent that follows.
        let arg = if self.is_op('(') {
            self.primary()?
        } else {
            self.function_run()?
        };
        let mut node = match base {
            Some(b) => Node::Log(bx(b), bx(arg)),
            None => Node::Func(f, bx(arg)),
        };
        if let Some(p) = power {
            node = Node::Pow(bx(node), bx(p));
        }
        Ok(node)
    }

    /// Unbracketed function argument: juxtaposed factors up to the next function or
    /// operator (`\sin 2x \cos x` = `\sin(2x)\cos(x)`).
    fn function_run(&mut self) -> Result<Node> {
        self.enter()?;
        let node = if self.eat_op('-') {
            Node::Neg(bx(self.function_run()?))
        } else {
            let mut factors = vec![self.power()?];
            while self.starts_factor() && !matches!(self.peek(), Some(Tok::Func(_))) {
                factors.push(self.power()?);
            }
            if factors.len() == 1 {
                factors.remove(0)
            } else {
                Node::Prod(factors)
            }
        };
        self.depth -= 1;
        Ok(node)
    }
}

/// Parse a LaTeX / plain-text math expression.
pub fn parse(s: &str) -> Result<Expr> {
    let len = s.chars().count();
    if len > MAX_INPUT_CHARS {
        return Err(ExprError::TooLong {
            len,
            max: MAX_INPUT_CHARS,
        });
    }
    let toks = Lexer {
        chars: s.chars().collect(),
        pos: 0,
        toks: Vec::new(),
    }
    .run()?;
    if toks.is_empty() {
        return Err(ExprError::Empty);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        abs_depth: 0,
    };
    let root = p.sum()?;
    if p.pos < p.toks.len() {
        return Err(p.unexpected("end of expression"));
    }
    Ok(Expr { root })
}

// ---------------------------------------------------------------------------------------
// Equivalence
// ---------------------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator, so verdicts never depend on global state.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sample points for `vars`: 8 in (0.1, 2.5), 8 in (-3, 3), 8 in (2, 12) and 6 small
/// integers (for `n!`, `\binom{n}{k}`); one fixed seed.
fn sample_points(vars: &[String]) -> Vec<Vec<(String, f64)>> {
    let mut rng = SplitMix64(SAMPLE_SEED);
    (0..N_POINTS)
        .map(|i| {
            vars.iter()
                .map(|v| {
                    let u = rng.next_f64();
                    let x = match i / 8 {
                        0 => 0.1 + 2.4 * u,
                        1 => -3.0 + 6.0 * u,
                        2 => 2.0 + 10.0 * u,
                        _ => (2.0 + 8.0 * u).floor(),
                    };
                    (v.clone(), x)
                })
                .collect()
        })
        .collect()
}

fn close(x: f64, y: f64, rel_tol: f64, abs_floor: f64) -> bool {
    let diff = (x - y).abs();
    diff <= rel_tol * x.abs().max(y.abs()) || diff <= abs_floor
}

fn union_vars(a: &Node, b: &Node) -> Vec<String> {
    let mut vars = Vec::new();
    a.collect_vars(&mut vars);
    b.collect_vars(&mut vars);
    vars
}

/// `tol == None`: rational constants are compared exactly; `Some(t)`: a relative
/// tolerance `t` applies to every numeric comparison.
fn compare(a: &Node, b: &Node, tol: Option<f64>) -> Option<bool> {
    if a == b {
        return Some(true);
    }
    match (a.has_inf(), b.has_inf()) {
        (true, true) => return Some(a.inf_sign()? == b.inf_sign()?),
        (true, false) | (false, true) => return Some(false),
        (false, false) => {}
    }
    let vars = union_vars(a, b);
    let verdict = if vars.is_empty() {
        if let (Some(x), Some(y)) = (a.exact(), b.exact()) {
            if x == y || tol.is_none() {
                return Some(x == y);
            }
        }
        let (x, y) = (a.eval(&[]), b.eval(&[]));
        if !x.is_finite() || !y.is_finite() {
            return None;
        }
        close(x, y, tol.unwrap_or(CONST_STRICT_REL_TOL), CONST_ABS_FLOOR)
    } else {
        let mut valid = 0;
        for env in sample_points(&vars) {
            let (x, y) = (a.eval(&env), b.eval(&env));
            if !x.is_finite() || !y.is_finite() {
                continue;
            }
            valid += 1;
            if !close(x, y, tol.unwrap_or(DEFAULT_REL_TOL), POINT_ABS_FLOOR) {
                valid = usize::MAX;
                break;
            }
        }
        match valid {
            usize::MAX => false,
            n if n >= MIN_VALID_POINTS => true,
            _ => return None,
        }
    };
    // Real-valued sampling cannot refute identities of the imaginary unit (`i^2 = -1`).
    if !verdict && vars.iter().any(|v| v == "i") {
        return None;
    }
    Some(verdict)
}

/// Some(true): equal; Some(false): decided different; None: could not decide
/// (unparseable, too big, no finite values, ...). Rational constants are compared
/// exactly; everything else numerically with relative tolerance [`DEFAULT_REL_TOL`].
pub fn latex_equal(a: &str, b: &str) -> Option<bool> {
    let (a, b) = (parse(a).ok()?, parse(b).ok()?);
    compare(&a.root, &b.root, None)
}

/// Like [`latex_equal`], but every numeric comparison, including between two rational
/// constants that are not exactly equal, uses relative tolerance `rel_tol`
/// (`\frac{\pi}{2}` equals `1.5707963` under 1e-4).
pub fn latex_equal_tol(a: &str, b: &str, rel_tol: f64) -> Option<bool> {
    if !rel_tol.is_finite() || rel_tol < 0.0 {
        return None;
    }
    let (a, b) = (parse(a).ok()?, parse(b).ok()?);
    compare(&a.root, &b.root, Some(rel_tol))
}

/// Numeric value of a constant expression (no free variables), if it can be computed.
/// Always finite: `\infty`, overflow (`10^{400}`) and undefined values (`\frac10`) give `None`.
pub fn latex_value(s: &str) -> Option<f64> {
    let e = parse(s).ok()?;
    if !e.variables().is_empty() {
        return None;
    }
    e.eval(&[]).ok()
}

/// Split `lhs = rhs` into the parsed `lhs - rhs` parts.
fn equation_sides(s: &str) -> Option<(Node, Node)> {
    let (lhs, rhs) = s.split_once('=')?;
    if rhs.contains('=') {
        return None;
    }
    Some((parse(lhs).ok()?.root, parse(rhs).ok()?.root))
}

/// Equations `lhs = rhs` compared as equations: equal iff `lhs - rhs` of one is a
/// nonzero constant multiple of the other's, decided at the seeded sample points
/// (`y = 2x + 1` equals `2x - y + 1 = 0`). A side that vanishes at a point, relative to
/// `max(1, |lhs|, |rhs|)`, must vanish in the other too; elsewhere the ratios must agree
/// within [`DEFAULT_REL_TOL`].
pub fn equations_equal(a: &str, b: &str) -> Option<bool> {
    let (la, ra) = equation_sides(a)?;
    let (lb, rb) = equation_sides(b)?;
    if la.has_inf() || ra.has_inf() || lb.has_inf() || rb.has_inf() {
        return None;
    }
    let mut vars = union_vars(&la, &ra);
    for v in union_vars(&lb, &rb) {
        if !vars.contains(&v) {
            vars.push(v);
        }
    }
    let points = if vars.is_empty() {
        vec![Vec::new()]
    } else {
        sample_points(&vars)
    };
    let needed = if vars.is_empty() { 1 } else { MIN_VALID_POINTS };
    let mut valid = 0;
    let mut ratio: Option<f64> = None;
    let mut verdict = true;
    for env in &points {
        let (l1, r1, l2, r2) = (la.eval(env), ra.eval(env), lb.eval(env), rb.eval(env));
        if ![l1, r1, l2, r2].iter().all(|v| v.is_finite()) {
            continue;
        }
        valid += 1;
        let (f, g) = (l1 - r1, l2 - r2);
        let zf = f.abs() <= POINT_ABS_FLOOR * 1f64.max(l1.abs()).max(r1.abs());
        let zg = g.abs() <= POINT_ABS_FLOOR * 1f64.max(l2.abs()).max(r2.abs());
        if zf != zg {
            verdict = false;
            break;
        }
        if zf {
            continue;
        }
        let r = f / g;
        match ratio {
            None => ratio = Some(r),
            Some(r0) if close(r, r0, DEFAULT_REL_TOL, 0.0) => {}
            Some(_) => {
                verdict = false;
                break;
            }
        }
    }
    if verdict && valid < needed {
        return None;
    }
    if !verdict && vars.iter().any(|v| v == "i") {
        return None;
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    /// Asserts `latex_equal(a, b)` and `latex_equal(b, a)` both give `want`.
    fn check(cases: &[(&str, &str, Option<bool>)]) {
        for &(a, b, want) in cases {
            assert_eq!(latex_equal(a, b), want, "latex_equal({a:?}, {b:?})");
            assert_eq!(latex_equal(b, a), want, "latex_equal({b:?}, {a:?})");
        }
    }

    #[test]
    fn expr_numbers_and_fractions() {
        check(&[
            (r"\frac{1}{2}", "0.5", Some(true)),
            (r"\frac{2}{4}", r"\frac12", Some(true)),
            (r"\dfrac{3}{6}", r"\tfrac{1}{2}", Some(true)),
            (r"\frac1{2}", "1/2", Some(true)),
            (r"\frac{1}{2}", r"\frac{1}{3}", Some(false)),
            (r"\frac{1}{2}", "0.50", Some(true)),
            ("0.1+0.2", "0.3", Some(true)), // exact: 1/10 + 2/10 = 3/10
            (r"\frac12 + \frac13", r"\frac56", Some(true)), // 3/6 + 2/6
            (r"\frac{1}{3}", "0.333333", Some(false)), // 1/3 - 0.333333 = 1/3000000
            ("0.999", "1", Some(false)),
            ("-0", "0", Some(true)),
            ("1/2/2", "0.25", Some(true)),             // (1/2)/2
            ("6/2(1+2)", "9", Some(true)),             // left to right: 3 * 3
            (r"2\frac{1}{2}", r"\frac52", Some(true)), // mixed number 2 + 1/2
            (r"2\frac{\sqrt{3}}{3}", r"\frac{2\sqrt3}{3}", Some(true)), // a product
            (r"1{,}000", "1000", Some(true)),
            (r"1\,000", "1000", Some(true)),
            ("1 000 000", "1000000", Some(true)),
            ("12 34", "408", Some(true)), // not a thousands group: 12 * 34
            (r"\$5", "5", Some(true)),
            // 30 digits: beyond f64 precision, exact in i128.
            (
                "123456789012345678901234567890",
                "123456789012345678901234567891",
                Some(false),
            ),
            (".5", r"\frac{1}{2}", Some(true)),
        ]);
    }

    #[test]
    fn expr_scientific_notation_and_percent() {
        check(&[
            ("1.5e-3", r"\frac{3}{2000}", Some(true)), // 1.5/1000 = 3/2000
            (r"1.5\times10^{-3}", "0.0015", Some(true)),
            (r"1.5\cdot 10^3", "1500", Some(true)),
            ("2.5E2", "250", Some(true)),
            ("1e3", "1000", Some(true)),
            ("1.5e-3", "1.5e-4", Some(false)),
            (r"50\%", "0.5", Some(true)),
            ("50%", r"\frac{1}{2}", Some(true)),
            (r"5\%", "0.5", Some(false)),
        ]);
    }

    #[test]
    fn expr_roots_and_powers() {
        check(&[
            (r"\sqrt{8}", r"2\sqrt{2}", Some(true)), // sqrt(4*2) = 2 sqrt 2
            (r"\sqrt[3]{27}", "3", Some(true)),
            (r"\sqrt2", r"\sqrt{2}", Some(true)),
            (r"\sqrt{2}", "1.414", Some(false)),
            (r"\sqrt[3]{-8}", "-2", Some(true)),
            (r"\sqrt{\frac{4}{9}}", r"\frac23", Some(true)),
            (r"\sqrt{12}", r"2\sqrt{3}", Some(true)),
            (r"\sqrt{12}", r"3\sqrt{2}", Some(false)),
            (r"3\sqrt{2}", r"\sqrt{18}", Some(true)),
            (r"\frac{3}{\sqrt{3}}", r"\sqrt3", Some(true)),
            (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", Some(true)),
            (r"\sqrt{2}^2", "2", Some(true)),
            ("(-8)^{1/3}", "-2", Some(true)),
            ("2^{10}", "1024", Some(true)),
            ("2^10", "1024", Some(true)), // plain text takes the whole exponent
            ("2^{-1}", "0.5", Some(true)),
            ("2^-1", r"\frac12", Some(true)),
            ("2^{3^2}", "512", Some(true)), // right associative: 2^9
            ("2^3^2", "512", Some(true)),
            ("-3^2", "-9", Some(true)),
            ("(-3)^2", "9", Some(true)),
            ("2^{100}", "1267650600228229401496703205376", Some(true)),
            ("2^{100}+1", "2^{100}", Some(false)),
            ("sqrt(16)", "4", Some(true)),
            ("sqrt16", "4", Some(true)),   // plain text: whole number
            (r"\sqrt16", "6", Some(true)), // LaTeX: \sqrt{1}6
            (r"\left(\frac{1}{2}\right)^2", r"\frac14", Some(true)),
            (r"30^\circ", "30", Some(true)),
            (r"30^{\circ}", "30", Some(true)),
        ]);
    }

    #[test]
    fn expr_constants_and_infinity() {
        check(&[
            (r"\pi", r"\pi", Some(true)),
            (r"\pi", "e", Some(false)),
            (r"\pi", "3.14", Some(false)),
            (r"\frac{\pi}{2}", "1.5707963", Some(false)), // needs a tolerance
            ("pi/2", r"\frac{\pi}{2}", Some(true)),
            ("e", "2.718281828459045", Some(true)),
            ("e", "2.718", Some(false)),
            (r"\exp(1)", "e", Some(true)),
            (r"\infty", r"\infty", Some(true)),
            (r"-\infty", r"\infty", Some(false)),
            (r"+\infty", r"\infty", Some(true)),
            (r"\infty", "10^{400}", Some(false)),
            (r"\infty", "5", Some(false)),
            (r"\infty+1", r"\infty", None),
        ]);
    }

    #[test]
    fn expr_functions() {
        check(&[
            (r"\sin^2 x + \cos^2 x", "1", Some(true)),
            (r"\sin(2x)", r"2\sin x\cos x", Some(true)),
            (r"\sin 2x", r"2\sin x \cos x", Some(true)),
            (r"\sin x", r"\cos x", Some(false)),
            (r"\cos^2 x - \sin^2 x", r"\cos 2x", Some(true)),
            (r"\sec^2 x - \tan^2 x", "1", Some(true)),
            (r"\cot x", r"\frac{\cos x}{\sin x}", Some(true)),
            (r"\csc x", r"\frac{1}{\sin x}", Some(true)),
            (r"\tan x", r"\frac{\sin x}{\cos x}", Some(true)),
            (r"\sin x^2", r"\sin(x^2)", Some(true)),
            (r"\sin(x)^2", r"\sin^2 x", Some(true)),
            (r"\sin x^2", r"\sin^2 x", Some(false)),
            (r"\tan\frac{\pi}{4}", "1", Some(true)),
            (r"\cos \pi", "-1", Some(true)),
            (r"\sin^{-1}(1)", r"\frac{\pi}{2}", Some(true)),
            (r"\arcsin 1", r"\frac{\pi}{2}", Some(true)),
            (r"\arctan 1", r"\frac{\pi}{4}", Some(true)),
            (r"\log_2 8", "3", Some(true)),
            (r"\log_{10} 1000", "3", Some(true)),
            (r"\log 100", "2", Some(true)), // \log is base 10
            (r"\log_2 x", r"\frac{\ln x}{\ln 2}", Some(true)),
            (r"\ln(e^2)", "2", Some(true)),
            (r"\ln e", "1", Some(true)),
            (r"e^{\ln 5}", "5", Some(true)),
            (r"\sinh x", r"\frac{e^x - e^{-x}}{2}", Some(true)),
            ("sin(x)^2+cos(x)^2", "1", Some(true)),
            ("log(8)/log(2)", "3", Some(true)),
        ]);
    }

    #[test]
    fn expr_factorial_abs_floor_binom() {
        check(&[
            ("3!", "6", Some(true)),
            ("5!", "120", Some(true)),
            ("0!", "1", Some(true)),
            ("10!", "3628800", Some(true)),
            ("4!", "25", Some(false)),
            (r"|{-3}|", "3", Some(true)),
            ("|-3|", "3", Some(true)),
            ("|-3|", "-3", Some(false)),
            (r"\left|x\right|", "|x|", Some(true)),
            ("|x|", "x", Some(false)),
            ("|x|", r"\sqrt{x^2}", Some(true)),
            ("|x-1|", "|1-x|", Some(true)),
            (r"||{-2}|-1|", "1", Some(true)), // |2 - 1|
            ("2|x|", "|2x|", Some(true)),
            (r"\lfloor 3.7 \rfloor", "3", Some(true)),
            (r"\lceil 3.2\rceil", "4", Some(true)),
            (r"\lfloor -3.5 \rfloor", "-4", Some(true)),
            (r"\binom{5}{2}", "10", Some(true)), // 5*4/2
            (r"\binom{n}{2}", r"\frac{n(n-1)}{2}", Some(true)),
            (r"\binom{n}{2}", r"\frac{n(n+1)}{2}", Some(false)),
        ]);
    }

    #[test]
    fn expr_polynomials_and_variables() {
        check(&[
            ("x^2-1", "(x-1)(x+1)", Some(true)),
            ("x^2+1", "(x+1)^2", Some(false)),
            ("(x+1)^2", "x^2+2x+1", Some(true)),
            ("x^2", r"x\cdot x", Some(true)),
            ("2x", "x+x", Some(true)),
            ("2x", "x^2", Some(false)),
            ("xy", "yx", Some(true)),
            ("x y", "xy", Some(true)),
            ("x^2y", "y x^2", Some(true)),
            ("-(x-1)", "1-x", Some(true)),
            (r"\frac{1}{2}x", r"\frac{x}{2}", Some(true)),
            (r"\frac{x+1}{2}", r"\frac{x}{2}+\frac12", Some(true)),
            (r"\frac{x^2-1}{x-1}", "x+1", Some(true)),
            (r"\frac{x}{x}", "1", Some(true)),
            (r"\sqrt{x}\sqrt{x}", "x", Some(true)),
            (r"\sqrt{x^2}", "x", Some(false)),
            (r"\sqrt{x+1}", r"\sqrt{x}+1", Some(false)),
            ("x^{1/2}", r"\sqrt{x}", Some(true)),
            (r"2\pi r", r"2 r \pi", Some(true)),
            (r"\pi r^2", r"r^2\pi", Some(true)),
            (r"2\pi r", r"\pi r", Some(false)),
            ("x", "y", Some(false)),
            ("x+y-y", "x", Some(true)),
            ("x_1 + x_2", "x_2 + x_1", Some(true)),
            ("x_1", "x_2", Some(false)),
            ("a_n", "a_{n}", Some(true)),
            ("e_1 + e", "e + e_1", Some(true)), // e_1 is a variable, e the constant
            ("e_1", "e", Some(false)),
            (r"\alpha + \beta", r"\beta+\alpha", Some(true)),
            (r"\alpha", r"\beta", Some(false)),
            ("[x+1]", "x+1", Some(true)),
            ("{x+1}^2", "(x+1)^2", Some(true)),
            ("(x+1)(x-1)", "x^2-1", Some(true)),
        ]);
    }

    #[test]
    fn expr_imaginary_unit_and_undecidable() {
        check(&[
            (r"e^{i\pi}", "-1", None), // true over C; real sampling cannot tell
            ("i^2", "-1", None),
            ("2i+3", "3+2i", Some(true)),
            (r"\sqrt{-1}", "1", None),
            (r"\frac{1}{0}", "5", None),
            ("2^{99999999}", "2^{99999998}", None),
            ("10^{10^{10}}", "10^{10^{10}}", Some(true)), // identical trees
            ("10^{10^{10}}", "5", None),
            (r"\frac{1}{", "1", None),
            (r"\foo", r"\foo", None),
            ("n!", "n(n-1)!", Some(true)), // decided at the integer sample points
        ]);
    }

    #[test]
    fn expr_tolerance() {
        // pi/2 = 1.57079632679...; |pi/2 - 1.5707963| / (pi/2) = 1.7e-8.
        assert_eq!(
            latex_equal_tol(r"\frac{\pi}{2}", "1.5707963", 1e-4),
            Some(true)
        );
        assert_eq!(latex_equal_tol(r"\pi", "3.14", 1e-4), Some(false)); // 5.1e-4 off
        assert_eq!(latex_equal_tol(r"\frac{1}{3}", "0.3333", 1e-3), Some(true));
        assert_eq!(latex_equal_tol(r"\frac{1}{3}", "0.3", 1e-4), Some(false));
        assert_eq!(latex_equal_tol(r"\frac{1}{2}", "0.5", 0.0), Some(true));
        assert_eq!(latex_equal_tol("1", "2", f64::NAN), None);
        // |0.0001 - 0.0002| is small but not relatively: no absolute slack for constants.
        assert_eq!(latex_equal_tol("0.0001", "0.0002", 1e-4), Some(false));
    }

    #[test]
    fn expr_gamma_based_factorial_and_binomial() {
        let rel = |x: f64, y: f64| ((x - y) / y).abs();
        // ln Γ(1/2) = ln √π
        assert!((ln_gamma(0.5) - 0.5 * PI.ln()).abs() < 1e-12);
        // 50! = 30414093201713378043612608166064768844377641568960512000000000000
        assert!(rel(float_factorial(50.0), 3.041_409_320_171_338e64) < 1e-11);
        assert_eq!(float_factorial(5.0), 120.0);
        assert_eq!(float_factorial(171.0), f64::INFINITY);
        assert!(float_factorial(2.5).is_nan());
        // C(100, 50) = 100891344545564193334812497256
        assert!(rel(float_binom(100.0, 50.0), 1.008_913_445_455_642e29) < 1e-11);
        assert_eq!(float_binom(10.0, 3.0), 120.0); // 10*9*8/6
        assert_eq!(float_binom(3.0, 5.0), 0.0);
        assert_eq!(float_binom(1e6, 5e5), f64::INFINITY);
        // 40! is past the exact range (33!), so this goes through ln Γ.
        check(&[(
            "40!",
            "815915283247897734345611269596115894272000000000",
            Some(true),
        )]);
    }

    #[test]
    fn expr_values() {
        let v = |s: &str| latex_value(s);
        assert_eq!(v(r"\frac{1}{2}"), Some(0.5));
        assert_eq!(v("1.5e-3"), Some(0.0015));
        assert!((v(r"2\sqrt{2}").unwrap() - 2.828_427_124_746_19).abs() < 1e-12);
        assert!((v(r"\frac{\pi}{2}").unwrap() - std::f64::consts::FRAC_PI_2).abs() < 1e-15);
        assert_eq!(v(r"\log_2 8"), Some(3.0));
        assert_eq!(v("x+1"), None);
        assert_eq!(v(r"\infty"), None);
        assert_eq!(v(r"-\infty"), None);
        assert_eq!(v(r"\frac10"), None);
        assert_eq!(v("10^{400}"), None);
        assert_eq!(v(r"\sqrt{-4}"), None);
        assert_eq!(v("garbage)"), None);
    }

    #[test]
    fn expr_api_variables_and_eval() {
        let e = parse(r"x_1^2 + \alpha y").unwrap();
        assert_eq!(e.variables(), vec!["x_1", "alpha", "y"]);
        // 3^2 + 2*0.5 = 10
        assert_eq!(
            e.eval(&[("x_1", 3.0), ("alpha", 2.0), ("y", 0.5)]),
            Ok(10.0)
        );
        assert!(matches!(e.eval(&[("x_1", 3.0)]), Err(ExprError::Eval(_))));
    }

    #[test]
    fn expr_equations() {
        let cases: [(&str, &str, Option<bool>); 9] = [
            ("y = 2x+1", "2x - y + 1 = 0", Some(true)), // (y-2x-1) = -1 * (2x-y+1)
            ("y=2x+1", "y = 2x+2", Some(false)),
            ("x^2+y^2=1", "2x^2+2y^2=2", Some(true)),
            ("x+y=1", "x-y=1", Some(false)),
            ("x = 1", "1 = x", Some(true)),
            (r"y = \frac{1}{2}x", "2y = x", Some(true)),
            ("x+1", "x+1", None), // not equations
            ("x=1=1", "x=1", None),
            ("x = \\frac{1}{", "x=1", None),
        ];
        for (a, b, want) in cases {
            assert_eq!(equations_equal(a, b), want, "equations_equal({a:?}, {b:?})");
            assert_eq!(equations_equal(b, a), want, "equations_equal({b:?}, {a:?})");
        }
    }

    #[test]
    fn expr_parse_errors() {
        assert_eq!(parse(""), Err(ExprError::Empty));
        assert_eq!(parse("  "), Err(ExprError::Empty));
        assert_eq!(parse(r"\foo"), Err(ExprError::UnknownCommand("foo".into())));
        assert!(matches!(parse("(1+2"), Err(ExprError::UnexpectedEnd(_))));
        assert!(matches!(parse("1+"), Err(ExprError::UnexpectedEnd(_))));
        assert!(matches!(
            parse("1)"),
            Err(ExprError::UnexpectedToken { pos: 1, .. })
        ));
        assert!(matches!(
            parse("x=1"),
            Err(ExprError::UnexpectedChar { ch: '=', pos: 1 })
        ));
        assert!(matches!(
            parse("1,2"),
            Err(ExprError::UnexpectedChar { ch: ',', .. })
        ));
        assert!(matches!(
            parse(r"5\text{ cm}"),
            Err(ExprError::Unsupported(_))
        ));
        assert!(matches!(parse("x_"), Err(ExprError::UnexpectedEnd(_))));
        assert!(matches!(
            parse(r"\frac{1}"),
            Err(ExprError::UnexpectedEnd(_))
        ));
        assert!(matches!(parse(r"\sqrt"), Err(ExprError::UnexpectedEnd(_))));
        let long = "1".repeat(MAX_INPUT_CHARS + 1);
        assert_eq!(
            parse(&long),
            Err(ExprError::TooLong {
                len: MAX_INPUT_CHARS + 1,
                max: MAX_INPUT_CHARS
            })
        );
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(parse(&deep), Err(ExprError::TooDeep { max: MAX_DEPTH }));
        // Error messages name the problem.
        assert_eq!(
            parse(r"\foo").unwrap_err().to_string(),
            r"unknown command \foo"
        );
        // Accepted spellings that are easy to get wrong.
        for ok in [
            r"\mathrm{e}",
            r"\operatorname{sin} x",
            r"\left.\frac{x}{2}\right.",
            r"\left\{x\right\}",
            r"3\cdot 2^{2}",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        // About 100 bracket levels are accepted.
        let nested90 = format!("{}1{}", "(".repeat(90), ")".repeat(90));
        assert_eq!(latex_value(&nested90), Some(1.0));
    }

    /// Every entry point on `s` finishes within 50 ms and does not panic.
    fn assert_fast(s: &str) {
        let start = Instant::now();
        let _ = parse(s);
        let _ = latex_equal(s, s);
        let _ = latex_equal(s, "x+1");
        let _ = latex_equal_tol(s, "2", 1e-4);
        let _ = latex_value(s);
        let _ = equations_equal(s, "y=x");
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(50),
            "{took:?} on {:?}",
            &s[..s.len().min(80)]
        );
    }

    #[test]
    fn expr_adversarial_inputs_are_bounded() {
        let nines = "9".repeat(1500);
        let cases = [
            "(".repeat(10_000),
            "{".repeat(10_000),
            format!("{}x{}", "{".repeat(150), "}".repeat(150)),
            format!("{}1{}", "(".repeat(90), ")".repeat(90)),
            "-".repeat(1900) + "1",
            r"\sqrt{".repeat(300),
            r"\frac{1}{".repeat(200),
            "10^{10^{10^{10}}}".to_string(),
            "2^{99999999}".to_string(),
            "2^2^2^2^2^2^2^2^2^2^2^2".to_string(),
            "(10^{10})!".to_string(),
            "1000000!".to_string(),
            r"\binom{10^{30}}{10^{29}}".to_string(),
            r"\binom{1000000}{500000}".to_string(),
            "9".repeat(100_000),
            nines.clone(),
            format!("{nines}e999999999999999999999"),
            "x^{".to_string() + &"2^{".repeat(60) + &"}".repeat(61),
            "1+".repeat(999) + "1",
            "x*".repeat(999) + "x",
            r"\sin ".repeat(300) + "x",
            "|".repeat(1999),
            "a_{".repeat(100),
        ];
        for s in &cases {
            assert_fast(s);
        }
        assert_eq!(latex_value(&("1+".repeat(999) + "1")), Some(1000.0));
    }

    /// The deepest accepted and the first refused inputs parse and compare on a thread
    /// with a 1 MiB stack (half the default of spawned threads; unoptimised builds
    /// included, where frames are largest).
    #[test]
    fn expr_deepest_inputs_fit_in_1mib_stack() {
        let inputs: Vec<String> = vec![
            format!("{}x{}", "(".repeat(99), ")".repeat(99)),
            format!("{}x{}", "(".repeat(120), ")".repeat(120)),
            "-".repeat(1999) + "x",
            r"\frac{1}{".repeat(150) + "x" + &"}".repeat(150),
            r"\sqrt{".repeat(200) + "x" + &"}".repeat(200),
            "x^{".repeat(300) + "x" + &"}".repeat(300),
            "|".repeat(999) + "x" + &"|".repeat(999),
            r"\sin ".repeat(380) + "x",
        ];
        let worker = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                let mut accepted = 0;
                for s in &inputs {
                    if parse(s).is_ok() {
                        accepted += 1;
                    }
                    let _ = latex_equal(s, s);
                    let _ = latex_equal(s, "y");
                    let _ = equations_equal(&format!("{s}=1"), "x=1");
                }
                accepted
            })
            .expect("spawn test thread");
        // Only the 99-deep parentheses are within MAX_DEPTH; the rest are refused.
        assert_eq!(worker.join().expect("no stack overflow"), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn expr_never_panics_on_math_like_strings(
            s in r"[0-9xye.{}()\[\]^_+\-*/|!%=, ]{0,60}|(\\(frac|sqrt|sin|log|pi|infty|cdot|left|right|text)|[0-9x{}^_()|!.\-])*"
        ) {
            assert_fast(&s);
        }

        #[test]
        fn expr_never_panics_on_any_string(s in "\\PC{0,300}") {
            assert_fast(&s);
        }

        #[test]
        fn expr_equal_is_reflexive_on_numbers(n in -1_000_000i64..1_000_000, d in 1i64..1000) {
            let f = format!(r"\frac{{{n}}}{{{d}}}");
            prop_assert_eq!(latex_equal(&f, &f), Some(true));
            // n/d = (2n)/(2d)
            prop_assert_eq!(latex_equal(&f, &format!("{}/{}", 2 * n, 2 * d)), Some(true));
            prop_assert_eq!(latex_equal(&f, &format!("{}/{}", n + 1, d)), Some(false));
        }
    }
}
