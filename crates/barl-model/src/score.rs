//! Log-probabilities of given tokens under the model.
//!
//! - [`score`]: per-token log-probs (and optionally entropies) of the
//!   completions of a micro-batch of `(prompt, completion)` pairs, as tensors
//!   that backpropagate into the model's variables (the PPO loss).
//! - [`score_no_grad`]: the same numbers as plain vectors, on the inference path.
//! - [`PrefixScorer`]: total log-probs of several short continuations of one
//!   shared prefix in one batched pass over the prefix's KV cache, and cheap
//!   extension of the prefix (the BARL answer probes).
//!
//! For a completion `c` after prompt `p`, token `j` gets
//! `log pi(c_j | p, c_<j) = z[c_j] - logsumexp(z)` with `z` the logits at the
//! position before it, and the entropy there is `H = -sum_v pi_v log pi_v`.

use candle_core::{DType, Tensor};

use crate::layers::{entropy, log_softmax, CausalLm, KvCache, Mode};
use crate::ModelError;

/// Per-token results of [`score`], each `(B, L)` with `L` the longest
/// completion; row `b` holds completion `b`'s tokens in columns `0..len_b`.
pub struct TokenScores {
    /// `log pi(token)`; 0 at padding.
    pub logprobs: Tensor,
    /// Entropy of the next-token distribution at each token; 0 at padding.
    /// Present when asked for.
    pub entropy: Option<Tensor>,
    /// f32: 1 at completion tokens, 0 at padding.
    pub mask: Tensor,
}

/// Checks every id is in the vocabulary; the error names the sequence.
pub(crate) fn check_ids(ids: &[u32], vocab: usize, what: &str) -> Result<(), ModelError> {
    match ids.iter().find(|&&t| t as usize >= vocab) {
        Some(t) => Err(ModelError::Config(format!(
            "{what}: token id {t} is outside the vocabulary of {vocab}"
        ))),
        None => Ok(()),
    }
}

/// Log-probs (and entropies) of each completion's tokens, with gradients
/// flowing into the model's variables ([`Mode::Train`]).
///
/// The pairs are concatenated and right-padded into one `(B, T)` batch; only
/// the positions that predict completion tokens go through the output head.
/// Every prompt must be non-empty (the first completion token needs a
/// position before it).
pub fn score<M, P, C>(model: &M, pairs: &[(P, C)], entropy: bool) -> Result<TokenScores, ModelError>
where
    M: CausalLm + ?Sized,
    P: AsRef<[u32]>,
    C: AsRef<[u32]>,
{
    score_with_mode(model, pairs, entropy, Mode::Train)
}

/// [`score`] on the inference path without gradients: one vector of
/// log-probs per pair, as long as its completion.
pub fn score_no_grad<M, P, C>(model: &M, pairs: &[(P, C)]) -> Result<Vec<Vec<f32>>, ModelError>
where
    M: CausalLm + ?Sized,
    P: AsRef<[u32]>,
    C: AsRef<[u32]>,
{
    let s = score_with_mode(model, pairs, false, Mode::Infer)?;
    let rows = s.logprobs.to_vec2::<f32>()?;
    Ok(rows
        .into_iter()
        .zip(pairs)
        .map(|(mut r, (_, c))| {
            r.truncate(c.as_ref().len());
            r
        })
        .collect())
}

