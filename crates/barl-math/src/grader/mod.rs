//! Graders: is a predicted answer equal to the gold one?
//!
//! Two graders behind one trait, chosen by name ([`grader_by_name`]):
//!
//! - `reference`: the BARL reference (and Hendrycks MATH / verl) behaviour: both
//!   strings through [`hendrycks_strip`], then exact string equality (the raw
//!   strings are compared where the original normalisation raises).
//! - `standard` (default): the conventions of the Qwen2.5-Math evaluation toolkit
//!   and Math-Verify. Both answers go through [`normalize_answer`]; then, in order:
//!   1. equal strings (letters-only answers case-insensitively);
//!   2. one pair of brackets around a single element is dropped: `(5)`, `{5}`;
//!   3. structures element by element: matrices (same shape), tuples and intervals
//!      with the same brackets in order (`(1,2)` != `(2,1)`, `[0,1)` != `(0,1]`),
//!      sets `{...}`, unions `\cup` and bare comma lists (`1,-2`) as multisets;
//!      a parenthesised tuple also equals the same bare list and the column
//!      vector of the same elements;
//!   4. equations: two equations through [`expr::equations_equal`] (or equal left
//!      sides and equal right sides); an assignment `x=3` (a variable on the left)
//!      against a non-equation compares its right side;
//!   5. numbers (decimals, thousands groups, `\frac{a}{b}`, mixed numbers
//!      `1\frac{1}{4}`, `a\times10^{k}`) by one rule at every length (see
//!      [`number`]): a gold written as an integer must be matched exactly, any
//!      other gold within relative tolerance 1e-4 (`|p-g| <= 1e-4 max(|p|,|g|)`,
//!      as `math.isclose`); when either side carried a percent sign the gold `g`
//!      may also be matched as `g/100` or `100g` (so `10\%` equals `0.1` and `10`);
//!   6. symbolic equality through [`crate::expr`] (a number against an expression by
//!      the expression's value; otherwise [`expr::latex_equal_tol`]).
//!
//! Thousands commas: a comma is a thousands separator only when the whole answer
//! is one number written in groups of three (`1,000`, `10{,}000`, `1,000.5`);
//! otherwise commas separate elements, and inside brackets they always do, so
//! `(1,000)` is the pair (1, 0), not one thousand.
//!
//! Bounded: inputs over [`MAX_INPUT`] bytes are compared by rule 5 when both are
//! one plain number (digits, sign, decimal point, thousands separators; one linear
//! pass) and as trimmed strings otherwise,
//! recursion is limited to [`MAX_DEPTH`], structures to [`MAX_ELEMS`] elements,
//! and each verdict to [`MAX_EXPR_CALLS`] calls into the expression module on
//! strings of at most [`MAX_SYMBOLIC`] bytes. No input panics.

use std::time::{Duration, Instant};

use crate::expr;
use crate::extract::gold_answer;
use crate::normalize::{hendrycks_strip, normalize_answer};
pub use number::REL_TOL;
use number::{is_grouped_number, numbers_equal, parse_long_number, parse_number, Num};

mod number;
mod relation;

/// A grader's decision and a short reason (for logs and `barl grade` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub correct: bool,
    pub reason: &'static str,
}

/// Judges a predicted answer against a gold answer.
pub trait Grader: Send + Sync {
    /// The name it is selected by.
    fn name(&self) -> &'static str;
    /// Never panics; bounded time for every input.
    fn grade(&self, pred: &str, gold: &str) -> Verdict;
}

/// The names accepted by [`grader_by_name`]; the first is the default.
pub const GRADER_NAMES: [&str; 2] = ["standard", "reference"];

/// A grader name not in [`GRADER_NAMES`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown grader '{0}' (expected one of: {names})", names = GRADER_NAMES.join(", "))]
pub struct UnknownGrader(pub String);

