//! Final-answer extraction from a model response.
//!
//! The rules, tried in this order by default (each can be switched off, and the
//! order changed, in [`ExtractOptions`]):
//!
//! 1. `minerva`: Minerva's format `... final answer is $ANSWER$. I hope it is correct.`
//! 2. `boxed`: the content of the last complete `\boxed{...}` / `\fbox{...}` (nested
//!    braces allowed), or the token after `\boxed ` (as in `\boxed 5`).
//! 3. `hashes`: GSM8K's `#### ANSWER` (the last such line).
//! 4. `final_answer_is`: the text after the last "the answer is" / "final answer is",
//!    up to the end of its sentence or line (or the math span that follows it).
//! 5. `latex`: the last complete LaTeX math span (`$..$`, `$$..$$`, `\(..\)`,
//!    `\[..\]`) taken whole, as Math-Verify's LaTeX extraction does, so that
//!    `$\frac{7}{4}$` gives `\frac{7}{4}`, not `4`.
//!    Then the last matrix environment written without delimiters, and a short
//!    response that is one bare LaTeX expression, with no words of prose
//!    (`\frac{7}{4}`), is taken whole by the same rule.
//! 6. `last_number`: the last number in the text (commas removed first, so `1,000`
//!    gives `1000`), the regular expression `-?\d*\.?\d+`; a digit inside a word
//!    (`QWX7B`) is not a number.
//!
//! Before any rule, a reasoning block is set aside: the text after the last
//! `</think>` is searched when it holds anything. Several boxes next to each other,
//! joined only by `,`, `and`, `;` or spacing (`\boxed{2} and \boxed{3}`), are one
//! answer `2, 3`; boxes separated by other text are candidates, and the last counts.
//!
//! Rules 1-4 and 6 follow the Qwen2.5-Math evaluation toolkit, whose extracted
//! answers this reproduces once normalised (see `tests/grader_data.rs`). Every rule
//! is a linear scan: no input makes extraction slow, and none makes it panic.

/// One extraction rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Minerva,
    Boxed,
    Hashes,
    AnswerIs,
    Latex,
    LastNumber,
}

impl Rule {
    /// Every rule, in the default order of priority.
    pub const ALL: [Rule; 6] = [
        Rule::Minerva,
        Rule::Boxed,
        Rule::Hashes,
        Rule::AnswerIs,
        Rule::Latex,
        Rule::LastNumber,
    ];

    /// The rule's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Minerva => "minerva",
            Rule::Boxed => "boxed",
            Rule::Hashes => "hashes",
            Rule::AnswerIs => "answer-is",
            Rule::Latex => "latex",
            Rule::LastNumber => "last-number",
        }
    }

    /// The rule called `name`, if any.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }
}

use crate::normalize::{strip_commands, TEXT_COMMANDS};

/// Which extraction rules are enabled (all of them by default) and the order
/// in which they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// The order of priority (a permutation of [`Rule::ALL`]).
    pub order: [Rule; 6],
    /// Last `\boxed{...}` / `\fbox{...}`.
    pub boxed: bool,
    /// "The answer is ..." / "final answer is ...".
    pub final_answer_is: bool,
    /// GSM8K's `#### ANSWER`.
    pub hashes: bool,
    /// Minerva's "final answer is $...$. I hope".
    pub minerva: bool,
    /// The last LaTeX math span.
    pub latex: bool,
    /// The last number in the text, when nothing else matched.
    pub last_number: bool,
}

impl ExtractOptions {
    /// The same options with `first` tried first, in that order, and the other
    /// rules after them in their present order (Math-Verify's extraction configs
    /// likewise set which targets come first: boxed only, LaTeX, plain expressions).
    pub fn with_priority(self, first: &[Rule]) -> Self {
        let mut order = Vec::with_capacity(6);
        for r in first.iter().chain(self.order.iter()) {
            if !order.contains(r) {
                order.push(*r);
            }
        }
        let mut out = self;
        out.order.copy_from_slice(&order[..6]);
        out
    }

    /// Switches `rule` off.
    pub fn disable(&mut self, rule: Rule) {
        let flag = match rule {
            Rule::Minerva => &mut self.minerva,
            Rule::Boxed => &mut self.boxed,
            Rule::Hashes => &mut self.hashes,
            Rule::AnswerIs => &mut self.final_answer_is,
            Rule::Latex => &mut self.latex,
            Rule::LastNumber => &mut self.last_number,
        };
        *flag = false;
    }

