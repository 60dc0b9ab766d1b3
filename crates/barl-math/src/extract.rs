//! Final-answer extraction from a model response.
//!
//! The rules, tried in this order (each can be switched off in [`ExtractOptions`]):
//!
//! 1. `minerva`: Minerva's format `... final answer is $ANSWER$. I hope it is correct.`
//! 2. `boxed`: the content of the last complete `\boxed{...}` / `\fbox{...}` (nested
//!    braces allowed), or the token after `\boxed ` (as in `\boxed 5`).
//! 3. `hashes`: GSM8K's `#### ANSWER` (the last such line).
//! 4. `final_answer_is`: the text after the last "the answer is" / "final answer is",
//!    up to the end of its sentence or line (or the math span that follows it).
//! 5. `last_number`: the last number in the text (commas removed first, so `1,000`
//!    gives `1000`), the regular expression `-?\d*\.?\d+`.
//!
//! The order follows the Qwen2.5-Math evaluation toolkit, whose extracted answers
//! this reproduces once normalised (see `tests/grader_data.rs`). Every rule is a
//! linear scan: no input makes extraction slow, and none makes it panic.

/// Which extraction rules are enabled (all of them by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Last `\boxed{...}` / `\fbox{...}`.
    pub boxed: bool,
    /// "The answer is ..." / "final answer is ...".
    pub final_answer_is: bool,
    /// GSM8K's `#### ANSWER`.
    pub hashes: bool,
    /// Minerva's "final answer is $...$. I hope".
    pub minerva: bool,
    /// The last number in the text, when nothing else matched.
    pub last_number: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            boxed: true,
            final_answer_is: true,
            hashes: true,
            minerva: true,
            last_number: true,
        }
    }
}

/// The final answer of `text` by the first enabled rule that matches, cleaned of
/// line breaks, a leading `:` and a trailing `.` or `/`; `None` when no rule
/// matches or the answer is empty.
pub fn extract_answer(text: &str, opts: &ExtractOptions) -> Option<String> {
    let raw = (opts.minerva.then(|| minerva(text)).flatten())
        .or_else(|| opts.boxed.then(|| last_boxed(text)).flatten())
        .or_else(|| opts.hashes.then(|| after_hashes(text)).flatten())
        .or_else(|| opts.final_answer_is.then(|| answer_is(text)).flatten())
        .or_else(|| opts.last_number.then(|| last_number(text)).flatten())?;
    let cleaned = clean(&raw);
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Content of the last complete `\boxed{...}` or `\fbox{...}` (nested braces kept),
/// or for `\boxed 5` the text after the space up to `$`, `\)`, `\]` or the line end.
pub fn last_boxed(text: &str) -> Option<String> {
    // Candidate starts, latest first; a box never closed (a truncated response)
    // is skipped in favour of an earlier complete one.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    for cmd in ["\\boxed", "\\fbox"] {
        starts.extend(text.match_indices(cmd).map(|(i, _)| (i, i + cmd.len())));
    }
    starts.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    // All brace pairs in one pass, so that many unclosed boxes stay linear.
    let pairs = brace_pairs(text);
    for (_, after) in starts {
        let rest = &text[after..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if trimmed.starts_with('{') {
            let open = after + (rest.len() - trimmed.len());
            if let Ok(k) = pairs.binary_search_by_key(&open, |p| p.0) {
                return Some(text[open + 1..pairs[k].1].to_string());
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
                return Some(arg.to_string());
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

/// The last match of `-?\d*\.?\d+` in the text with commas removed.
fn last_number(text: &str) -> Option<String> {
    let s: Vec<u8> = text.bytes().filter(|&b| b != b',').collect();
    let mut i = 0;
    let mut last = None;
    while i < s.len() {
        match number_at(&s, i) {
            Some(end) => {
                last = Some((i, end));
                i = end;
            }
            None => i += 1,
        }
    }
    let (a, b) = last?;
    // The match is ASCII only.
    Some(String::from_utf8_lossy(&s[a..b]).into_owned())
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
            boxed: false,
            hashes: false,
            final_answer_is: false,
            minerva: false,
            last_number: false,
        };
        assert_eq!(extract_answer(t, &none), None);
    }

    #[test]
    fn cleanup() {
        assert_eq!(ex("\\boxed{: 12.}"), Some("12".into()));
        assert_eq!(ex("\\boxed{1\n   + 2}"), Some("1+ 2".into()));
        assert_eq!(ex("\\boxed{}"), None);
    }
}
