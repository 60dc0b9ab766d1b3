//! Answer normalisation rules, each a small pure function.
//!
//! Two pipelines are built from them:
//!
//! - [`hendrycks_strip`]: the `strip_string` of the Hendrycks MATH code (also used by
//!   verl's math reward and the BARL reference), reproduced rule by rule, including
//!   where the Python original raises (then `None`; its `is_equiv` falls back to
//!   comparing the raw strings).
//! - [`normalize_answer`]: the conventions of the Qwen2.5-Math evaluation toolkit's
//!   `strip_string` (units and `\text{}`, `\mbox`, degrees, `\!`, `\,`, dollars,
//!   percent, leading `x=`, `\dfrac`, `a/b`, `\frac12`) with its blunt global
//!   replacements made local: for example `x=` is dropped only as the left side of a
//!   short assignment, `and` only as a whole word, unit words only after a number.
//!
//! All rules are linear or quadratic scans over inputs the graders cap in length,
//! and none can panic (slicing happens only at ASCII bytes).

/// Byte index of the `}` closing the `{` at `open`, skipping escaped `\{` / `\}`.
pub(crate) fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1, // the next byte is escaped
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Hendrycks MATH `strip_string`. `None` where the Python original raises an
/// exception (a bare `\frac` or `\sqrt` at the end, two `\text{ ` units).
pub fn hendrycks_strip(input: &str) -> Option<String> {
    let mut s = input.replace('\n', "");
    s = s.replace("\\!", "");
    s = s.replace("\\\\", "\\");
    s = s
        .replace("tfrac", "frac")
        .replace("dfrac", "frac")
        .replace("cfrac", "frac");
    s = s.replace("\\left", "").replace("\\right", "");
    s = s.replace("^{\\circ}", "").replace("^\\circ", "");
    s = s.replace("\\$", "");
    s = remove_right_units(&s)?;
    s = s.replace("\\%", "");
    s = s.replace(" .", " 0.").replace("{.", "{0.");
    if s.is_empty() {
        return Some(s);
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    s = strip_short_assignment(&s).to_string();
    s = fix_sqrt(&s)?;
    s = s.replace(' ', "");
    s = fix_fracs(&s)?;
    if s == "0.5" {
        s = "\\frac{1}{2}".to_string();
    }
    Some(fix_a_slash_b(&s))
}

/// Hendrycks `_remove_right_units`: `"5\text{ cm}"` -> `"5"`; `None` when
/// `\text{ ` occurs more than once (the original's assertion fails).
pub fn remove_right_units(s: &str) -> Option<String> {
    const UNIT: &str = "\\text{ ";
    match s.matches(UNIT).count() {
        0 => Some(s.to_string()),
        1 => s.split(UNIT).next().map(str::to_string),
        _ => None,
    }
}

/// `\frac12` -> `\frac{1}{2}`, `\frac1{72}` -> `\frac{1}{72}`; `\frac{..}` is kept.
/// `None` for a `\frac` at the very end (the original raises); a `\frac` followed
/// by a single character leaves the whole string unchanged (as the original).
pub fn fix_fracs(s: &str) -> Option<String> {
    let mut parts = s.split("\\frac");
    let mut out = parts.next().unwrap_or("").to_string();
    for sub in parts {
        out.push_str("\\frac");
        let mut chars = sub.chars();
        let a = chars.next()?;
        if a == '{' {
            out.push_str(sub);
            continue;
        }
        let Some(b) = chars.next() else {
            return Some(s.to_string());
        };
        let rest = chars.as_str();
        out.push('{');
        out.push(a);
        out.push('}');
        if b != '{' {
            out.push('{');
            out.push(b);
            out.push('}');
        } else {
            out.push('{');
        }
        out.push_str(rest);
    }
    Some(out)
}

/// `\frac{270}7` -> `\frac{270}{7}`: a one-character denominator after a braced
/// numerator (which [`fix_fracs`] leaves alone) gets braces.
pub fn brace_frac_denominator(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut rest = s;
    while let Some(i) = rest.find("\\frac{") {
        let open = i + "\\frac".len();
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let Some(close) = matching_brace(rest, 0) else {
            break;
        };
        out.push_str(&rest[..=close]);
        rest = &rest[close + 1..];
        let mut chars = rest.chars();
        if let Some(c) = chars.next().filter(|c| *c != '{' && *c != '\\') {
            out.push('{');
            out.push(c);
            out.push('}');
            rest = chars.as_str();
        }
    }
    out.push_str(rest);
    out
}

/// `\sqrt3` -> `\sqrt{3}`; `None` for a `\sqrt` at the very end (the original raises).
pub fn fix_sqrt(s: &str) -> Option<String> {
    let mut parts = s.split("\\sqrt");
    let mut out = parts.next().unwrap_or("").to_string();
    for sub in parts {
        let mut chars = sub.chars();
        let a = chars.next()?;
        out.push_str("\\sqrt");
        if a == '{' {
            out.push_str(sub);
        } else {
            out.push('{');
            out.push(a);
            out.push('}');
            out.push_str(chars.as_str());
        }
    }
    Some(out)
}

/// `a/b` with `a`, `b` integers written canonically (`-3/4`, not `03/4` or
/// `3 / 4`) -> `\frac{a}{b}`; anything else is returned unchanged.
pub fn fix_a_slash_b(s: &str) -> String {
    let mut parts = s.split('/');
    if let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) {
        if is_canonical_int(a) && is_canonical_int(b) {
            return format!("\\frac{{{a}}}{{{b}}}");
        }
    }
    s.to_string()
}