    /// Whether `rule` is switched on.
    pub fn enabled(&self, rule: Rule) -> bool {
        match rule {
            Rule::Minerva => self.minerva,
            Rule::Boxed => self.boxed,
            Rule::Hashes => self.hashes,
            Rule::AnswerIs => self.final_answer_is,
            Rule::Latex => self.latex,
            Rule::LastNumber => self.last_number,
        }
    }

    /// The options for a response of which `truncated` says whether generation
    /// stopped at the length limit: a response cut off mid-reasoning has no final
    /// answer, and a number that happens to be last is not one, so it gets no
    /// last-number (or bare LaTeX span) credit unless `credit_truncated`.
    pub fn for_response(mut self, truncated: bool, credit_truncated: bool) -> Self {
        if truncated && !credit_truncated {
            self.disable(Rule::LastNumber);
            self.disable(Rule::Latex);
        }
        self
    }
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            order: Rule::ALL,
            boxed: true,
            final_answer_is: true,
            hashes: true,
            minerva: true,
            latex: true,
            last_number: true,
        }
    }
}

/// The final answer of `text` by the first enabled rule that matches, cleaned of
/// line breaks, a leading `:` and a trailing `.` or `/`; `None` when no rule
/// matches or the answer is empty.
pub fn extract_answer(text: &str, opts: &ExtractOptions) -> Option<String> {
    let text = after_think(text);
    let raw = opts
        .order
        .iter()
        .filter(|r| opts.enabled(**r))
        .find_map(|r| match r {
            Rule::Minerva => minerva(text),
            Rule::Boxed => joined_boxes(text),
            Rule::Hashes => after_hashes(text),
            Rule::AnswerIs => answer_is(text),
            Rule::Latex => last_math_span(text)
                .or_else(|| last_matrix(text))
                .or_else(|| bare_expression(text)),
            Rule::LastNumber => last_number(text),
        })?;
    let cleaned = clean(&raw);
    (!cleaned.is_empty()).then_some(cleaned)
}

/// The text after the last `</think>` when it holds anything, else the text
/// before it without the `<think>` tag.
fn after_think(text: &str) -> &str {
    match text.rfind("</think>") {
        Some(i) if !text[i + 8..].trim().is_empty() => &text[i + 8..],
        Some(i) => {
            let inside = &text[..i];
            inside.find("<think>").map_or(inside, |j| &inside[j + 7..])
        }
        None => text,
    }
}

/// The last complete matrix environment (`pmatrix`, `bmatrix`, `matrix`,
/// `array`) written outside any math span.
fn last_matrix(text: &str) -> Option<String> {
    let (start, env) = ["pmatrix", "bmatrix", "matrix", "array"]
        .iter()
        .filter_map(|env| {
            let open = format!("\\begin{{{env}}}");
            text.rfind(&open).map(|i| (i, *env))
        })
        .max_by_key(|(i, _)| *i)?;
    let close = format!("\\end{{{env}}}");
    let end = text[start..].find(&close)? + start + close.len();
    Some(text[start..end].to_string())
}

/// A short response (at most 200 bytes) that is one bare expression
/// (`\frac{7}{4}`, `y \geq 4`, `x = 5`), with no words of prose: the whole of
/// it, so that the last-number rule does not take `4` out of `\frac{7}{4}`.
fn bare_expression(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || t.len() > 200 || t.contains('\n') {
        return None;
    }
    let prose = t.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| matches!(c, '.' | ',' | ':' | ';' | '!' | '?'));
        w.len() >= 2 && w.chars().all(|c| c.is_ascii_alphabetic()) && !matches!(w, "and" | "or")
    });
    (!prose).then(|| t.to_string())
}

/// Is `gold` written as something to extract an answer from (a `\boxed{}`, a math
/// span, or a whole solution) rather than as a plain answer?
pub fn gold_needs_extraction(gold: &str) -> bool {
    let g = gold.trim();
    g.contains("\\boxed")
        || g.contains("\\fbox")
        || g.contains('$')
        || g.contains("\\(")
        || g.contains("\\[")
        || g.contains("</think>")
        || g.split_whitespace().filter(|w| is_prose_word(w)).count() >= 3
}

