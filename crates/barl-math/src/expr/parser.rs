//! The recursive-descent parser: tokens into an [`Expr`](super::Expr).

use super::lexer::{Lexer, Tok};
use super::rational::Q;
use super::tree::{bx, int_node, Expr, Func, Node, NumLit};
use super::{ExprError, Result, MAX_DEPTH, MAX_INPUT_CHARS};

// The grammar:
//
// sum      := term (('+' | '-') term)*
// term     := unary (('*' | '/') unary | power)*        -- juxtaposition multiplies
// unary    := ('-' | '+') unary | power
// power    := postfix ('^' exponent)?
// exponent := ('-' | '+') exponent | power | '\circ'     -- right associative
// postfix  := primary ('!' | '%')*
// primary  := number | variable('_' sub)? | constant | (sum) | [sum] | {sum} | |sum|
//           | \frac arg arg | \binom arg arg | \sqrt([sum])? arg | function | floor/ceil

pub(super) struct Parser {
    pub(super) toks: Vec<Tok>,
    pub(super) pos: usize,
    pub(super) depth: usize,
    /// Open `|...|` groups at this bracket level: there `|` closes instead of multiplying.
    pub(super) abs_depth: usize,
}

impl Parser {
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    pub(super) fn is_op(&self, c: char) -> bool {
        matches!(self.peek(), Some(Tok::Op(x)) if *x == c)
    }

    pub(super) fn eat_op(&mut self, c: char) -> bool {
        let hit = self.is_op(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    pub(super) fn unexpected(&self, wanted: &str) -> ExprError {
        match self.peek() {
            Some(t) => ExprError::UnexpectedToken {
                found: format!("{} (expected {wanted})", t.describe()),
                pos: self.pos,
            },
            None => ExprError::UnexpectedEnd(wanted.to_string()),
        }
    }

    pub(super) fn expect_op(&mut self, c: char) -> Result<()> {
        if self.eat_op(c) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}'")))
        }
    }

    /// Enters one nesting level, refusing beyond [`MAX_DEPTH`]. Callers undo it with
    /// `self.depth -= 1` on success; an error aborts the whole parse, so it needs no undo.
    pub(super) fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep { max: MAX_DEPTH });
        }
        self.depth += 1;
        Ok(())
    }

    pub(super) fn starts_factor(&self) -> bool {
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

    pub(super) fn sum(&mut self) -> Result<Node> {
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

    pub(super) fn term(&mut self) -> Result<Node> {
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

    pub(super) fn unary(&mut self) -> Result<Node> {
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

    pub(super) fn power(&mut self) -> Result<Node> {
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
    pub(super) fn skip_degree(&mut self) -> bool {
        let rest = &self.toks[self.pos..];
        let n = match rest {
            [Tok::Circ, ..] => 1,
            [Tok::Op('{'), Tok::Circ, Tok::Op('}'), ..] => 3,
            _ => 0,
        };
        self.pos += n;
        n > 0
    }

    pub(super) fn exponent(&mut self) -> Result<Node> {
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

    pub(super) fn postfix(&mut self) -> Result<Node> {
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
    pub(super) fn group(&mut self, close: char) -> Result<Node> {
        let saved = std::mem::replace(&mut self.abs_depth, 0);
        let inner = self.sum()?;
        self.expect_op(close)?;
        self.abs_depth = saved;
        Ok(inner)
    }

    // Every construct has its own small function: unoptimised builds give each local its
    // own stack slot, so one big `match` here would make every nesting level costly.
    pub(super) fn primary(&mut self) -> Result<Node> {
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

    pub(super) fn abs(&mut self) -> Result<Node> {
        self.abs_depth += 1;
        let inner = self.sum()?;
        self.expect_op('|')?;
        self.abs_depth -= 1;
        Ok(Node::Abs(bx(inner)))
    }

    /// `\frac{a}{b}` = `a * b^-1`, or `\binom{a}{b}`.
    pub(super) fn frac(&mut self, binom: bool) -> Result<Node> {
        let a = self.arg(true)?;
        let b = self.arg(true)?;
        Ok(if binom {
            Node::Binom(bx(a), bx(b))
        } else {
            Node::Prod(vec![a, Node::Recip(bx(b))])
        })
    }

    /// `\sqrt{x}`, `\sqrt[n]{x}`.
    pub(super) fn root(&mut self, latex: bool) -> Result<Node> {
        let index = if self.eat_op('[') {
            self.group(']')?
        } else {
            int_node(2)
        };
        let x = self.arg(latex)?;
        Ok(Node::Root(bx(index), bx(x)))
    }

    /// `\lfloor x \rfloor` or `\lceil x \rceil` (after the opening token).
    pub(super) fn floor_ceil(&mut self, close: Tok) -> Result<Node> {
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
    pub(super) fn number(&mut self, text: &str) -> Result<Node> {
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
    pub(super) fn subscript(&mut self, name: String) -> Result<String> {
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
    pub(super) fn arg(&mut self, latex: bool) -> Result<Node> {
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
    pub(super) fn function(&mut self, f: Func) -> Result<Node> {
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
    pub(super) fn function_run(&mut self) -> Result<Node> {
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