/// `-?(0|[1-9][0-9]*)`, excluding `-0`: what Python's `str(int(x)) == x` accepts.
fn is_canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && digits.len() == s.len() || !digits.starts_with('0'))
}

/// Drops the left side of a short assignment: exactly one `=` and at most two
/// characters before it (`x = 3` -> ` 3`, `k=7` -> `7`); otherwise unchanged.
pub fn strip_short_assignment(s: &str) -> &str {
    let mut parts = s.split('=');
    if let (Some(lhs), Some(rhs), None) = (parts.next(), parts.next(), parts.next()) {
        if lhs.chars().count() <= 2 {
            return rhs;
        }
    }
    s
}

/// [`strip_short_assignment`] for an assignment only: the right side holds no
/// letters outside commands, so `x = 3` -> `3` but the equation
/// `y=-\frac{1}{2}x+1` is kept (the grader compares equations as equations).
pub fn strip_value_assignment(s: &str) -> &str {
    let stripped = strip_short_assignment(s);
    if stripped.len() == s.len() {
        return s;
    }
    let mut in_command = false;
    for c in stripped.chars() {
        if c == '\\' {
            in_command = true;
        } else if !c.is_ascii_alphabetic() {
            in_command = false;
        } else if !in_command {
            return s;
        }
    }
    stripped
}

/// A normalised answer and whether a percent sign or word was removed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    pub percent: bool,
}

/// Commands whose argument is text (`\\text{ cm}`, `\\mathrm{m}`).
pub const TEXT_COMMANDS: &[&str] = &[
    "\\text",
    "\\textbf",
    "\\textrm",
    "\\textnormal",
    "\\textsf",
    "\\textit",
    "\\mathrm",
    "\\mathbf",
    "\\mbox",
];

/// The `standard` grader's normalisation; see the module docs. Idempotent on its
/// own output for ordinary answers.
pub fn normalize_answer(input: &str) -> Normalized {
    let mut s: String = input
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .map(|c| match c {
            '\u{2212}' => '-', // minus sign
            _ => c,
        })
        .collect();
    s = s.replace('π', "\\pi ").replace('∞', "\\infty ");
    s = s.trim().trim_end_matches('.').to_string();
    let (t, mut percent) = simplify_escapes(&s);
    s = t.replace("{,}", ",");
    s = replace_array_env(&s);
    s = s.replace("bmatrix", "pmatrix");
    s = s.replace("tfrac", "frac").replace("dfrac", "frac");
    s = s
        .replace("\\neq", "\\ne")
        .replace("\\leqslant", "\\le")
        .replace("\\geqslant", "\\ge")
        .replace("\\leq", "\\le")
        .replace("\\geq", "\\ge")
        .replace('≤', "\\le ")
        .replace('≥', "\\ge ")
        .replace('≠', "\\ne ");
    s = remove_command_word(&s, "\\left");
    s = remove_command_word(&s, "\\right");
    s = remove_command_word(&s, "\\displaystyle");
    s = remove_degrees(&s);
    s = remove_trailing_text_unit(&s);
    s = strip_commands(&s, TEXT_COMMANDS, true);
    let (t, unit_percent) = remove_unit_words(&s);
    s = t;
    percent |= unit_percent;
    if let Some(d) = word_number(s.trim()) {
        s = d.to_string();
    }
    s = replace_word(&s, "and", ",");
    s = replace_word(&s, "or", ",");
    s = top_level_semicolons(&s);
    s = s.replace("\\emptyset", "{}").replace("\\varnothing", "{}");
    s = replace_word(&s, "infinity", "\\infty");
    s = replace_word(&s, "inf", "\\infty");
    s = fix_leading_decimal_point(&s);
    s = strip_zero_decimals(&s);
    s = strip_in_prefix(s.trim()).to_string();
    s = strip_value_assignment(&s).to_string();
    s = remove_spaces(&s);
    if !s.contains("\\sqrt[") {
        // Hendrycks' rule would brace the `[` of an n-th root.
        s = fix_sqrt(&s).unwrap_or(s);
    }
    s = fix_fracs(&s).unwrap_or(s);
    s = brace_frac_denominator(&s);
    s = fix_a_slash_b(&s);
    s = s.replace("+\\infty", "\\infty");
    while s.contains(",,") {
        s = s.replace(",,", ",");
    }
    let s = s.trim_matches(',');
    let text = if s == "(-\\infty,\\infty)" {
        "\\mathbb{R}".to_string()
    } else {
        s.to_string()
    };
    Normalized { text, percent }
}

