//! The tokenizer: LaTeX and plain-text math into tokens.

use super::tree::Func;
use super::{ExprError, Result};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Num(s) => format!("number {s}"),
            Tok::Var(v) => format!("variable {v}"),
            Tok::Op(c) => format!("'{c}'"),
            other => format!("{other:?}"),
        }
    }
}

/// Plain-text words recognised inside a run of letters, longest first.
pub(super) const PLAIN_WORDS: [&str; 19] = [
    "infinity", "arcsin", "arccos", "arctan", "infty", "sqrt", "sinh", "cosh", "tanh", "sin",
    "cos", "tan", "cot", "sec", "csc", "exp", "log", "ln", "pi",
];

pub(super) fn word_token(word: &str, latex: bool) -> Option<Tok> {
    Some(match word {
        "pi" => Tok::Pi,
        "infty" | "infinity" => Tok::Inf,
        "sqrt" => Tok::Sqrt { latex },
        "e" => Tok::E,
        _ => Tok::Func(Func::from_name(word)?),
    })
}

pub(super) const GREEK: [&str; 40] = [
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

pub(super) struct Lexer {
    pub(super) chars: Vec<char>,
    pub(super) pos: usize,
    pub(super) toks: Vec<Tok>,
}

impl Lexer {
    pub(super) fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    pub(super) fn digit_at(&self, k: usize) -> bool {
        self.peek_at(k).is_some_and(|c| c.is_ascii_digit())
    }

    pub(super) fn run(mut self) -> Result<Vec<Tok>> {
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

    pub(super) fn digits(&mut self, out: &mut String) {
        while let Some(c) = self.peek_at(0).filter(char::is_ascii_digit) {
            out.push(c);
            self.pos += 1;
        }
    }

    /// Digits, thousands groups (`1{,}000`, `1\,000`, `1 000`: exactly three digits), a decimal part, and scientific
    /// notation `1.5e-3`.
    pub(super) fn number(&mut self) {
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
    pub(super) fn letters(&mut self) {
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

    pub(super) fn command(&mut self) -> Result<()> {
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
    pub(super) fn text_arg(&mut self, cmd: &str) -> Result<()> {
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