/// The grader called `name` (`standard` or `reference`).
pub fn grader_by_name(name: &str) -> Result<Box<dyn Grader>, UnknownGrader> {
    match name {
        "standard" => Ok(Box::new(StandardGrader::default())),
        "reference" => Ok(Box::new(ReferenceGrader)),
        _ => Err(UnknownGrader(name.to_string())),
    }
}

/// Inputs longer than this (bytes, after trimming) are compared as strings only.
pub const MAX_INPUT: usize = 4096;
/// Longest string handed to the expression module.
pub const MAX_SYMBOLIC: usize = 512;
/// Deepest nesting of structures followed.
pub const MAX_DEPTH: usize = 8;
/// Most elements in one tuple, set, list or matrix.
pub const MAX_ELEMS: usize = 64;
/// Most calls into the expression module per verdict.
pub const MAX_EXPR_CALLS: usize = 32;
/// Most comparison steps per verdict.
const MAX_STEPS: usize = 4096;

/// Hendrycks `strip_string` and exact match.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceGrader;

impl Grader for ReferenceGrader {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn grade(&self, pred: &str, gold: &str) -> Verdict {
        match (hendrycks_strip(pred), hendrycks_strip(gold)) {
            (Some(p), Some(g)) => verdict(
                p == g,
                "normalized strings equal",
                "normalized strings differ",
            ),
            // The original's `is_equiv` compares the raw strings when stripping raises.
            _ => verdict(pred == gold, "raw strings equal", "raw strings differ"),
        }
    }
}

fn verdict(correct: bool, yes: &'static str, no: &'static str) -> Verdict {
    Verdict {
        correct,
        reason: if correct { yes } else { no },
    }
}

/// When the gold answer is itself extracted like a response before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoldExtract {
    /// When it is not a plain answer: it holds a `\boxed{}`, a math span (`$2/7$`)
    /// or a whole solution ([`crate::extract::gold_needs_extraction`]).
    #[default]
    Auto,
    /// Always (with the last-number fallback).
    Always,
    /// Never: the gold is compared as written.
    Never,
}

/// A `--gold-extract` value other than `auto`, `always` or `never`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected auto, always or never, got '{0}'")]
pub struct UnknownGoldExtract(pub String);

impl std::str::FromStr for GoldExtract {
    type Err = UnknownGoldExtract;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            _ => Err(UnknownGoldExtract(s.to_string())),
        }
    }
}

/// The reason of a verdict that ran out of time.
pub const TIMED_OUT: &str = "not equal, timed out";

/// Default of [`GraderOptions::time_limit`].
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(5);

/// Settings of the standard grader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraderOptions {
    /// Whether the gold answer is extracted first.
    pub gold: GoldExtract,
    /// Longest a verdict may take: the deadline is checked before every
    /// comparison step (each step is bounded by the size limits above), and a
    /// verdict past it is [`TIMED_OUT`], not equal.
    pub time_limit: Duration,
}

impl Default for GraderOptions {
    fn default() -> Self {
        Self {
            gold: GoldExtract::Auto,
            time_limit: DEFAULT_TIME_LIMIT,
        }
    }
}

/// Qwen2.5-Math toolkit / Math-Verify conventions; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardGrader {
    pub options: GraderOptions,
}

/// The grader called `name` with `options` (the reference grader compares the
/// gold as written, as the original does, and needs no time limit: it is one
/// string normalisation).
pub fn grader_with(name: &str, options: GraderOptions) -> Result<Box<dyn Grader>, UnknownGrader> {
    match name {
        "standard" => Ok(Box::new(StandardGrader { options })),
        _ => grader_by_name(name),
    }
}

