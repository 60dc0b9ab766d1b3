//! The answer probe (spec section 5): the model's probability of answering each
//! hypothesis if forced to answer at the end of each step of a completion.
//!
//! For prompt `x`, completion `c` cut into steps ending at response tokens
//! `e_0..e_K` ([`step_ends`]), forcing suffix `s` (the ids of e.g.
//! `"\nBased on the above reasoning, the final answer is \boxed{"`) and
//! hypothesis `h_i` (its ids),
//!
//! ```text
//! p_i(k) = exp( (log pi(s ++ h_i | x, c[..e_k]) - log pi(s | x, c[..e_k])) / |h_i| )
//! ```
//!
//! the geometric mean of the probabilities of `h_i`'s tokens after the suffix.
//! The prefix `x ++ c[..e_k]` is shared by every hypothesis of a step and grows
//! step by step, so one [`PrefixScorer`] per completion encodes each response
//! token once (the prompt once for all completions of a prompt); at each step
//! the suffix is encoded once on a fork of the prefix, and the hypotheses are
//! scored after it in one batch, which gives `log pi(h_i | x, c[..e_k], s)`
//! directly ([`probe_probs_shared`]).

use barl_model::{CausalLm, ModelError, PrefixScorer, Tokenizer};

/// Step ends in response tokens: `[0, s, 2s, ..., len]` with `s = step_size`,
/// the last one being `len` (so the last step may be shorter than `s`);
/// `K + 1` entries with `K = ceil(len / s)`. A length of 0 gives `[0]` (only the
/// bare prompt). A `step_size` of 0 is read as "one step": `[0, len]` (`[0]` for
/// `len = 0`); [`probe_probs`] rejects it.
pub fn step_ends(response_len: usize, step_size: usize) -> Vec<usize> {
    let s = if step_size == 0 {
        response_len.max(1)
    } else {
        step_size
    };
    let mut ends: Vec<usize> = (0..response_len).step_by(s).collect();
    ends.push(response_len);
    ends
}

/// `probs[i][k] = p_i(k)` for hypotheses `i` and steps `k = 0..=K` (see the
/// module docs), the steps being those of [`step_ends`]`(response.len(), step_size)`.
///
/// `suffix` holds the ids of the forcing suffix including the opening brace
/// (see [`probe_ids`]), `hyps[i]` the ids of hypothesis `i`; an empty
/// hypothesis gets `p_i(k) = 0`.
///
/// # Errors
/// An empty `prompt`, a `step_size` of 0, a token id outside the vocabulary, or
/// a model failure.
pub fn probe_probs<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &[u32],
    response: &[u32],
    step_size: usize,
    suffix: &[u32],
    hyps: &[Vec<u32>],
) -> Result<Vec<Vec<f32>>, ModelError> {
    let mut out = probe_probs_shared(model, prompt, &[response], step_size, suffix, hyps)?;
    Ok(out.remove(0))
}

