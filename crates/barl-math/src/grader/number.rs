//! Numbers as the grader reads them, and the one rule for comparing them.
//!
//! **The rule**, the same at every input length: the gold's form sets the precision.
//! - A gold written as an integer (`12`, `-3`, `1,000`, `10{,}000`, any number of
//!   digits) is matched only by the same value exactly (`10000`, `10000.0`, `1e4`;
//!   a fraction or an expression's value up to floating-point rounding, 1e-9).
//!   So `9999` and `9999\frac{6}{7}` differ from `10000`, and a 23-digit gold
//!   differs from the same number plus one.
//! - Any other gold (a decimal point, a fraction, scientific notation) is matched
//!   within relative tolerance [`REL_TOL`]: `|p - g| <= 1e-4 max(|p|, |g|)`, as the
//!   Qwen2.5-Math toolkit's `math.isclose`; so `1` equals the gold `1.00001`.
//!
//! Why integer golds are exact: on the toolkit's 800 stored verdicts a model's
//! `9999\frac{6}{7}` against the gold `10{,}000` is a wrong answer (the toolkit
//! says so), which a 1e-4 tolerance would credit (1.4e-5 relative); counts and
//! integer answers are exact by nature, and Math-Verify, which compares numbers
//! after rounding to 6 decimals, does not credit `1.00001` for `1` either.
//!
//! Decimals are kept as exact digit strings ([`Decimal`]), so the rule holds at any
//! length: a 100k-digit answer with thousands separators equals the same digits
//! without, and `1e400` is a number rather than infinity. Fractions and expression
//! values are `f64`.

/// Relative tolerance for golds not written as integers.
pub const REL_TOL: f64 = 1e-4;

/// Largest power of ten accepted in scientific notation (`2e1000000`).
const MAX_EXPONENT: i64 = 1_000_000;

/// An exact decimal `(-1)^neg * digits * 10^exp`; `digits` has no leading or
/// trailing zeros (empty for zero, which is never negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decimal {
    neg: bool,
    digits: String,
    exp: i64,
}

impl Decimal {
    /// From the digits before and after the decimal point (ASCII digits only).
    fn new(neg: bool, int_digits: &str, frac_digits: &str) -> Self {
        let all = format!("{int_digits}{frac_digits}");
        let lead = all.len() - all.trim_start_matches('0').len();
        let body = all[lead..].trim_end_matches('0');
        let trailing = all.len() - lead - body.len();
        Decimal {
            neg: neg && !body.is_empty(),
            digits: body.to_string(),
            exp: trailing as i64 - frac_digits.len() as i64,
        }
    }

    fn negated(mut self) -> Self {
        self.neg = !self.neg && !self.digits.is_empty();
        self
    }

    /// `self * 10^k`.
    fn shifted(mut self, k: i64) -> Self {
        if !self.digits.is_empty() {
            self.exp += k;
        }
        self
    }

    /// `m` with `10^(m-1) <= |x| < 10^m`.
    fn magnitude(&self) -> i64 {
        self.digits.len() as i64 + self.exp
    }

    /// `|x| / 10^m` from the leading 20 digits (relative error below 1e-19).
    fn scaled_abs(&self, m: i64) -> f64 {
        let lead = &self.digits[..self.digits.len().min(20)];
        let mantissa: f64 = format!("0.{lead}").parse().unwrap_or(0.0);
        let shift = (self.magnitude() - m).clamp(-400, 400) as i32;
        mantissa * 10f64.powi(shift)
    }

    fn to_f64(&self) -> f64 {
        let v = if self.digits.is_empty() {
            0.0
        } else {
            let m = self.magnitude().clamp(-400, 400);
            self.scaled_abs(m) * 10f64.powi(m as i32)
        };
        if self.neg {
            -v
        } else {
            v
        }
    }
}

/// `|a - b| <= rel_tol * max(|a|, |b|)`, exactly on the digits' scale.
fn decimals_close(a: &Decimal, b: &Decimal, rel_tol: f64) -> bool {
    if a == b {
        return true;
    }
    if a.digits.is_empty() || b.digits.is_empty() || a.neg != b.neg {
        // Against zero or across signs the difference is at least the larger size.
        return false;
    }
    let m = a.magnitude().max(b.magnitude());
    let (x, y) = (a.scaled_abs(m), b.scaled_abs(m));
    (x - y).abs() <= rel_tol * x.max(y)
}

/// A parsed number: its value, its exact digits when it is a decimal, and whether it
/// was written as an integer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Num {
    pub(super) value: f64,
    dec: Option<Decimal>,
    integer: bool,
}

impl Num {
    pub(super) fn float(value: f64) -> Self {
        Num {
            value,
            dec: None,
            integer: false,
        }
    }

    fn decimal(dec: Decimal, integer: bool) -> Self {
        Num {
            value: dec.to_f64(),
            dec: Some(dec),
            integer,
        }
    }

    fn negated(self) -> Self {
        Num {
            value: -self.value,
            dec: self.dec.map(Decimal::negated),
            integer: self.integer,
        }
    }

    /// `self * 10^k` (for percent forms), as exact as `self`.
    fn shifted(&self, k: i32) -> Self {
        Num {
            value: self.value * 10f64.powi(k),
            dec: self.dec.clone().map(|d| d.shifted(k as i64)),
            integer: self.integer,
        }
    }