impl Grader for StandardGrader {
    fn name(&self) -> &'static str {
        "standard"
    }

    fn grade(&self, pred: &str, gold: &str) -> Verdict {
        let deadline = Instant::now() + self.options.time_limit;
        let gold = match self.options.gold {
            GoldExtract::Never => gold.into(),
            mode => gold_answer(gold, mode == GoldExtract::Always),
        };
        let (pred, gold) = (pred.trim(), gold.trim());
        if pred == gold && !pred.is_empty() {
            // Identical answers are equal under every rule below; skip the work.
            return verdict(true, "identical strings", "");
        }
        if pred.len() > MAX_INPUT || gold.len() > MAX_INPUT {
            // Numbers follow the same rule at any length; other long text is
            // compared as strings.
            if let (Some(a), Some(b)) = (parse_long_number(pred), parse_long_number(gold)) {
                return verdict(
                    numbers_equal(&a, &b, false),
                    "long input: numbers equal",
                    "long input: numbers differ",
                );
            }
            return verdict(
                pred == gold,
                "long input: strings equal",
                "long input: strings differ",
            );
        }
        let p = normalize_answer(pred);
        let g = normalize_answer(gold);
        if p.text.is_empty() {
            return verdict(false, "", "empty prediction");
        }
        let mut ctx = Ctx {
            deadline,
            percent: p.percent || g.percent,
            expr_calls: MAX_EXPR_CALLS,
            steps: MAX_STEPS,
        };
        match equal(&p.text, &g.text, &mut ctx, 0) {
            Ok(reason) => verdict(true, reason, ""),
            // A deadline hit deep inside (say, while matching set elements) may
            // surface as another reason; past the deadline it is a timeout.
            Err(_) if Instant::now() >= deadline => verdict(false, "", TIMED_OUT),
            Err(reason) => verdict(false, "", reason),
        }
    }
}

/// Per-verdict state: the percent flag and the remaining budgets.
struct Ctx {
    deadline: Instant,
    percent: bool,
    expr_calls: usize,
    steps: usize,
}

impl Ctx {
    /// Takes one call to the expression module from the budget, if any is left.
    fn take_expr_call(&mut self) -> bool {
        if self.expr_calls == 0 {
            return false;
        }
        self.expr_calls -= 1;
        true
    }
}

/// Ok(reason) when equal, Err(reason) when not (or undecided).
type Decision = Result<&'static str, &'static str>;