/// `1;2;3` -> `1,2,3`: a semicolon outside brackets separates list items.
pub fn top_level_semicolons(s: &str) -> String {
    let mut depth = 0i32;
    s.chars()
        .map(|c| {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
            if c == ';' && depth == 0 {
                ','
            } else {
                c
            }
        })
        .collect()
}

/// Removes whitespace, except one space between a command name and a letter
/// (`\pi r` stays `\pi r`, not the unknown command `\pir`).
pub fn remove_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_command = false;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space {
            if in_command && c.is_ascii_alphabetic() {
                out.push(' ');
            }
            in_command = false;
            pending_space = false;
        }
        if c == '\\' {
            in_command = true;
        } else if !c.is_ascii_alphabetic() {
            in_command = false;
        }
        out.push(c);
    }
    out
}

/// One pass over backslash escapes and stray symbols: removes `\!`, `\,`, `\;`,
/// `\:` (thin spaces, used as thousands separators), math delimiters `\(` `\)`
/// `\[` `\]` `$`, dollar signs `\$` and percent signs `\%` `%` (reported);
/// `\ `, `~` become spaces, `\quad` a list comma; `\{` `\}` become braces;
/// `\\` is kept.
pub fn simplify_escapes(s: &str) -> (String, bool) {
    let mut out = String::with_capacity(s.len());
    let mut percent = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek().copied() {
                Some('\\') => {
                    chars.next();
                    out.push_str("\\\\");
                }
                Some('!' | ',' | ';' | ':' | '(' | ')' | '[' | ']' | '$') => {
                    chars.next();
                }
                Some(' ') => {
                    chars.next();
                    out.push(' ');
                }
                Some('%') => {
                    chars.next();
                    percent = true;
                }
                Some(b @ ('{' | '}')) => {
                    chars.next();
                    out.push(b);
                }
                _ => out.push('\\'),
            },
            '$' => {}
            '%' => percent = true,
            '~' => out.push(' '),
            _ => out.push(c),
        }
    }
    // `\quad` separates list items (`3 \quad 5`); a stray one at an end is trimmed
    // with the other edge commas.
    let out = out.replace("\\qquad", ",").replace("\\quad", ",");
    (out, percent)
}

/// `\begin{array}{cc}` -> `\begin{pmatrix}`, `\end{array}` -> `\end{pmatrix}`.
pub fn replace_array_env(s: &str) -> String {
    const BEGIN: &str = "\\begin{array}";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(BEGIN) {
        out.push_str(&rest[..i]);
        out.push_str("\\begin{pmatrix}");
        let after = &rest[i + BEGIN.len()..];
        // Skip the column specification `{cc}` if present.
        rest = if after.starts_with('{') {
            match matching_brace(after, 0) {
                Some(close) => &after[close + 1..],
                None => after,
            }
        } else {
            after
        };
    }
    out.push_str(rest);
    out.replace("\\end{array}", "\\end{pmatrix}")
}