/// A word of prose: four or more ASCII letters, no backslash.
fn is_prose_word(w: &str) -> bool {
    let w = w.trim_matches(|c: char| !c.is_ascii_alphabetic());
    w.len() >= 4 && w.chars().all(|c| c.is_ascii_alphabetic())
}

/// A gold answer ready for comparison: extracted like a response when
/// [`gold_needs_extraction`] (or always, with `always`), as written otherwise or
/// when nothing can be extracted.
pub fn gold_answer(gold: &str, always: bool) -> std::borrow::Cow<'_, str> {
    if !(always || gold_needs_extraction(gold)) {
        return gold.into();
    }
    let opts = ExtractOptions {
        last_number: always,
        ..ExtractOptions::default()
    };
    match extract_answer(gold, &opts) {
        Some(a) => a.into(),
        None => gold.into(),
    }
}

/// The last box, or several boxes joined by nothing but `,`, `and`, `;` or
/// spacing, as one comma-separated answer.
fn joined_boxes(text: &str) -> Option<String> {
    let pairs = brace_pairs(text);
    let mut end = text.len();
    let mut parts: Vec<String> = Vec::new();
    let mut last_start = None;
    while let Some((start, stop, content)) = last_boxed_before(text, end, &pairs) {
        if let Some(next) = last_start {
            if stop > next || !is_connector(&text[stop..next], false) {
                break;
            }
        }
        parts.push(content);
        last_start = Some(start);
        end = start;
        if parts.len() >= 16 {
            break;
        }
    }
    parts.reverse();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Text between two boxes (or math spans) that only joins them.
/// Between boxes `or` is not one: `\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}`
/// offers one answer in two forms; between math spans it is (`$x<-2$ or $x>3$`).
fn is_connector(between: &str, or: bool) -> bool {
    let mut s = between.replace("\\quad", " ").replace("\\text{", " ");
    s = s.replace(['$', '}', ',', ';', '{'], " ");
    s.split_whitespace().all(|w| {
        let w = w.to_ascii_lowercase();
        (or && w == "or") || matches!(w.as_str(), "and" | "&" | "\\," | "\\;" | "\\(" | "\\)")
    })
}

/// Content of the last complete `\boxed{...}` or `\fbox{...}` (nested braces kept),
/// or for `\boxed 5` the text after the space up to `$`, `\)`, `\]` or the line end.
pub fn last_boxed(text: &str) -> Option<String> {
    last_boxed_before(text, text.len(), &brace_pairs(text)).map(|(_, _, c)| c)
}

/// The start, end and content of the last complete box that starts before `end`.
fn last_boxed_before(
    text: &str,
    end: usize,
    pairs: &[(usize, usize)],
) -> Option<(usize, usize, String)> {
    // Candidate starts, latest first; a box never closed (a truncated response)
    // is skipped in favour of an earlier complete one.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    for cmd in ["\\boxed", "\\fbox"] {
        starts.extend(
            text[..end]
                .match_indices(cmd)
                .map(|(i, _)| (i, i + cmd.len())),
        );
    }
    starts.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    for (start, after) in starts {
        let rest = &text[after..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if trimmed.starts_with('{') {
            let open = after + (rest.len() - trimmed.len());
            if let Ok(k) = pairs.binary_search_by_key(&open, |p| p.0) {
                let close = pairs[k].1;
                return Some((start, close + 1, text[open + 1..close].to_string()));
            }
        } else if rest.starts_with([' ', '\t']) && !trimmed.is_empty() {
            // `\boxed 5`: a space-separated argument.
            let end = ["$", "\\)", "\\]", "\n"]
                .iter()
                .filter_map(|d| trimmed.find(d))
                .min()
                .unwrap_or(trimmed.len());
            let arg = trimmed[..end].trim();
            if !arg.is_empty() {
                let stop = after + (rest.len() - trimmed.len()) + end;
                return Some((start, stop, arg.to_string()));
            }
        }
    }
    None
}

/// (open, close) byte indices of every matched `{` `}` pair, sorted by `open`;
/// escaped `\{` / `\}` are skipped.
fn brace_pairs(s: &str) -> Vec<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut stack = Vec::new();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => stack.push(i),
            b'}' => {
                if let Some(open) = stack.pop() {
                    pairs.push((open, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    pairs.sort_unstable();
    pairs
}

/// Minerva: `final answer is $X$. I hope` gives `X` (the first such phrase).
fn minerva(text: &str) -> Option<String> {
    const START: &str = "final answer is $";
    const END: &str = "$. I hope";
    let start = text.find(START)? + START.len();
    let len = text[start..].find(END)?;
    Some(text[start..start + len].trim().to_string())
}

/// GSM8K: the text after the last `#### ` up to the line end.
fn after_hashes(text: &str) -> Option<String> {
    let start = text.rfind("####")? + 4;
    let rest = text[start..].trim_start();
    let line = rest.lines().next().unwrap_or("").trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The answer after the last "the answer is" / "final answer is": a following
/// `$...$` or `\(...\)` span if there is one, else the text up to the end of the
/// sentence (". " or the line end).
fn answer_is(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = ["he answer is", "final answer is"]
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| i + p.len()))
        .max()?;
    let rest = text[start..].trim_start_matches([' ', ':', '\t', '\n']);
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = rest.strip_prefix(open) {
            if let Some(end) = inner.find(close) {
                return Some(inner[..end].trim().to_string());
            }
        }
    }
    let end = [". ", ".\n", "\n"]
        .iter()
        .filter_map(|d| rest.find(d))
        .min()
        .unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

/// The content of the last complete math span: `$$..$$`, `$..$`, `\(..\)` or
/// `\[..\]` (an escaped `\$` is not a delimiter), trimmed of a final `.` or `,`;
/// earlier spans joined to it only by connectors are joined to it (`$1$ or $2$`
/// gives `1, 2`). A `$` pair around prose is not a span, and `None` when a number
/// follows the last span (that number is the later answer).
pub fn last_math_span(text: &str) -> Option<String> {
    let b = text.as_bytes();
    // (content start, content end, opening delimiter start, closing delimiter end)
    let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut open: Option<(usize, &'static str)> = None;
    let mut i = 0;
    while i < b.len() {
        let here = &b[i..];
        match open {
            None => {
                let start = if here.starts_with(b"$$") {
                    Some(("$$", 2))
                } else if here.starts_with(b"$") {
                    Some(("$", 1))
                } else if here.starts_with(b"\\(") {
                    Some(("\\)", 2))
                } else if here.starts_with(b"\\[") {
                    Some(("\\]", 2))
                } else {
                    None
                };
                match start {
                    Some((close, len)) => {
                        open = Some((i + len, close));
                        i += len;
                        continue;
                    }
                    None if here[0] == b'\\' => i += 1, // `\$` and other escapes
                    None => {}
                }
            }
            Some((from, close)) => {
                if here.starts_with(close.as_bytes()) {
                    let outer = from - if close.len() == 2 { 2 } else { 1 };
                    spans.push((from, i, outer, i + close.len()));
                    open = None;
                    i += close.len();
                    continue;
                }
                if here[0] == b'\\' {
                    i += 1; // an escape (`\$`, `\\`) is not a delimiter
                }
            }
        }
        i += 1;
    }
    // A `$` pair around prose is two currency signs (`earns $10 per hour, so
    // $50`), not math.
    spans.retain(|&(a, z, _, _)| !is_prose(&text[a..z]));
    // A number written after the last span is a later answer than the span
    // (`the cost is $\$5$ each, 20 in total`): the last-number rule takes it.
    let last_end = spans.last()?.3;
    if last_number(&text[last_end..]).is_some() {
        return None;
    }
    // Spans joined only by connectors (`$1$ or $2$`) are one answer.
    let mut parts = Vec::new();
    let mut next_open: Option<usize> = None;
    for &(a, z, outer_a, outer_z) in spans.iter().rev() {
        if let Some(n) = next_open {
            if !is_connector(&text[outer_z..n], true) {
                break;
            }
        }
        let inner = text[a..z].trim().trim_end_matches(['.', ',']).trim();
        if !inner.is_empty() {
            parts.push(inner);
        }
        next_open = Some(outer_a);
        if parts.len() >= 16 {
            break;
        }
    }
    parts.reverse();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Two or more words of three or more letters (outside commands and `\text{}`).
fn is_prose(s: &str) -> bool {
    strip_commands(s, TEXT_COMMANDS, false)
        .split(|c: char| !c.is_ascii_alphabetic() && c != '\\')
        .filter(|w| w.len() >= 3 && !w.contains('\\'))
        .count()
        >= 2
}

/// The last match of `-?\d*\.?\d+` in the text with commas removed, not counting
/// digits glued to letters (`QWX7B`, `x2`).
fn last_number(text: &str) -> Option<String> {
    let s: Vec<u8> = text.bytes().filter(|&b| b != b',').collect();
    let mut i = 0;
    let mut last = None;
    while i < s.len() {
        if s[i].is_ascii_alphabetic() {
            // Skip a whole word with any digits in it.
            while i < s.len() && s[i].is_ascii_alphanumeric() {
                i += 1;
            }
            continue;
        }
        match number_at(&s, i) {
            Some(end)
                if !s.get(end).is_some_and(u8::is_ascii_alphabetic) || unit_like(&s[end..]) =>
            {
                last = Some((i, end));
                i = end;
            }
            Some(end) => {
                // A digit run glued to letters (`7B`): part of a word.
                i = end;
                while i < s.len() && s[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            }
            None => i += 1,
        }
    }
    let (mut a, b) = last?;
    // A fraction `1/4` is one number.
    if a >= 2 && s[a - 1] == b'/' && s[a - 2].is_ascii_digit() && s[a] != b'-' {
        a -= 1;
        while a > 0 && s[a - 1].is_ascii_digit() {
            a -= 1;
        }
        if a > 0 && s[a - 1] == b'-' {
            a -= 1;
        }
    }
    // The match is ASCII only.
    Some(String::from_utf8_lossy(&s[a..b]).into_owned())
}

/// Letters after a number that still leave it a number: a unit (`5cm`, `3km`,
/// `10m`, `2nd` is not one) or a variable product (`2x`).
fn unit_like(rest: &[u8]) -> bool {
    let word: Vec<u8> = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .copied()
        .collect();
    !word.iter().any(u8::is_ascii_digit)
        && word.len() <= 3
        && !matches!(word.as_slice(), b"st" | b"nd" | b"rd" | b"th")
}

/// End of a `-?\d*\.?\d+` match starting at `i`, if one starts there.
fn number_at(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    if s.get(j) == Some(&b'-') {
        j += 1;
    }
    let mut k = j;
    while s.get(k).is_some_and(u8::is_ascii_digit) {
        k += 1;
    }
    if s.get(k) == Some(&b'.') && s.get(k + 1).is_some_and(u8::is_ascii_digit) {
        let mut m = k + 1;
        while s.get(m).is_some_and(u8::is_ascii_digit) {
            m += 1;
        }
        return Some(m);
    }
    (k > j).then_some(k)
}

/// Removes line breaks with the indentation after them, a leading `:` and one
/// trailing `.` or `/`, as the toolkit does after every rule.
fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    let mut s = out.trim();
    s = s.strip_prefix(':').unwrap_or(s);
    s = s.strip_suffix('.').unwrap_or(s);
    s = s.strip_suffix('/').unwrap_or(s);
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str) -> Option<String> {
        extract_answer(text, &ExtractOptions::default())
    }

    #[test]
    fn boxed_nested_and_last() {
        assert_eq!(
            ex("first \\boxed{1} then \\boxed{\\frac{1}{2}}."),
            Some("\\frac{1}{2}".into())
        );
        assert_eq!(
            last_boxed("\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}"),
            Some("\\begin{pmatrix}1\\\\2\\end{pmatrix}".into())
        );
        assert_eq!(last_boxed("$\\boxed{\\{1,2\\}}$"), Some("\\{1,2\\}".into()));
        assert_eq!(ex("so \\fbox{42} is it"), Some("42".into()));
    }

    #[test]
    fn boxed_with_space_argument() {
        assert_eq!(ex("The answer: $\\boxed 5$."), Some("5".into()));
        assert_eq!(ex("\\(\\boxed 17\\)"), Some("17".into()));
    }

    #[test]
    fn unclosed_box_falls_back_to_earlier_one() {
        assert_eq!(ex("\\boxed{3} and then \\boxed{\\frac{1"), Some("3".into()));
        // No complete box at all: the last number.
        assert_eq!(ex("so \\boxed{\\frac{7}{2"), Some("2".into()));
    }

    #[test]
    fn minerva_format_wins() {
        let t = "\\boxed{9}. Final Answer: The final answer is $x^2$. I hope it is correct.";
        assert_eq!(ex(t), Some("x^2".into()));
        let off = ExtractOptions {
            minerva: false,
            ..Default::default()
        };
        assert_eq!(extract_answer(t, &off), Some("9".into()));
    }

    #[test]
    fn hashes_and_answer_is() {
        assert_eq!(ex("She has 3 + 4 = 7 apples.\n#### 7\n"), Some("7".into()));
        assert_eq!(
            ex("Thus the answer is $\\frac{3}{4}$ in total."),
            Some("\\frac{3}{4}".into())
        );
        assert_eq!(
            ex("So the final answer is 12 apples. Done 99"),
            Some("12 apples".into())
        );
    }

    #[test]
    fn last_number_fallback() {
        assert_eq!(ex("we get 1,000 and then -3.5."), Some("-3.5".into()));
        assert_eq!(ex("values .5 and 7"), Some("7".into()));
        assert_eq!(ex("version 1.2.3"), Some(".3".into())); // regex semantics
        assert_eq!(ex("no digits here"), None);
        let off = ExtractOptions {
            last_number: false,
            ..Default::default()
        };
        assert_eq!(extract_answer("we get 12", &off), None);
    }

    #[test]
    fn each_rule_can_be_disabled() {
        let t = "#### 5\n\\boxed{6}";
        let no_box = ExtractOptions {
            boxed: false,
            ..Default::default()
        };
        assert_eq!(extract_answer(t, &no_box), Some("5".into()));
        let none = ExtractOptions {
            order: Rule::ALL,
            boxed: false,
            hashes: false,
            final_answer_is: false,
            minerva: false,
            latex: false,
            last_number: false,
        };
        assert_eq!(extract_answer(t, &none), None);
    }

    #[test]
    fn latex_spans_are_taken_whole() {
        assert_eq!(
            ex("Adding gives $\\frac{7}{4}$"),
            Some("\\frac{7}{4}".into())
        );
        assert_eq!(ex("So \\( (5+2) \\) it is"), Some("(5+2)".into()));
        assert_eq!(ex("Thus $$x \\in [-3,8]$$."), Some("x \\in [-3,8]".into()));
        assert_eq!(ex("\\[ x = 9. \\]"), Some("x = 9".into()));
        // An escaped dollar is a price, not a delimiter.
        assert_eq!(ex("It costs \\$5 and \\$7"), Some("7".into()));
        // Spans joined by connectors only are one answer; other text separates.
        assert_eq!(ex("$x<-2$ or $x>3$"), Some("x<-2, x>3".into()));
        assert_eq!(ex("From $2+3=5$ we get $k=5$"), Some("k=5".into()));
        // Currency signs are not delimiters; a number after the last span wins.
        assert_eq!(
            ex("She earns $10 per hour, so in 5 hours $10 * 5 = $50."),
            Some("50".into())
        );
        assert_eq!(ex("Each costs $\\$5$, so 4 cost 20."), Some("20".into()));
        assert_eq!(ex("Thus $n$ equals 12."), Some("12".into()));
        assert_eq!(
            ex("So $5 \\text{ apples and pears}$"),
            Some("5 \\text{ apples and pears}".into())
        );
        let off = ExtractOptions {
            latex: false,
            ..Default::default()
        };
        assert_eq!(
            extract_answer("gives $\\frac{7}{4}$", &off),
            Some("4".into())
        );
        // A matrix written without delimiters is taken whole.
        assert_eq!(
            ex("It is \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}."),
            Some("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}".into())
        );
        // A bare expression with no prose is taken whole by the same rule.
        assert_eq!(ex("\\frac{7}{4}"), Some("\\frac{7}{4}".into()));
        assert_eq!(ex("y >= 4"), Some("y >= 4".into()));
        assert_eq!(ex("x = 3 or x = 5"), Some("x = 3 or x = 5".into()));
        assert_eq!(ex("so it is \\frac{7}{4}"), Some("4".into()));
        assert_eq!(extract_answer("\\frac{7}{4}", &off), Some("4".into()));
    }

    #[test]
    fn adjacent_boxes_join_and_separated_ones_are_candidates() {
        assert_eq!(ex("roots \\boxed{2} and \\boxed{3}."), Some("2, 3".into()));
        assert_eq!(ex("$\\boxed{1}$, $\\boxed{2}$"), Some("1, 2".into()));
        assert_eq!(ex("Try \\boxed{40}. Final: \\boxed{42}"), Some("42".into()));
        // `or` between boxes offers one answer in two forms.
        assert_eq!(
            ex("$\\boxed{15\\frac{39}{40}},$ or $\\boxed{\\frac{639}{40}}$"),
            Some("\\frac{639}{40}".into())
        );
    }

    #[test]
    fn reasoning_blocks_are_set_aside() {
        let t = "<think>maybe \\boxed{3}</think> The answer is \\boxed{5}.";
        assert_eq!(ex(t), Some("5".into()));
        assert_eq!(ex("<think>so 3+4 = 7</think>\n"), Some("7".into()));
    }

    #[test]
    fn digits_in_words_are_not_numbers_and_fractions_are() {
        assert_eq!(ex("The code is QWX7B"), None);
        assert_eq!(ex("We tried x2 and y5"), None);
        assert_eq!(ex("It is 5cm long"), Some("5".into()));
        assert_eq!(ex("The probability is 1/4."), Some("1/4".into()));
        assert_eq!(ex("so -3/4 of it"), Some("-3/4".into()));
    }

    #[test]
    fn truncated_responses_get_no_fallback_credit() {
        let cut = "Step 1: 48/2 = 24. Step 2: 24 + 48 = 72 and then";
        let opts = ExtractOptions::default();
        assert_eq!(extract_answer(cut, &opts.for_response(true, false)), None);
        assert_eq!(
            extract_answer(cut, &opts.for_response(true, true)),
            Some("72".into())
        );
        assert_eq!(
            extract_answer(cut, &opts.for_response(false, false)),
            Some("72".into())
        );
        // A final answer already given still counts.
        let boxed = "So \\boxed{72}. Let me double-check: 48 +";
        assert_eq!(
            extract_answer(boxed, &opts.for_response(true, false)),
            Some("72".into())
        );
    }

    #[test]
    fn gold_is_extracted_only_when_not_plain() {
        assert_eq!(gold_answer("\\frac{1}{2}", false), "\\frac{1}{2}");
        assert_eq!(gold_answer("y \\ge 4", false), "y \\ge 4");
        assert_eq!(gold_answer("$2/7$", false), "2/7");
        assert_eq!(gold_answer("\\boxed{5}", false), "5");
        let solution = "Since $x+y=10$ and $x-y=2$, $x=6$, so $xy=\\boxed{24}$.";
        assert_eq!(gold_answer(solution, false), "24");
        // A price is not a math span; nothing to extract, so it stays.
        assert_eq!(gold_answer("\\$18.90", false), "\\$18.90");
        assert_eq!(gold_answer("Evelyn", false), "Evelyn");
        assert_eq!(gold_answer("12", true), "12");
    }

    #[test]
    fn priority_can_be_changed() {
        let t = "So \\boxed{6}, or in words: the answer is 7.";
        assert_eq!(ex(t), Some("6".into()));
        let answer_first = ExtractOptions::default().with_priority(&[Rule::AnswerIs]);
        assert_eq!(extract_answer(t, &answer_first), Some("7".into()));
        use Rule::*;
        assert_eq!(
            answer_first.order,
            [AnswerIs, Minerva, Boxed, Hashes, Latex, LastNumber]
        );
        let latex_first = ExtractOptions::default().with_priority(&[Rule::Latex, Rule::Boxed]);
        assert_eq!(
            extract_answer("$1$ then \\boxed{2} then $3$", &latex_first),
            Some("3".into())
        );
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
        }
        assert_eq!(Rule::from_name("sympy"), None);
    }

    #[test]
    fn cleanup() {
        assert_eq!(ex("\\boxed{: 12.}"), Some("12".into()));
        assert_eq!(ex("\\boxed{1\n   + 2}"), Some("1+ 2".into()));
        assert_eq!(ex("\\boxed{}"), None);
    }
}