fn equal(p: &str, g: &str, ctx: &mut Ctx, depth: usize) -> Decision {
    if ctx.steps == 0 || depth > MAX_DEPTH {
        return Err("comparison budget exhausted");
    }
    if Instant::now() >= ctx.deadline {
        return Err(TIMED_OUT);
    }
    ctx.steps -= 1;
    let (p, g) = (p.trim(), g.trim());
    if p == g {
        return Ok("strings equal");
    }
    if p.is_empty() || g.is_empty() {
        return Err("one side empty");
    }
    if is_words(p) && is_words(g) && p.eq_ignore_ascii_case(g) {
        return Ok("words equal ignoring case");
    }
    // `{x|2\le x<5}` states its condition.
    if let Some(c) = set_builder(p) {
        return equal(c, g, ctx, depth + 1);
    }
    if let Some(c) = set_builder(g) {
        return equal(p, c, ctx, depth + 1);
    }
    // `\pm2` against a list is the two values `2,-2` (the cheap test first).
    if let Some(both) = expand_pm(p).filter(|_| shape(g).is_some()) {
        return equal(&both, g, ctx, depth + 1);
    }
    if let Some(both) = expand_pm(g).filter(|_| shape(p).is_some()) {
        return equal(p, &both, ctx, depth + 1);
    }
    let (pu, gu) = (unwrap_single(p), unwrap_single(g));
    if pu.len() != p.len() || gu.len() != g.len() {
        return equal(pu, gu, ctx, depth + 1);
    }

    if let Some(d) = relations(p, g, ctx, depth) {
        return d;
    }
    // Only a predicted decimal comma: a gold `1,5` is the list of 1 and 5.
    if let Some(d) = european_decimal(p, g) {
        return d;
    }

    // `(p,q)=(5,3)` against `(5,3)`: one equation (not a list of them) states its
    // last side.
    let lone_equation = |s: &str| split_top(s, ',').len() == 1 && split_equation(s).is_some();
    if lone_equation(p) && split_equation(g).is_none() {
        return equal(last_side(p), g, ctx, depth + 1);
    }
    if lone_equation(g) && split_equation(p).is_none() {
        return equal(p, last_side(g), ctx, depth + 1);
    }

    match (shape(p), shape(g)) {
        (Some(a), Some(b)) => return compare_shapes(&a, &b, ctx, depth),
        // `$\frac{7}{4}$ or $1.75$`: one answer in several forms, each equal.
        (Some(Shape::List(items)), None) if items.len() <= 4 => {
            return in_order(
                &items.iter().map(|x| (*x, g)).collect::<Vec<_>>(),
                ctx,
                depth,
            )
            .map(|_| "every listed form equals the gold")
            .map_err(|_| "a list against a single value");
        }
        (Some(_), None) | (None, Some(_)) => return Err("structure against a single value"),
        (None, None) => {}
    }

    match (split_equation(p), split_equation(g)) {
        (Some((_, pr)), Some((_, gr))) if pr.contains('=') || gr.contains('=') => {
            // A chain `w = 2 + 2 = 4` states its last side.
            return equal(last_side(p), last_side(g), ctx, depth + 1);
        }
        (Some((pl, pr)), Some((gl, gr))) => {
            if p.len() <= MAX_SYMBOLIC && g.len() <= MAX_SYMBOLIC && ctx.take_expr_call() {
                if let Some(same) = expr::equations_equal(p, g) {
                    return if same {
                        Ok("equations equivalent")
                    } else {
                        Err("equations differ")
                    };
                }
            }
            if pl.trim() == gl.trim() {
                return equal(pr, gr, ctx, depth + 1);
            }
            if pl.trim() == gr.trim() && pr.trim() == gl.trim() {
                return Ok("equation sides swapped");
            }
            return Err("equations differ");
        }
        // An equation against a value states its last side: `x=3`, `3 \cdot 4 = 12`,
        // `|PQ|=3`, `(p,q)=(5,3)`.
        (Some(_), None) => return equal(last_side(p), g, ctx, depth + 1),
        (None, Some(_)) => return equal(p, last_side(g), ctx, depth + 1),
        (None, None) => {}
    }

    let (pn, gn) = (parse_number(p), parse_number(g));
    if let (Some(a), Some(b)) = (&pn, &gn) {
        return if numbers_equal(a, b, ctx.percent) {
            Ok("numbers equal")
        } else {
            Err("numbers differ")
        };
    }

    if p.len() > MAX_SYMBOLIC || g.len() > MAX_SYMBOLIC {
        return Err("too long for symbolic comparison");
    }
    // A number against an expression: compare the expression's value.
    if let Some(b) = &gn {
        if !ctx.take_expr_call() {
            return Err("comparison budget exhausted");
        }
        if let Some(v) = expr::latex_value(p) {
            return if numbers_equal(&Num::float(v), b, ctx.percent) {
                Ok("value equals the number")
            } else {
                Err("value differs from the number")
            };
        }
    }
    if let Some(a) = &pn {
        if !ctx.take_expr_call() {
            return Err("comparison budget exhausted");
        }
        if let Some(v) = expr::latex_value(g) {
            return if numbers_equal(a, &Num::float(v), ctx.percent) {
                Ok("number equals the value")
            } else {
                Err("number differs from the value")
            };
        }
    }
    if !ctx.take_expr_call() {
        return Err("comparison budget exhausted");
    }
    match expr::latex_equal_tol(p, g, REL_TOL) {
        Some(true) => Ok("symbolically equal"),
        Some(false) => Err("symbolically different"),
        None => Err("not equal (undecided)"),
    }
}