fn score_with_mode<M, P, C>(
    model: &M,
    pairs: &[(P, C)],
    want_entropy: bool,
    mode: Mode,
) -> Result<TokenScores, ModelError>
where
    M: CausalLm + ?Sized,
    P: AsRef<[u32]>,
    C: AsRef<[u32]>,
{
    let dev = model.device().clone();
    let vocab = model.config().vocab_size;
    let b = pairs.len();
    let mut t = 0;
    let mut l = 0;
    for (i, (p, c)) in pairs.iter().enumerate() {
        let (p, c) = (p.as_ref(), c.as_ref());
        if p.is_empty() {
            return Err(ModelError::Config(format!("pair {i}: empty prompt")));
        }
        check_ids(p, vocab, &format!("pair {i} prompt"))?;
        check_ids(c, vocab, &format!("pair {i} completion"))?;
        t = t.max(p.len() + c.len());
        l = l.max(c.len());
    }
    // Flat layouts: `gather` picks the hidden rows that predict completion
    // tokens (N of them), `scatter` places the N results into (B, L), with
    // padding pointing at an extra zero at index N.
    let mut tokens = vec![0u32; b * t];
    let mut gather = Vec::new();
    let mut targets = Vec::new();
    let mut scatter = Vec::with_capacity(b * l);
    let mut mask = Vec::with_capacity(b * l);
    for (row, (p, c)) in pairs.iter().enumerate() {
        let (p, c) = (p.as_ref(), c.as_ref());
        let seq = &mut tokens[row * t..row * t + p.len() + c.len()];
        seq[..p.len()].copy_from_slice(p);
        seq[p.len()..].copy_from_slice(c);
        for (j, &tok) in c.iter().enumerate() {
            scatter.push(gather.len() as u32);
            gather.push((row * t + p.len() + j - 1) as u32);
            targets.push(tok);
            mask.push(1f32);
        }
        for _ in c.len()..l {
            scatter.push(0); // fixed below, once N is known
            mask.push(0f32);
        }
    }
    let n = gather.len();
    for (s, m) in scatter.iter_mut().zip(&mask) {
        if *m == 0.0 {
            *s = n as u32;
        }
    }
    let mask = Tensor::from_vec(mask, (b, l), &dev)?;
    if n == 0 {
        let zeros = Tensor::zeros((b, l), DType::F32, &dev)?;
        return Ok(TokenScores {
            logprobs: zeros.clone(),
            entropy: want_entropy.then_some(zeros),
            mask,
        });
    }
    let tokens = Tensor::from_vec(tokens, (b, t), &dev)?;
    let h = model.hidden(&tokens, None, mode)?;
    let hd = h.dim(2)?;
    let gather = Tensor::from_vec(gather, n, &dev)?;
    let h = h.reshape((b * t, hd))?.index_select(&gather, 0)?;
    let lsm = log_softmax(&model.logits(&h, mode)?)?; // (N, V)
    let targets = Tensor::from_vec(targets, (n, 1), &dev)?;
    let scatter = Tensor::from_vec(scatter, b * l, &dev)?;
    let zero = Tensor::zeros(1, DType::F32, &dev)?;
    let place = |x: &Tensor| -> candle_core::Result<Tensor> {
        Tensor::cat(&[x, &zero], 0)?
            .index_select(&scatter, 0)?
            .reshape((b, l))
    };
    let logprobs = place(&lsm.gather(&targets, 1)?.squeeze(1)?)?;
    let entropy = if want_entropy {
        let h = entropy(&lsm)?;
        Some(place(&h)?)
    } else {
        None
    };
    Ok(TokenScores {
        logprobs,
        entropy,
        mask,
    })
}

/// Scores continuations of one growing prefix, reusing its KV cache.
///
/// ```text
/// let mut s = PrefixScorer::new(&model, &prefix)?;
/// let lp = s.score(&[ans_a, ans_b])?;   // log pi(ans | prefix), summed over tokens
/// s.extend(&next_chunk)?;              // the prefix grows; nothing is re-encoded
/// ```
///
/// Scoring repeats the prefix cache once per continuation (a copy of the
/// cached keys/values) and runs all continuations as one batch; the prefix
/// itself is encoded once, and [`PrefixScorer::extend`] only encodes the chunk.
///
/// A scorer may also hold several prefixes of equal length as rows of one
/// batch ([`PrefixScorer::repeat`], [`PrefixScorer::select`]): then
/// [`PrefixScorer::extend_rows`] grows each row by its own chunk (all chunks of
/// one length) and [`PrefixScorer::score_rows`] scores each row's
/// continuations, each in one forward pass for all rows. The completions of
/// one prompt are probed this way.
pub struct PrefixScorer<'m, M: CausalLm + ?Sized> {
    model: &'m M,
    cache: KvCache,
    /// Per row, the log-softmax of the logits after its last prefix token.
    next: Vec<Vec<f32>>,
}