/// [`probe_probs`] for several completions of one prompt: `out[j][i][k]` is
/// `p_i(k)` along `responses[j]`.
///
/// The prompt is encoded once and repeated as one batch row per completion;
/// each step extends all rows by their next `step_size` tokens in one pass (a
/// completion whose last step is shorter is split off and finished alone).
/// At each step the suffix is appended to a copy of the rows and the
/// hypotheses are scored after it in one more pass, which gives
/// `log pi(h_i | x, c[..e_k], s)` directly.
pub fn probe_probs_shared<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &[u32],
    responses: &[&[u32]],
    step_size: usize,
    suffix: &[u32],
    hyps: &[Vec<u32>],
) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
    if step_size == 0 {
        return Err(ModelError::Config(
            "answer probe: step_size must be at least 1, got 0".into(),
        ));
    }
    if prompt.is_empty() {
        return Err(ModelError::Config("answer probe: empty prompt".into()));
    }
    let mut out: Vec<Vec<Vec<f32>>> = responses
        .iter()
        .map(|r| vec![Vec::with_capacity(r.len() / step_size + 2); hyps.len()])
        .collect();
    if responses.is_empty() {
        return Ok(out);
    }
    // Row r of `batch` is completion `active[r]`; all rows have `done` response tokens.
    let mut active: Vec<usize> = (0..responses.len()).collect();
    let mut batch = PrefixScorer::new(model, prompt)?.repeat(responses.len())?;
    probe_rows(&batch, &active, suffix, hyps, &mut out)?;
    let mut done = 0;
    while !active.is_empty() {
        let end = done + step_size;
        let mut keep = Vec::new();
        for (row, &j) in active.iter().enumerate() {
            let len = responses[j].len();
            if len >= end {
                keep.push(row);
            } else if len > done {
                // A last step shorter than step_size: finish this one alone.
                let mut alone = batch.select(&[row])?;
                alone.extend(&responses[j][done..])?;
                probe_rows(&alone, &[j], suffix, hyps, &mut out)?;
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() != active.len() {
            batch = batch.select(&keep)?;
            active = keep.iter().map(|&row| active[row]).collect();
        }
        let chunks: Vec<&[u32]> = active.iter().map(|&j| &responses[j][done..end]).collect();
        batch.extend_rows(&chunks)?;
        probe_rows(&batch, &active, suffix, hyps, &mut out)?;
        done = end;
    }
    Ok(out)
}

/// Appends `p_i` at the current step to `out[j]` for the completions `active`
/// held as the rows of `batch`.
fn probe_rows<M: CausalLm + ?Sized>(
    batch: &PrefixScorer<'_, M>,
    active: &[usize],
    suffix: &[u32],
    hyps: &[Vec<u32>],
    out: &mut [Vec<Vec<f32>>],
) -> Result<(), ModelError> {
    let mut forced = batch.fork()?;
    forced.extend(suffix)?;
    let per_row: Vec<&[Vec<u32>]> = vec![hyps; active.len()];
    let lp = forced.score_rows(&per_row)?;
    for (row, &j) in active.iter().enumerate() {
        for (i, h) in hyps.iter().enumerate() {
            let p = if h.is_empty() {
                0.0
            } else {
                (f64::from(lp[row][i]) / h.len() as f64).exp() as f32
            };
            out[j][i].push(p);
        }
    }
    Ok(())
}

/// Token ids of the forcing suffix `probe_suffix + "{"` and of each
/// hypothesis, encoded without special tokens (no BOS).
///
/// The pieces are encoded separately, so their ids are what [`probe_probs`]
/// appends to the prefix; a tokenizer may split text differently when it is
/// encoded whole.
pub fn probe_ids(
    tok: &Tokenizer,
    probe_suffix: &str,
    hyps: &[String],
) -> Result<(Vec<u32>, Vec<Vec<u32>>), ModelError> {
    let suffix = tok.encode(&format!("{probe_suffix}{{"), false)?;
    let hyps = hyps
        .iter()
        .map(|h| tok.encode(h, false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((suffix, hyps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use barl_model::{random_weights, score_no_grad, AnyModel, Arch, ModelConfig};
    use candle_core::Device;

    #[test]
    fn step_ends_by_hand() {
        assert_eq!(step_ends(0, 128), [0]);
        assert_eq!(step_ends(1, 128), [0, 1]);
        assert_eq!(step_ends(128, 128), [0, 128]);
        assert_eq!(step_ends(129, 128), [0, 128, 129]);
        // ceil(10 / 3) = 4 steps: ends 0, 3, 6, 9, 10.
        assert_eq!(step_ends(10, 3), [0, 3, 6, 9, 10]);
        assert_eq!(step_ends(9, 3), [0, 3, 6, 9]);
        assert_eq!(step_ends(5, 1), [0, 1, 2, 3, 4, 5]);
        assert_eq!(step_ends(7, 0), [0, 7]);
        assert_eq!(step_ends(0, 0), [0]);
    }

    /// A small random Llama with a sharpened output head, so that token
    /// probabilities are far from uniform and differ between contexts.
    fn tiny_model() -> AnyModel {
        let cfg = ModelConfig {
            arch: Arch::Llama,
            vocab_size: 200,
            hidden_size: 64,
            intermediate_size: 96,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 16,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 256,
            tie_word_embeddings: false,
            attention_bias: false,
            bos_token_id: None,
            eos_token_ids: vec![],
        };
        let dev = Device::Cpu;
        let mut w = random_weights(&cfg, 7, &dev).unwrap();
        let head = (w["lm_head.weight"].clone() * 40.0).unwrap();
        w.insert("lm_head.weight".into(), head);
        AnyModel::from_weights(&cfg, &w, &dev).unwrap()
    }

    /// Deterministic token ids below 200 (an LCG).
    fn ids(len: usize, seed: u64) -> Vec<u32> {
        let mut s = seed.wrapping_mul(2862933555777941757).wrapping_add(3);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((s >> 33) % 200) as u32
            })
            .collect()
    }

    #[test]
    fn probe_matches_full_rescoring() {
        let model = tiny_model();
        let prompt = ids(5, 1);
        let response = ids(11, 2);
        let suffix = ids(3, 3);
        let hyps = vec![ids(1, 4), ids(3, 5), vec![], ids(2, 6)];
        let step = 4;
        let probs = probe_probs(&model, &prompt, &response, step, &suffix, &hyps).unwrap();
        let ends = [0, 4, 8, 11];
        assert_eq!(step_ends(response.len(), step), ends);
        assert_eq!(probs.len(), hyps.len());

        // Naive: re-encode prompt ++ response[..end] for every (step, hypothesis)
        // and take the hypothesis tokens' log-probs after the suffix.
        let mut all = Vec::new();
        for (i, h) in hyps.iter().enumerate() {
            assert_eq!(probs[i].len(), ends.len());
            for (k, &end) in ends.iter().enumerate() {
                let prefix = [&prompt[..], &response[..end]].concat();
                let cont = [&suffix[..], &h[..]].concat();
                let lp = &score_no_grad(&model, &[(prefix, cont)]).unwrap()[0];
                let want = if h.is_empty() {
                    0.0
                } else {
                    let sum: f32 = lp[suffix.len()..].iter().sum();
                    (sum / h.len() as f32).exp()
                };
                let got = probs[i][k];
                assert!(
                    (got - want).abs() <= 1e-4 * want.max(1e-3),
                    "hyp {i} step {k}: probe {got} vs naive {want}"
                );
                all.push(got);
            }
        }
        // The empty hypothesis is 0 everywhere; the others are real, varied
        // probabilities (the head is sharp enough that they are not all ~1/200).
        assert!(probs[2].iter().all(|&p| p == 0.0));
        let real: Vec<f32> = [0, 1, 3].iter().flat_map(|&i| probs[i].clone()).collect();
        assert!(real.iter().all(|&p| p > 0.0 && p <= 1.0));
        let (lo, hi) = real
            .iter()
            .fold((1f32, 0f32), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        assert!(hi > 10.0 * lo, "probabilities too flat: {lo}..{hi}");
    }

    #[test]
    fn batched_completions_match_full_rescoring() {
        // Completions of one prompt of different lengths: a multiple of the step
        // (8), shorter last steps (11, 3), longer than the rest (13) and empty.
        let model = tiny_model();
        let prompt = ids(6, 7);
        let responses: Vec<Vec<u32>> = [8, 11, 3, 13, 0]
            .iter()
            .enumerate()
            .map(|(j, &n)| ids(n, 20 + j as u64))
            .collect();
        let refs: Vec<&[u32]> = responses.iter().map(Vec::as_slice).collect();
        let suffix = ids(3, 8);
        let hyps = vec![ids(2, 9), ids(1, 10)];
        let step = 4;
        let got = probe_probs_shared(&model, &prompt, &refs, step, &suffix, &hyps).unwrap();
        for (j, r) in responses.iter().enumerate() {
            let ends = step_ends(r.len(), step);
            for (i, h) in hyps.iter().enumerate() {
                assert_eq!(got[j][i].len(), ends.len(), "completion {j}");
                for (k, &end) in ends.iter().enumerate() {
                    let prefix = [&prompt[..], &r[..end]].concat();
                    let cont = [&suffix[..], &h[..]].concat();
                    let lp = &score_no_grad(&model, &[(prefix, cont)]).unwrap()[0];
                    let sum: f32 = lp[suffix.len()..].iter().sum();
                    let want = (sum / h.len() as f32).exp();
                    let p = got[j][i][k];
                    assert!(
                        (p - want).abs() <= 1e-4 * want.max(1e-3),
                        "completion {j} hyp {i} step {k}: {p} vs {want}"
                    );
                }
            }
        }
    }

    /// A character-level BPE tokenizer whose post-processor prepends `<s>`:
    /// `<s>` 0, `x` 1, `=` 2, `{` 3, `1` 4, `2` 5, and the merge `12` 6.
    fn char_tokenizer() -> Tokenizer {
        let json = r#"{
          "version": "1.0", "truncation": null, "padding": null,
          "added_tokens": [{"id": 0, "content": "<s>", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
          "normalizer": null, "pre_tokenizer": null, "decoder": null,
          "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}},
          "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false,
            "vocab": {"<s>": 0, "x": 1, "=": 2, "{": 3, "1": 4, "2": 5, "12": 6},
            "merges": ["1 2"]}
        }"#;
        Tokenizer::from_json(json).unwrap()
    }

    #[test]
    fn probe_ids_add_the_brace_and_no_bos() {
        let tok = char_tokenizer();
        // The tokenizer does add <s> when asked to, so its absence below is real.
        assert_eq!(tok.encode("x", true).unwrap(), [0, 1]);
        let (suffix, hyps) = probe_ids(&tok, "x=", &["12".into(), "2".into()]).unwrap();
        assert_eq!(suffix, [1, 2, 3]);
        assert_eq!(hyps, [vec![6], vec![5]]);
    }

    #[test]
    fn empty_response_is_one_step_and_bad_input_errors() {
        let model = tiny_model();
        let prompt = ids(4, 8);
        let suffix = ids(2, 9);
        let hyps = vec![ids(2, 10)];
        let probs = probe_probs(&model, &prompt, &[], 128, &suffix, &hyps).unwrap();
        assert_eq!(probs.len(), 1);
        assert_eq!(probs[0].len(), 1);
        // No hypotheses: no rows.
        let none = probe_probs(&model, &prompt, &ids(3, 1), 2, &suffix, &[]).unwrap();
        assert!(none.is_empty());
        assert!(probe_probs(&model, &[], &[], 128, &suffix, &hyps).is_err());
        assert!(probe_probs(&model, &prompt, &[], 0, &suffix, &hyps).is_err());
        let err = probe_probs(&model, &prompt, &[], 4, &suffix, &[vec![999]]).unwrap_err();
        assert!(err.to_string().contains("999"), "{err}");
    }
}