    /// The exact integer, when written as one that fits.
    #[cfg(test)]
    pub(super) fn int(&self) -> Option<i128> {
        let d = self.dec.as_ref().filter(|_| self.integer)?;
        let v: i128 = format!("{}{}", d.digits, "0".repeat(d.exp.try_into().ok()?))
            .parse()
            .ok()
            .or(d.digits.is_empty().then_some(0))?;
        Some(if d.neg { -v } else { v })
    }
}

/// The rule of the module docs; with `percent` the gold may also be matched as
/// `g/100` or `100g` (so `10\%` equals `0.1` and `10`).
pub(super) fn numbers_equal(p: &Num, g: &Num, percent: bool) -> bool {
    if same_number(p, g) {
        return true;
    }
    percent && (same_number(p, &g.shifted(-2)) || same_number(p, &g.shifted(2)))
}

fn same_number(p: &Num, g: &Num) -> bool {
    match (&p.dec, &g.dec) {
        (Some(a), Some(b)) if g.integer => a == b,
        (Some(a), Some(b)) => decimals_close(a, b, REL_TOL),
        _ => {
            let (a, b) = (p.value, g.value);
            let scale = a.abs().max(b.abs());
            // Only floating-point rounding is forgiven against an integer gold.
            let bound = if g.integer {
                1e-9 * scale.max(1.0)
            } else {
                REL_TOL * scale
            };
            a.is_finite() && b.is_finite() && (a - b).abs() <= bound
        }
    }
}

/// Numbers written out: `-12`, `3.5`, `1,000`, `\frac{3}{4}`, `\frac{-3}{4}`,
/// `-\frac{3}{4}`, `1\frac{1}{4}` (mixed), `2.5\times10^{3}`, `2.5e3`.
pub(super) fn parse_number(s: &str) -> Option<Num> {
    match s.strip_prefix('-') {
        Some(rest) => parse_unsigned(rest).map(Num::negated),
        None => parse_unsigned(s.strip_prefix('+').unwrap_or(s)),
    }
}

fn parse_unsigned(s: &str) -> Option<Num> {
    if let Some(n) = parse_decimal(s) {
        return Some(n);
    }
    // Mixed number `W\frac{a}{b}` or a fraction `\frac{a}{b}`.
    if let Some(i) = s.find("\\frac{") {
        let whole = &s[..i];
        let (num, den) = frac_parts(&s[i..])?;
        let (a, b) = (parse_number(num)?.value, parse_number(den)?.value);
        if b == 0.0 {
            return None;
        }
        if whole.is_empty() {
            return Some(Num::float(a / b));
        }
        let w = parse_decimal(whole).filter(|w| w.integer)?;
        // A mixed number has a non-negative proper fraction part.
        return (a >= 0.0 && b > 0.0).then(|| Num::float(w.value + a / b));
    }
    // Scientific notation.
    for sep in ["\\times10^", "\\cdot10^", "e"] {
        if let Some((m, e)) = s.split_once(sep) {
            let m = parse_decimal(m)?.dec?;
            let e = e
                .strip_prefix('{')
                .and_then(|e| e.strip_suffix('}'))
                .unwrap_or(e);
            let e: i64 = e.parse().ok().filter(|e: &i64| e.abs() <= MAX_EXPONENT)?;
            return Some(Num::decimal(m.shifted(e), false));
        }
    }
    None
}

/// `\frac{A}{B}` spanning the whole string -> (A, B).
fn frac_parts(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix("\\frac")?;
    let a_end = crate::normalize::matching_brace(rest, 0)?;
    let num = &rest[1..a_end];
    let rest = &rest[a_end + 1..];
    if !rest.starts_with('{') {
        return None;
    }
    let b_end = crate::normalize::matching_brace(rest, 0)?;
    (b_end == rest.len() - 1).then(|| (num, &rest[1..b_end]))
}

/// Digits (optionally in comma groups of three) with an optional decimal part.
fn parse_decimal(s: &str) -> Option<Num> {
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits: String = if int_part.contains(',') {
        is_comma_grouped(int_part).then(|| int_part.replace(',', ""))?
    } else {
        int_part.to_string()
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(&digits) {
        return None;
    }
    match frac_part {
        Some(f) => all_digits(f).then(|| Num::decimal(Decimal::new(false, &digits, f), false)),
        None => Some(Num::decimal(Decimal::new(false, &digits, ""), true)),
    }
}

/// `1,000` / `12,345,678`: 1-3 digits, then groups of exactly three.
fn is_comma_grouped(s: &str) -> bool {
    let mut groups = s.split(',');
    let first = groups.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// One number written with thousands groups, so its commas are not separators.
pub(super) fn is_grouped_number(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let int_part = body.split_once('.').map_or(body, |(i, _)| i);
    int_part.contains(',') && parse_decimal(body).is_some()
}

/// A long answer that is one plain number: digits with an optional sign, decimal
/// point and thousands separators (`,`, `{,}`, `\,`, `\!`, spaces), read in one
/// linear pass. Anything else is `None`, so long non-numeric text costs one scan.
pub(super) fn parse_long_number(s: &str) -> Option<Num> {
    let s = s.trim();
    let allowed = |b: u8| b.is_ascii_digit() || b".,{}\\! +-".contains(&b);
    if !s.bytes().all(allowed) {
        return None;
    }
    let cleaned = s
        .replace("{,}", ",")
        .replace("\\,", ",")
        .replace("\\!", "")
        .replace(' ', ",");
    // A separator written twice (`1\, 000`) is still one separator.
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.chars() {
        if !(c == ',' && out.ends_with(',')) {
            out.push(c);
        }
    }
    parse_number(&out)
}
