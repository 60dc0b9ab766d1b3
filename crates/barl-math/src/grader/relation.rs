//! Inequalities and chains of them (`y \ge 4`, `-3 \le x \le 8`, `0 < g(x) < 2`),
//! and their reading as intervals.
//!
//! Two single relations are equal when they state the same thing: the same
//! operator with equal sides, the mirrored operator with swapped sides
//! (`4 \ge y` = `y \le 4`), or, through [`expr::relation_ratio`], differences
//! `lhs - rhs` that are proportional with a positive factor for the same operator
//! and a negative one for the mirrored operator (`-y > -2` = `y < 2`). A relation of
//! one variable against a bound, or a chain `a < x < b`, also reads as an interval,
//! so it equals the interval (or union) it describes: `x \le 3` = `(-\infty,3]`.

use crate::expr;

/// A relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
}

impl Op {
    /// The operator with its sides swapped: `a < b` is `b > a`.
    fn mirrored(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::Ne => Op::Ne,
        }
    }
}

/// `sides[0] ops[0] sides[1] ops[1] sides[2] ...`.
#[derive(Debug)]
pub(super) struct Relation<'a> {
    pub sides: Vec<&'a str>,
    pub ops: Vec<Op>,
}

/// Operator spellings after normalisation; commands must not be followed by a letter.
const OPS: [(&str, Op); 10] = [
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("!=", Op::Ne),
    ("\\le", Op::Le),
    ("\\ge", Op::Ge),
    ("\\ne", Op::Ne),
    ("\\lt", Op::Lt),
    ("\\gt", Op::Gt),
    ("<", Op::Lt),
    (">", Op::Gt),
];

/// `s` split at relation operators outside brackets; `None` without one, with an
/// empty side, or with an `=` outside brackets (an equation, handled elsewhere).
pub(super) fn relation(s: &str) -> Option<Relation<'_>> {
    let b = s.as_bytes();
    let (mut sides, mut ops) = (Vec::new(), Vec::new());
    let (mut depth, mut start, mut i) = (0i32, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'=' if depth == 0 => return None,
            _ => {}
        }
        if depth == 0 {
            let found = OPS.iter().find(|(t, _)| {
                b[i..].starts_with(t.as_bytes())
                    && !(t.starts_with('\\')
                        && b.get(i + t.len()).is_some_and(u8::is_ascii_alphabetic))
            });
            // `4!=24` is a factorial and an equation, not `4 \ne 24`.
            let found = found.filter(|(t, _)| !(*t == "!=" && factorial_before(&s[..i])));
            if let Some((t, op)) = found {
                sides.push(s[start..i].trim());
                ops.push(*op);
                i += t.len();
                start = i;
                continue;
            }
        }
        i += 1;
    }
    if ops.is_empty() {
        return None;
    }
    sides.push(s[start..].trim());
    (sides.iter().all(|x| !x.is_empty())).then_some(Relation { sides, ops })
}

/// Does `before` (the text before a `!`) end in a factorial's argument: a digit,
/// `)` or `}`?
pub(super) fn factorial_before(before: &str) -> bool {
    before.ends_with(|c: char| c.is_ascii_digit() || c == ')' || c == '}')
}

impl<'a> Relation<'a> {
    /// `(lhs, op, rhs)` of a relation with one operator.
    fn single(&self) -> Option<(&'a str, Op, &'a str)> {
        match (self.sides.as_slice(), self.ops.as_slice()) {
            ([l, r], [op]) => Some((l, *op, r)),
            _ => None,
        }
    }

    /// The same relation read left to right with `<`/`<=` where it can be (`8 \ge x
    /// \ge -3` -> `-3 \le x \le 8`).
    fn ascending(&self) -> (Vec<&str>, Vec<Op>) {
        if self.ops.iter().all(|o| matches!(o, Op::Gt | Op::Ge)) {
            let sides = self.sides.iter().rev().copied().collect();
            let ops = self.ops.iter().rev().map(|o| o.mirrored()).collect();
            (sides, ops)
        } else {
            (self.sides.clone(), self.ops.clone())
        }
    }