/// Inequalities: two relations by [`relation::same_by_sides`], then
/// [`relation::same_by_difference`], then as intervals; a relation of one variable
/// against an interval or union by the interval it describes. `None` when neither
/// side is a relation.
fn relations(p: &str, g: &str, ctx: &mut Ctx, depth: usize) -> Option<Decision> {
    let var = is_variable;
    // `x<-2, x>3` (from `$x<-2$ or $x>3$`) is the union of its intervals.
    if let Some(u) = union_of_relations(p, var) {
        return Some(equal(&u, g, ctx, depth + 1));
    }
    if let Some(u) = union_of_relations(g, var) {
        return Some(equal(p, &u, ctx, depth + 1));
    }
    let (rp, rg) = (relation::relation(p), relation::relation(g));
    if rp.is_none() && rg.is_none() {
        return None;
    }
    Some(match (&rp, &rg) {
        (Some(a), Some(b)) => {
            if relation::same_by_sides(a, b, |x, y| equal(x, y, ctx, depth + 1).is_ok())
                == Some(true)
            {
                return Some(Ok("relations equal"));
            }
            let symbolic = p.len() <= MAX_SYMBOLIC && g.len() <= MAX_SYMBOLIC;
            if symbolic && a.ops.len() == 1 && b.ops.len() == 1 && ctx.take_expr_call() {
                if let Some(same) = relation::same_by_difference(a, b) {
                    return Some(if same {
                        Ok("relations equivalent")
                    } else {
                        Err("relations differ")
                    });
                }
            }
            match (a.as_interval(var), b.as_interval(var)) {
                (Some(x), Some(y)) => {
                    equal(&x, &y, ctx, depth + 1).map(|_| "relations describe the same interval")
                }
                _ => Err("relations differ"),
            }
        }
        (Some(a), None) => match a.as_interval(var) {
            Some(x) if shape(g).is_some() => equal(&x, g, ctx, depth + 1),
            _ => Err("relation against a value"),
        },
        (None, Some(b)) => match b.as_interval(var) {
            Some(y) if shape(p).is_some() => equal(p, &y, ctx, depth + 1),
            _ => Err("value against a relation"),
        },
        (None, None) => return None,
    })
}

/// A list of at least two relations that each describe an interval, as the union
/// of those intervals.
fn union_of_relations(s: &str, var: impl Fn(&str) -> bool + Copy) -> Option<String> {
    let items = split_top(s, ',');
    if items.len() < 2 || items.len() > MAX_ELEMS {
        return None;
    }
    let parts: Option<Vec<String>> = items
        .iter()
        .map(|x| relation::relation(x)?.as_interval(var))
        .collect();
    Some(parts?.join("\\cup"))
}

/// The condition of a set written by a property, `{x|cond}`, `{x\mid cond}` or
/// `{x:cond}`, when the condition is a relation.
fn set_builder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let (var, cond) = ["\\mid", "|", ":"]
        .iter()
        .find_map(|sep| inner.split_once(sep))?;
    (is_variable(var) && relation::relation(cond).is_some()).then_some(cond)
}

/// `a\pm b` as the list `a+b,a-b` (`\pm b` as `b,-b`); one `\pm` only.
fn expand_pm(s: &str) -> Option<String> {
    let (a, b) = s.split_once("\\pm")?;
    if b.contains("\\pm") || b.is_empty() || s.contains(',') {
        return None;
    }
    Some(if a.is_empty() {
        format!("{b},-{b}")
    } else {
        format!("{a}+{b},{a}-{b}")
    })
}

/// A decimal comma: `2000,75` (two integers, the second not a group of three)
/// against a gold number with a decimal point reads as `2000.75`.
fn european_decimal(p: &str, g: &str) -> Option<Decision> {
    let (int, frac) = p.split_once(',')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int.strip_prefix('-').unwrap_or(int));
    if !int_ok || !digits(frac) || frac.len() == 3 || !g.contains('.') {
        return None;
    }
    let a = parse_number(&format!("{int}.{frac}"))?;
    let b = parse_number(g)?;
    Some(if numbers_equal(&a, &b, false) {
        Ok("decimal comma: numbers equal")
    } else {
        Err("decimal comma: numbers differ")
    })
}

/// Letters and spaces only (`Evelyn`, `even`, `A`).
fn is_words(s: &str) -> bool {
    s.chars().all(|c| c.is_alphabetic() || c == ' ')
}