/// Removes a command such as `\left` where the next character is not a letter
/// (so `\leftarrow` survives).
pub fn remove_command_word(s: &str, cmd: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(cmd) {
        let after = &rest[i + cmd.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(cmd);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Removes degree marks: `^{\circ}`, `^\circ`, `°`, `\degree`.
pub fn remove_degrees(s: &str) -> String {
    s.replace("^{\\circ}", "")
        .replace("^\\circ", "")
        .replace("^{°}", "")
        .replace('°', "")
        .replace("\\degree", "")
}

/// `\cmd{...}` groups for the given commands: unwrapped (`keep_content`) or
/// removed. Nested groups are handled; an unclosed group is left as it is.
pub fn strip_commands(s: &str, cmds: &[&str], keep_content: bool) -> String {
    let bytes = s.as_bytes();
    let mut drop = vec![false; bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hit = cmds.iter().find_map(|cmd| {
                let after = i + cmd.len();
                (s[i..].starts_with(cmd) && !bytes.get(after).is_some_and(u8::is_ascii_alphabetic))
                    .then_some(after)
            });
            if let Some(after) = hit {
                let mut open = after;
                while bytes.get(open) == Some(&b' ') {
                    open += 1;
                }
                if bytes.get(open) == Some(&b'{') {
                    if let Some(close) = matching_brace(s, open) {
                        if keep_content {
                            drop[i..=open].iter_mut().for_each(|d| *d = true);
                            drop[close] = true;
                            i = open + 1;
                        } else {
                            drop[i..=close].iter_mut().for_each(|d| *d = true);
                            i = close + 1;
                        }
                        continue;
                    }
                }
            }
            // Skip the escaped character (`\\`, `\{`).
            i += 2;
            continue;
        }
        i += 1;
    }
    let kept: Vec<u8> = bytes
        .iter()
        .zip(&drop)
        .filter(|(_, d)| !**d)
        .map(|(b, _)| *b)
        .collect();
    // Dropped ranges start and end at ASCII bytes, so this never replaces anything.
    String::from_utf8_lossy(&kept).into_owned()
}

const UNIT_GROUPS: &[&str] = &["\\text", "\\textrm", "\\mbox", "\\mathrm"];

/// A trailing `\text{...}` / `\mbox{...}` / `\mathrm{...}` (optionally squared or
/// cubed) after a number is a unit: `5\text{ cm}^2` -> `5`. Kept when what
/// precedes it has no digit (`\text{Evelyn}`, `x\text{ and }y`).
pub fn remove_trailing_text_unit(s: &str) -> String {
    let mut s = s.trim_end().to_string();
    for _ in 0..3 {
        let body = ["^2", "^3", "^{2}", "^{3}"]
            .iter()
            .find_map(|p| s.strip_suffix(p))
            .unwrap_or(&s);
        if !body.ends_with('}') {
            break;
        }
        let start = UNIT_GROUPS
            .iter()
            .filter_map(|cmd| {
                body.rfind(cmd).filter(|&i| {
                    let open = body[i + cmd.len()..].trim_start_matches(' ');
                    open.starts_with('{')
                        && matching_brace(body, body.len() - open.len()) == Some(body.len() - 1)
                })
            })
            .max();
        let Some(start) = start else { break };
        let head = body[..start].trim_end();
        if !head.bytes().any(|b| b.is_ascii_digit()) {
            break;
        }
        s = head.to_string();
    }
    s
}

/// Unit words accepted after a number (case-insensitive).
/// Unit words that mean a percent sign.
const PERCENT_WORDS: &[&str] = &["percent", "percentage", "pct"];

const UNIT_WORDS: &[&str] = &[
    "pct",
    "percentage",
    "cm",
    "centimeter",
    "centimeters",
    "centimetre",
    "centimetres",
    "m",
    "meter",
    "meters",
    "metre",
    "metres",
    "km",
    "kilometer",
    "kilometers",
    "mm",
    "millimeter",
    "millimeters",
    "inch",
    "inches",
    "in",
    "ft",
    "foot",
    "feet",
    "yd",
    "yard",
    "yards",
    "mile",
    "miles",
    "mph",
    "kmh",
    "kg",
    "kilogram",
    "kilograms",
    "g",
    "gram",
    "grams",
    "lb",
    "lbs",
    "pound",
    "pounds",
    "oz",
    "ounce",
    "ounces",
    "s",
    "sec",
    "second",
    "seconds",
    "min",
    "minute",
    "minutes",
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "dollar",
    "dollars",
    "cent",
    "cents",
    "degree",
    "degrees",
    "deg",
    "unit",
    "units",
    "square",
    "sq",
    "cubic",
    "cu",
    "liter",
    "liters",
    "litre",
    "litres",
    "l",
    "ml",
    "gallon",
    "gallons",
    "percent",
    "radian",
    "radians",
    "rad",
];

/// Unit words after a number: `12 inches` -> `12`, `4 square feet` -> `4`,
/// `5 cm^2` -> `5`, `10 percent` -> `10` (reported). The words must be separated
/// from the number by a space and what precedes them must end in a digit, `}` or
/// `)`, so `x m` and `4m` are left alone.
pub fn remove_unit_words(s: &str) -> (String, bool) {
    let mut body = s.trim_end();
    let mut percent = false;
    let mut removed = false;
    loop {
        let trimmed = ["^2", "^3", "^{2}", "^{3}"]
            .iter()
            .find_map(|p| body.strip_suffix(p))
            .unwrap_or(body);
        let word_start = trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| !c.is_ascii_alphabetic())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &trimmed[word_start..];
        let before = &trimmed[..word_start];
        let known = UNIT_WORDS.iter().any(|u| u.eq_ignore_ascii_case(word));
        if word.is_empty() || !known || !before.ends_with(' ') {
            break;
        }
        percent |= PERCENT_WORDS.iter().any(|p| word.eq_ignore_ascii_case(p));
        body = before.trim_end();
        removed = true;
    }
    let number_like = body.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')');
    if removed && number_like {
        (body.to_string(), percent)
    } else {
        (s.to_string(), false)
    }
}

