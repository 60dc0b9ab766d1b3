//! Exact rationals over `i128`, for the exact comparison of constants.

/// Reduced fraction `n / d` with `d > 0`; every operation is checked and returns `None`
/// on overflow, so callers fall back to `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Q {
    pub(super) n: i128,
    pub(super) d: i128,
}

pub(super) fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Q {
    pub(super) fn int(n: i128) -> Q {
        Q { n, d: 1 }
    }

    pub(super) fn new(n: i128, d: i128) -> Option<Q> {
        if d == 0 {
            return None;
        }
        let g = gcd(n.unsigned_abs(), d.unsigned_abs());
        let g = i128::try_from(g).ok()?;
        let (mut n, mut d) = (n / g, d / g);
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Q { n, d })
    }

    /// `a/b + c/d = (a*(d/g) + c*(b/g)) / (b*(d/g))` with `g = gcd(b, d)`.
    pub(super) fn add(self, o: Q) -> Option<Q> {
        let g = i128::try_from(gcd(self.d as u128, o.d as u128)).ok()?;
        let n = self
            .n
            .checked_mul(o.d / g)?
            .checked_add(o.n.checked_mul(self.d / g)?)?;
        Q::new(n, self.d.checked_mul(o.d / g)?)
    }

    /// Cross-reduced product, so that intermediate values stay small.
    pub(super) fn mul(self, o: Q) -> Option<Q> {
        let g1 = i128::try_from(gcd(self.n.unsigned_abs(), o.d as u128))
            .ok()?
            .max(1);
        let g2 = i128::try_from(gcd(o.n.unsigned_abs(), self.d as u128))
            .ok()?
            .max(1);
        let n = (self.n / g1).checked_mul(o.n / g2)?;
        let d = (self.d / g2).checked_mul(o.d / g1)?;
        Q::new(n, d)
    }

    pub(super) fn neg(self) -> Option<Q> {
        Some(Q {
            n: self.n.checked_neg()?,
            d: self.d,
        })
    }

    pub(super) fn recip(self) -> Option<Q> {
        Q::new(self.d, self.n)
    }

    pub(super) fn is_int(self) -> bool {
        self.d == 1
    }

    /// `self^e` by repeated squaring; bases other than 0, ±1 overflow i128 beyond e = 127.
    pub(super) fn pow(self, e: i128) -> Option<Q> {
        if e < 0 {
            return self.recip()?.pow(e.checked_neg()?);
        }
        if e == 0 {
            return Some(Q::int(1));
        }
        if self.n == 0 || self == Q::int(1) {
            return Some(self);
        }
        if self == Q::int(-1) {
            return Some(if e % 2 == 0 { Q::int(1) } else { self });
        }
        if e > 128 {
            return None;
        }
        let (mut acc, mut base, mut e) = (Q::int(1), self, e);
        while e > 0 {
            if e & 1 == 1 {
                acc = acc.mul(base)?;
            }
            e >>= 1;
            if e > 0 {
                base = base.mul(base)?;
            }
        }
        Some(acc)
    }

    /// Exact `k`-th root when numerator and denominator are perfect `k`-th powers.
    pub(super) fn root(self, k: i128) -> Option<Q> {
        if !(1..=128).contains(&k) {
            return None;
        }
        let k = k as u32;
        if self.n < 0 && k & 1 == 0 {
            return None;
        }
        let n = i128::try_from(iroot(self.n.unsigned_abs(), k)?).ok()?;
        let d = i128::try_from(iroot(self.d as u128, k)?).ok()?;
        Q::new(if self.n < 0 { -n } else { n }, d)
    }

    pub(super) fn floor(self) -> i128 {
        self.n.div_euclid(self.d)
    }

    pub(super) fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }
}

/// Exact integer `k`-th root of `x`, if there is one.
pub(super) fn iroot(x: u128, k: u32) -> Option<u128> {
    if x < 2 || k == 1 {
        return Some(x);
    }
    let guess = (x as f64).powf(1.0 / k as f64).round() as u128;
    (guess.saturating_sub(1)..=guess + 1).find(|r| r.checked_pow(k) == Some(x))
}