impl<'m, M: CausalLm + ?Sized> PrefixScorer<'m, M> {
    /// Encodes `prefix` (non-empty) as a single row.
    pub fn new(model: &'m M, prefix: &[u32]) -> Result<Self, ModelError> {
        if prefix.is_empty() {
            return Err(ModelError::Config("prefix scorer: empty prefix".into()));
        }
        let cache = KvCache::new(model.config(), 1, (2 * prefix.len()).max(64));
        let mut s = Self {
            model,
            cache,
            next: Vec::new(),
        };
        s.extend(prefix)?;
        Ok(s)
    }

    /// Number of prefix tokens encoded so far (per row).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Always false: a scorer holds a non-empty prefix.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Number of rows (prefixes) held.
    pub fn rows(&self) -> usize {
        self.cache.rows()
    }

    /// An independent copy that can be extended on its own (copies the cache).
    pub fn fork(&self) -> Result<Self, ModelError> {
        self.select(&(0..self.rows()).collect::<Vec<_>>())
    }

    /// A new scorer holding rows `idx` of this one (rows may repeat), e.g.
    /// `select(&[0; n])` for `n` completions of one prompt.
    pub fn select(&self, idx: &[usize]) -> Result<Self, ModelError> {
        if idx.is_empty() {
            return Err(ModelError::Config("prefix scorer: no rows selected".into()));
        }
        Ok(Self {
            model: self.model,
            cache: self.cache.select_rows(idx, 64)?,
            next: idx.iter().map(|&i| self.next[i].clone()).collect(),
        })
    }

    /// `n` copies of a single-row scorer's prefix as rows of one batch.
    pub fn repeat(&self, n: usize) -> Result<Self, ModelError> {
        if self.rows() != 1 {
            return Err(ModelError::Config(format!(
                "prefix scorer: repeat needs one row, have {}",
                self.rows()
            )));
        }
        self.select(&vec![0; n])
    }

    /// Appends `chunk` to the prefix of every row, encoding only the new tokens.
    pub fn extend(&mut self, chunk: &[u32]) -> Result<(), ModelError> {
        let chunks = vec![chunk; self.rows()];
        self.extend_rows(&chunks)
    }

    /// Appends `chunks[r]` to row `r`; every chunk must have the same length
    /// (rows stay aligned). Empty chunks do nothing.
    pub fn extend_rows(&mut self, chunks: &[&[u32]]) -> Result<(), ModelError> {
        let rows = self.rows();
        if chunks.len() != rows {
            return Err(ModelError::Config(format!(
                "prefix scorer: {} chunks for {rows} rows",
                chunks.len()
            )));
        }
        let t = chunks[0].len();
        if chunks.iter().any(|c| c.len() != t) {
            return Err(ModelError::Config(
                "prefix scorer: chunks of one extension must have one length".into(),
            ));
        }
        if t == 0 {
            return Ok(());
        }
        let vocab = self.model.config().vocab_size;
        for (r, c) in chunks.iter().enumerate() {
            check_ids(c, vocab, &format!("prefix chunk of row {r}"))?;
        }
        let dev = self.model.device();
        let flat: Vec<u32> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let toks = Tensor::from_vec(flat, (rows, t), dev)?;
        let h = self
            .model
            .hidden(&toks, Some(&mut self.cache), Mode::Infer)?;
        let last = h.narrow(1, t - 1, 1)?;
        let lsm = log_softmax(&self.model.logits(&last, Mode::Infer)?)?;
        self.next = lsm.reshape((rows, vocab))?.to_vec2::<f32>()?;
        Ok(())
    }