/// Whole-string number words: `five` -> `5`.
pub fn word_number(s: &str) -> Option<&'static str> {
    const WORDS: &[(&str, &str)] = &[
        ("zero", "0"),
        ("one", "1"),
        ("two", "2"),
        ("three", "3"),
        ("four", "4"),
        ("five", "5"),
        ("six", "6"),
        ("seven", "7"),
        ("eight", "8"),
        ("nine", "9"),
        ("ten", "10"),
        ("eleven", "11"),
        ("twelve", "12"),
        ("thirteen", "13"),
        ("fourteen", "14"),
        ("fifteen", "15"),
        ("sixteen", "16"),
        ("seventeen", "17"),
        ("eighteen", "18"),
        ("nineteen", "19"),
        ("twenty", "20"),
    ];
    WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(s))
        .map(|(_, d)| *d)
}

/// Replaces `word` where it stands alone (no letter or backslash on either side).
pub fn replace_word(s: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back().or(prev);
        let after = rest[i + word.len()..].chars().next();
        let alone = !before.is_some_and(|c| c.is_ascii_alphabetic() || c == '\\')
            && !after.is_some_and(|c| c.is_ascii_alphabetic());
        out.push_str(&rest[..i]);
        out.push_str(if alone { with } else { word });
        prev = word.chars().next_back();
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// A `.` followed by a digit and not preceded by a digit or `.` gets a leading
/// zero: `.5` -> `0.5`, `{.5}` -> `{0.5}`, `-.5` -> `-0.5`.
pub fn fix_leading_decimal_point(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '.'
            && chars.peek().is_some_and(|n| n.is_ascii_digit())
            && !prev.is_some_and(|p| p.is_ascii_digit() || p == '.')
        {
            out.push('0');
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Zero decimals are dropped: `5.00` -> `5`, `2.0x` -> `2x`; `37.50` and `1.05`
/// are unchanged (the toolkit's `(\d+)\.0*([^\d]|$)` rule).
pub fn strip_zero_decimals(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'.' && i > 0 && bytes[i - 1].is_ascii_digit() {
            let mut j = i + 1;
            while bytes.get(j) == Some(&b'0') {
                j += 1;
            }
            if !bytes.get(j).is_some_and(u8::is_ascii_digit) {
                i = j;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `x \in [0,1]` -> `[0,1]`: a single letter and `\in` at the start.
pub fn strip_in_prefix(s: &str) -> &str {
    let mut chars = s.chars();
    if chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        let rest = chars.as_str().trim_start();
        if let Some(r) = rest.strip_prefix("\\in") {
            if !r.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return r.trim_start();
            }
        }
    }
    s
}

#[cfg(test)]
mod tests;
