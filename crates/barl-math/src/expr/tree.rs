//! The expression tree: functions, numeric literals, nodes, exact and `f64` evaluation.

use std::f64::consts::{E, PI};

use super::rational::Q;
use super::{ExprError, Result};

/// Elementary functions known to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
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
    pub(super) fn from_name(name: &str) -> Option<Func> {
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
    pub(super) fn inverse(self) -> Option<Func> {
        match self {
            Func::Sin => Some(Func::Asin),
            Func::Cos => Some(Func::Acos),
            Func::Tan => Some(Func::Atan),
            _ => None,
        }
    }

    pub(super) fn apply(self, x: f64) -> f64 {
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
pub(super) struct NumLit {
    pub(super) text: String,
    pub(super) value: f64,
    pub(super) exact: Option<Q>,
}

impl NumLit {
    /// `text` is `digits[.digits][e[+-]digits]`, as produced by the tokenizer.
    pub(super) fn new(text: &str) -> Result<NumLit> {
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
pub(super) fn exact_decimal(text: &str) -> Option<Q> {
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
pub(super) enum Node {
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

pub(super) fn bx(n: Node) -> Box<Node> {
    Box::new(n)
}

pub(super) fn int_node(n: i128) -> Node {
    Node::Num(Box::new(NumLit {
        text: n.to_string(),
        value: n as f64,
        exact: Some(Q::int(n)),
    }))
}

impl Node {
    pub(super) fn children(&self) -> Vec<&Node> {
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

    pub(super) fn collect_vars(&self, out: &mut Vec<String>) {
        if let Node::Var(v) = self {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        for c in self.children() {
            c.collect_vars(out);
        }
    }

    pub(super) fn has_inf(&self) -> bool {
        matches!(self, Node::Inf) || self.children().iter().any(|c| c.has_inf())
    }

    /// `+1` / `-1` for `\infty` / `-\infty` (possibly wrapped in signs), else `None`.
    pub(super) fn inf_sign(&self) -> Option<i8> {
        match self {
            Node::Inf => Some(1),
            Node::Neg(a) => a.inf_sign().map(|s| -s),
            Node::Sum(v) | Node::Prod(v) if v.len() == 1 => v[0].inf_sign(),
            _ => None,
        }
    }

    /// Exact rational value, if the expression is a rational constant within `i128`.
    pub(super) fn exact(&self) -> Option<Q> {
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
    pub(super) fn eval(&self, env: &[(String, f64)]) -> f64 {
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
pub(super) fn exact_binom(n: i128, k: i128) -> Option<Q> {
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

pub(super) fn float_binom(n: f64, k: f64) -> f64 {
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
pub(super) fn float_factorial(n: f64) -> f64 {
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
pub(super) fn ln_gamma(mut x: f64) -> f64 {
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
    pub(super) root: Node,
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