    /// `log pi(cont | prefix) = sum_j log pi(cont_j | prefix, cont_<j)` for
    /// each continuation (0 for an empty one) of a single-row scorer, in one
    /// batched forward pass.
    pub fn score<C: AsRef<[u32]>>(&self, conts: &[C]) -> Result<Vec<f32>, ModelError> {
        if self.rows() != 1 {
            return Err(ModelError::Config(format!(
                "prefix scorer: score needs one row, have {} (use score_rows)",
                self.rows()
            )));
        }
        Ok(self.score_rows(&[conts])?.remove(0))
    }

    /// [`PrefixScorer::score`] for every row: `out[r][i]` is the log-prob of
    /// `conts[r][i]` after row `r`'s prefix; one forward pass for all.
    pub fn score_rows<C: AsRef<[u32]>>(&self, conts: &[&[C]]) -> Result<Vec<Vec<f32>>, ModelError> {
        if conts.len() != self.rows() {
            return Err(ModelError::Config(format!(
                "prefix scorer: continuations for {} rows, have {}",
                conts.len(),
                self.rows()
            )));
        }
        let vocab = self.model.config().vocab_size;
        // Flatten to (row, continuation) pairs.
        let mut pairs: Vec<(usize, &[u32])> = Vec::new();
        for (r, cs) in conts.iter().enumerate() {
            for (i, c) in cs.iter().enumerate() {
                check_ids(c.as_ref(), vocab, &format!("continuation {i} of row {r}"))?;
                pairs.push((r, c.as_ref()));
            }
        }
        // The first token of each continuation is predicted by the prefix alone.
        let mut total: Vec<f64> = pairs
            .iter()
            .map(|(r, c)| c.first().map_or(0.0, |&t| self.next[*r][t as usize] as f64))
            .collect();
        let width = pairs.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
        if width >= 2 {
            // Feed tokens 0..len-1 of each continuation (right-padded), after its
            // row's prefix; position j predicts token j+1.
            let n = pairs.len();
            let w = width - 1;
            let mut toks = vec![0u32; n * w];
            let mut gather = Vec::new();
            let mut targets = Vec::new();
            let mut owner = Vec::new();
            for (p, (_, c)) in pairs.iter().enumerate() {
                if c.len() < 2 {
                    continue;
                }
                toks[p * w..p * w + c.len() - 1].copy_from_slice(&c[..c.len() - 1]);
                for j in 0..c.len() - 1 {
                    gather.push((p * w + j) as u32);
                    targets.push(c[j + 1]);
                    owner.push(p);
                }
            }
            let dev = self.model.device();
            let rows: Vec<usize> = pairs.iter().map(|(r, _)| *r).collect();
            let mut cache = self.cache.select_rows(&rows, w)?;
            let toks = Tensor::from_vec(toks, (n, w), dev)?;
            let h = self.model.hidden(&toks, Some(&mut cache), Mode::Infer)?;
            let hd = h.dim(2)?;
            let m = gather.len();
            let gather = Tensor::from_vec(gather, m, dev)?;
            let h = h.reshape((n * w, hd))?.index_select(&gather, 0)?;
            let lsm = log_softmax(&self.model.logits(&h, Mode::Infer)?)?;
            let targets = Tensor::from_vec(targets, (m, 1), dev)?;
            let lp = lsm.gather(&targets, 1)?.flatten_all()?.to_vec1::<f32>()?;
            for (p, x) in owner.into_iter().zip(lp) {
                total[p] += x as f64;
            }
        }
        let mut out: Vec<Vec<f32>> = conts
            .iter()
            .map(|cs| Vec::with_capacity(cs.len()))
            .collect();
        for ((r, _), x) in pairs.iter().zip(total) {
            out[*r].push(x as f32);
        }
        Ok(out)
    }
}
