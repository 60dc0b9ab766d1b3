//! Equivalence: exact where possible, else numeric at seeded sample points.

use super::parser::parse;
use super::tree::Node;
use super::{
    CONST_ABS_FLOOR, CONST_STRICT_REL_TOL, DEFAULT_REL_TOL, MIN_VALID_POINTS, N_POINTS,
    POINT_ABS_FLOOR, SAMPLE_SEED,
};

/// SplitMix64: a tiny deterministic generator, so verdicts never depend on global state.
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    pub(super) fn next_f64(&mut self) -> f64 {
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
pub(super) fn sample_points(vars: &[String]) -> Vec<Vec<(String, f64)>> {
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

pub(super) fn close(x: f64, y: f64, rel_tol: f64, abs_floor: f64) -> bool {
    let diff = (x - y).abs();
    diff <= rel_tol * x.abs().max(y.abs()) || diff <= abs_floor
}

pub(super) fn union_vars(a: &Node, b: &Node) -> Vec<String> {
    let mut vars = Vec::new();
    a.collect_vars(&mut vars);
    b.collect_vars(&mut vars);
    vars
}

/// `tol == None`: rational constants are compared exactly; `Some(t)`: a relative
/// tolerance `t` applies to every numeric comparison.
pub(super) fn compare(a: &Node, b: &Node, tol: Option<f64>) -> Option<bool> {
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
pub(super) fn equation_sides(s: &str) -> Option<(Node, Node)> {
    let (lhs, rhs) = s.split_once('=')?;
    if rhs.contains('=') {
        return None;
    }
    Some((parse(lhs).ok()?.root, parse(rhs).ok()?.root))
}

/// Equations `lhs = rhs` compared as equations: equal iff `lhs - rhs` of one is a
/// nonzero constant multiple of the other's (see [`difference_ratio`]), so
/// `y = 2x + 1` equals `2x - y + 1 = 0`.
pub fn equations_equal(a: &str, b: &str) -> Option<bool> {
    let (la, ra) = equation_sides(a)?;
    let (lb, rb) = equation_sides(b)?;
    difference_ratio(&la, &ra, &lb, &rb).map(|r| r.is_some())
}

/// Relations `a_lhs OP a_rhs` and `b_lhs OP b_rhs` (sides as LaTeX strings):
/// the constant `c` with `a_lhs - a_rhs = c (b_lhs - b_rhs)`, so that a caller can
/// tell `-y > -2` (c = -1 against `y - 2 < 0`: the relation flips) from `y > 2`.
/// `Some(None)` when the differences are not proportional, `None` when undecided.
pub fn relation_ratio(a_lhs: &str, a_rhs: &str, b_lhs: &str, b_rhs: &str) -> Option<Option<f64>> {
    let side = |s: &str| parse(s).ok().map(|e| e.root);
    difference_ratio(&side(a_lhs)?, &side(a_rhs)?, &side(b_lhs)?, &side(b_rhs)?)
}

/// The constant `c` with `la - ra = c (lb - rb)`, decided at the seeded sample points:
/// a difference that vanishes at a point, relative to `max(1, |lhs|, |rhs|)`, must
/// vanish in the other too; elsewhere the ratios must agree within
/// [`DEFAULT_REL_TOL`]. `Some(Some(c))`: proportional (`c` is 1 when both vanish
/// everywhere); `Some(None)`: not; `None`: undecided (infinities, too few finite
/// points, or a refutation that the imaginary unit could explain).
fn difference_ratio(la: &Node, ra: &Node, lb: &Node, rb: &Node) -> Option<Option<f64>> {
    if la.has_inf() || ra.has_inf() || lb.has_inf() || rb.has_inf() {
        return None;
    }
    let mut vars = union_vars(la, ra);
    for v in union_vars(lb, rb) {
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
    Some(verdict.then(|| ratio.unwrap_or(1.0)))
}