/// A variable name on the left of an assignment: `x`, `k`, `x_1`, `a_{n}`,
/// `\theta`, `f(x)`.
fn is_variable(s: &str) -> bool {
    let s = s.trim();
    let first_ok = s.starts_with(|c: char| c.is_alphabetic() || c == '\\');
    first_ok
        && s.len() <= 16
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '\\' | '_' | '{' | '}' | '(' | ')' | '\''))
}

/// `(x)`, `[x]`, `{x}` with one element inside -> `x`.
fn unwrap_single(s: &str) -> &str {
    let Some(inner) = whole_bracket(s) else {
        return s;
    };
    if split_top(inner, ',').len() == 1 {
        inner
    } else {
        s
    }
}

/// The inside of `s` when `s` is one bracketed group: its first character opens a
/// bracket (`(`, `[`, `{`) closed (by any of `)`, `]`, `}`) at its last character.
fn whole_bracket(s: &str) -> Option<&str> {
    let first = s.chars().next()?;
    let last = s.chars().next_back()?;
    if !matches!(first, '(' | '[' | '{') || !matches!(last, ')' | ']' | '}') || s.len() < 2 {
        return None;
    }
    let mut depth = 0i64;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return (i == s.len() - 1).then(|| &s[1..s.len() - 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at `sep` outside all brackets; one piece when there is none or the
/// brackets do not balance.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i64;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
        if depth < 0 {
            return vec![s];
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits at a string separator outside braces/brackets (for `\\` and `\cup`).
fn split_top_str<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut depth = 0i64;
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if depth == 0 && s[i..].starts_with(sep) {
            parts.push(&s[start..i]);
            i += sep.len();
            start = i;
            continue;
        }
        // Step over a whole character.
        i += s[i..].chars().next().map_or(1, char::len_utf8);
    }
    parts.push(&s[start..]);
    parts
}

/// A structured answer.
#[derive(Debug)]
enum Shape<'a> {
    /// Rows of cells.
    Matrix(Vec<Vec<&'a str>>),
    /// `(a,b)`, `[a,b)`, `{a,b}`: brackets and at least two elements.
    Seq {
        open: char,
        close: char,
        items: Vec<&'a str>,
    },
    /// `A \cup B`.
    Union(Vec<&'a str>),
    /// `a,b` without brackets.
    List(Vec<&'a str>),
}

fn shape(s: &str) -> Option<Shape<'_>> {
    const BEGIN: &str = "\\begin{pmatrix}";
    const END: &str = "\\end{pmatrix}";
    if let Some(inner) = s.strip_prefix(BEGIN).and_then(|r| r.strip_suffix(END)) {
        let rows: Vec<Vec<&str>> = split_top_str(inner, "\\\\")
            .into_iter()
            .filter(|r| !r.trim().is_empty())
            .map(|r| split_top(r, '&'))
            .collect();
        return Some(Shape::Matrix(rows));
    }
    let union = split_top_str(s, "\\cup");
    if union.len() > 1 {
        return Some(Shape::Union(union));
    }
    if let Some(inner) = whole_bracket(s) {
        let items = split_top(inner, ',');
        if items.len() > 1 {
            let open = s.chars().next()?;
            let close = s.chars().next_back()?;
            return Some(Shape::Seq { open, close, items });
        }
        return None;
    }
    let items = split_top(s, ',');
    (items.len() > 1 && !is_grouped_number(s)).then_some(Shape::List(items))
}

fn compare_shapes(a: &Shape, b: &Shape, ctx: &mut Ctx, depth: usize) -> Decision {
    use Shape::*;
    match (a, b) {
        (Matrix(ra), Matrix(rb)) => {
            let same_shape =
                ra.len() == rb.len() && ra.iter().zip(rb).all(|(x, y)| x.len() == y.len());
            if !same_shape {
                return Err("matrix shapes differ");
            }
            let pairs: Vec<(&str, &str)> = ra
                .iter()
                .flatten()
                .copied()
                .zip(rb.iter().flatten().copied())
                .collect();
            in_order(&pairs, ctx, depth).map(|_| "matrices equal")
        }
        (
            Seq {
                open: o1,
                close: c1,
                items: x,
            },
            Seq {
                open: o2,
                close: c2,
                items: y,
            },
        ) => {
            if (*o1, *c1, *o2, *c2) == ('{', '}', '{', '}') {
                return unordered(x, y, ctx, depth).map(|_| "sets equal");
            }
            if (o1, c1) != (o2, c2) {
                return Err("brackets differ");
            }
            zip_in_order(x, y, ctx, depth).map(|_| "tuples or intervals equal")
        }
        (
            Seq {
                open: '{',
                close: '}',
                items: x,
            },
            List(y),
        )
        | (
            List(x),
            Seq {
                open: '{',
                close: '}',
                items: y,
            },
        )
        | (List(x), List(y))
        | (Union(x), Union(y)) => unordered(x, y, ctx, depth).map(|_| "same elements"),
        (
            Seq {
                open: '(',
                close: ')',
                items: x,
            },
            List(y),
        )
        | (
            List(x),
            Seq {
                open: '(',
                close: ')',
                items: y,
            },
        ) => zip_in_order(x, y, ctx, depth).map(|_| "tuples equal"),
        // A column vector against a tuple (the toolkit's `str_to_pmatrix`).
        (
            Matrix(rows),
            Seq {
                open: '(',
                close: ')',
                items,
            },
        )
        | (
            Seq {
                open: '(',
                close: ')',
                items,
            },
            Matrix(rows),
        ) if rows.iter().all(|r| r.len() == 1) => {
            let column: Vec<&str> = rows.iter().map(|r| r[0]).collect();
            zip_in_order(&column, items, ctx, depth).map(|_| "vector equals tuple")
        }
        _ => Err("different kinds of structure"),
    }
}

fn zip_in_order(x: &[&str], y: &[&str], ctx: &mut Ctx, depth: usize) -> Decision {
    if x.len() != y.len() {
        return Err("different numbers of elements");
    }
    let pairs: Vec<(&str, &str)> = x.iter().copied().zip(y.iter().copied()).collect();
    in_order(&pairs, ctx, depth)
}

fn in_order(pairs: &[(&str, &str)], ctx: &mut Ctx, depth: usize) -> Decision {
    if pairs.len() > MAX_ELEMS {
        return Err("too many elements");
    }
    for (p, g) in pairs {
        equal(p, g, ctx, depth + 1)?;
    }
    Ok("elements equal")
}

/// Multiset equality: each predicted element matched greedily to an unused gold one.
fn unordered(x: &[&str], y: &[&str], ctx: &mut Ctx, depth: usize) -> Decision {
    if x.len() != y.len() {
        return Err("different numbers of elements");
    }
    if x.len() > MAX_ELEMS {
        return Err("too many elements");
    }
    let mut used = vec![false; y.len()];
    for p in x {
        let found = (0..y.len()).find(|&j| !used[j] && equal(p, y[j], ctx, depth + 1).is_ok());
        match found {
            Some(j) => used[j] = true,
            None => return Err("an element has no equal"),
        }
    }
    Ok("same elements")
}

/// The part after the last `=` outside brackets.
fn last_side(s: &str) -> &str {
    split_top(s, '=').last().copied().unwrap_or(s)
}

/// `lhs = rhs` at the first `=` outside brackets (not part of `<=`, `>=`, `!=`);
/// `rhs` keeps any further `=` of a chain.
fn split_equation(s: &str) -> Option<(&str, &str)> {
    let parts = split_top(s, '=');
    if parts.len() < 2 || parts.iter().any(|x| x.trim().is_empty()) {
        return None;
    }
    let l = parts[0];
    let r = &s[l.len() + 1..];
    let not_equal = l.ends_with('!') && !relation::factorial_before(&l[..l.len() - 1]);
    if l.ends_with(['<', '>']) || not_equal || l.trim().is_empty() || r.trim().is_empty() {
        return None;
    }
    Some((l, r))
}

#[cfg(test)]
mod tests;