    /// The interval (or union) of the values of the one variable this relation
    /// bounds: `x > 2` -> `(2,\infty)`, `-3 \le x < 8` -> `[-3,8)`, `x \ne 1` ->
    /// `(-\infty,1)\cup(1,\infty)`. `None` for other relations.
    pub(super) fn as_interval(&self, is_variable: impl Fn(&str) -> bool) -> Option<String> {
        let (sides, ops) = self.ascending();
        let closed = |o: Op| matches!(o, Op::Le | Op::Ge);
        match (sides.as_slice(), ops.as_slice()) {
            ([a, x, b], [o1, o2])
                if is_variable(x) && ops.iter().all(|o| matches!(o, Op::Lt | Op::Le)) =>
            {
                let l = if closed(*o1) { '[' } else { '(' };
                let r = if closed(*o2) { ']' } else { ')' };
                Some(format!("{l}{a},{b}{r}"))
            }
            ([l, r], [op]) => {
                let (bound, op) = if is_variable(l) && !is_variable(r) {
                    (r, *op)
                } else if is_variable(r) && !is_variable(l) {
                    (l, op.mirrored())
                } else {
                    return None;
                };
                Some(match op {
                    Op::Lt => format!("(-\\infty,{bound})"),
                    Op::Le => format!("(-\\infty,{bound}]"),
                    Op::Gt => format!("({bound},\\infty)"),
                    Op::Ge => format!("[{bound},\\infty)"),
                    Op::Ne => format!("(-\\infty,{bound})\\cup({bound},\\infty)"),
                })
            }
            _ => None,
        }
    }
}

/// How two single relations `pl pop pr` and `gl gop gr` compare, by their sides
/// alone: `Some(true)` when the same operator has sides that `same` finds equal or
/// the mirrored operator has them swapped, `None` when that does not settle it.
pub(super) fn same_by_sides(
    p: &Relation,
    g: &Relation,
    mut same: impl FnMut(&str, &str) -> bool,
) -> Option<bool> {
    let ((pl, pop, pr), (gl, gop, gr)) = (p.single()?, g.single()?);
    if pop == gop && same(pl, gl) && same(pr, gr) {
        return Some(true);
    }
    if pop == gop.mirrored() && same(pl, gr) && same(pr, gl) {
        return Some(true);
    }
    None
}

/// Two single relations by their differences (`-y > -2` = `y < 2`); `None` when
/// the expression module cannot decide.
pub(super) fn same_by_difference(p: &Relation, g: &Relation) -> Option<bool> {
    let ((pl, pop, pr), (gl, gop, gr)) = (p.single()?, g.single()?);
    let c = expr::relation_ratio(pl, pr, gl, gr)?;
    Some(match c {
        None => false,
        Some(c) if pop == Op::Ne || gop == Op::Ne => pop == gop && c != 0.0,
        Some(c) if c > 0.0 => pop == gop,
        Some(c) => pop == gop.mirrored() && c < 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_operators_outside_brackets() {
        let r = relation("-3\\le x<8").unwrap();
        assert_eq!(r.sides, ["-3", "x", "8"]);
        assert_eq!(r.ops, [Op::Le, Op::Lt]);
        assert!(relation("\\{x|x>2\\}").is_none());
        assert!(relation("{x|x>2}").is_none());
        assert!(relation("x=2").is_none());
        assert!(relation("\\left(1\\right)").is_none());
        // `\leftarrow` and `\neg` are not operators.
        assert!(relation("a\\leftarrow b").is_none());
        assert!(relation("\\neg p").is_none());
    }

    #[test]
    fn intervals_of_relations() {
        let var = |s: &str| s.len() == 1 && s.chars().all(|c| c.is_ascii_alphabetic());
        let iv = |s: &str| relation(s).and_then(|r| r.as_interval(var));
        assert_eq!(iv("x>2").as_deref(), Some("(2,\\infty)"));
        assert_eq!(iv("3\\ge x").as_deref(), Some("(-\\infty,3]"));
        assert_eq!(iv("-3\\le x<8").as_deref(), Some("[-3,8)"));
        assert_eq!(iv("8>x\\ge-3").as_deref(), Some("[-3,8)"));
        assert_eq!(
            iv("x\\ne1").as_deref(),
            Some("(-\\infty,1)\\cup(1,\\infty)")
        );
        assert_eq!(iv("x<y"), None);
    }
}
