//! The hypotheses of a prompt: candidate final answers taken from its sampled
//! completions (spec section 4).

use barl_math::extract::last_boxed;

/// Candidate final answers of one prompt, with the one that stands for the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hypotheses {
    /// The candidate answers `h_1..h_m`, in first-seen order.
    pub answers: Vec<String>,
    /// Index into `answers` of `y*` itself or of the candidate verified equal to it.
    pub truth: usize,
}

impl Hypotheses {
    /// The truth's answer text (`answers[truth]`).
    pub fn truth_answer(&self) -> &str {
        &self.answers[self.truth]
    }
}

/// Builds the hypotheses of a prompt from its `n` completions and gold answer `gold`.
///
/// Rules, in order (the reference behaviour, spec section 4):
/// 1. each response gives the content of its last `\boxed{...}`, or the whole
///    response when it has none;
/// 2. exact duplicates are dropped, keeping first-seen order;
/// 3. candidates longer than `max_len` characters (Unicode scalar values) are dropped;
/// 4. the first candidate with `equal(candidate, gold)` is the truth; when none is,
///    `gold` itself is appended as the truth;
/// 5. at most `max_count` hypotheses are kept: non-truth candidates are dropped from
///    the end, the truth always stays (so `max_count = 0` still keeps the truth).
pub fn build_hypotheses(
    responses: &[String],
    gold: &str,
    equal: &dyn Fn(&str, &str) -> bool,
    max_len: usize,
    max_count: usize,
) -> Hypotheses {
    let mut answers: Vec<String> = Vec::new();
    for response in responses {
        let candidate = last_boxed(response).unwrap_or_else(|| response.clone());
        if candidate.chars().count() <= max_len && !answers.contains(&candidate) {
            answers.push(candidate);
        }
    }
    let truth = match answers.iter().position(|a| equal(a, gold)) {
        Some(i) => i,
        None => {
            answers.push(gold.to_string());
            answers.len() - 1
        }
    };
    // Cap: keep the first `max_count - 1` others plus the truth, in their order.
    let keep_others = max_count.saturating_sub(1);
    let mut others_kept = 0;
    let mut capped = Vec::with_capacity(answers.len().min(max_count.max(1)));
    let mut new_truth = 0;
    for (i, a) in answers.into_iter().enumerate() {
        if i == truth {
            new_truth = capped.len();
            capped.push(a);
        } else if others_kept < keep_others {
            others_kept += 1;
            capped.push(a);
        }
    }
    Hypotheses {
        answers: capped,
        truth: new_truth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(a: &str, b: &str) -> bool {
        a == b
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dedupe_keeps_first_seen_order_and_finds_truth() {
        let r = strings(&[
            "so \\boxed{7}",
            "first \\boxed{3} then \\boxed{5}",
            "again \\boxed{7}",
            "\\boxed{4}",
        ]);
        let h = build_hypotheses(&r, "5", &exact, 20, 8);
        assert_eq!(h.answers, ["7", "5", "4"]);
        assert_eq!(h.truth, 1);
        assert_eq!(h.truth_answer(), "5");
    }

    #[test]
    fn no_box_uses_whole_response_and_long_ones_are_dropped() {
        // "42" has no box: the whole text is the candidate. The 21-character
        // box is dropped at max_len 20; "é" counts as one character, so the
        // 20-character "éééééééééééééééééééé" (40 bytes) is kept.
        let long = "\\boxed{123456789012345678901}";
        let accented = format!("\\boxed{{{}}}", "é".repeat(20));
        let r = vec!["42".to_string(), long.to_string(), accented];
        let h = build_hypotheses(&r, "9", &exact, 20, 8);
        assert_eq!(h.answers, ["42".to_string(), "é".repeat(20), "9".into()]);
        assert_eq!(h.truth, 2);
    }

    #[test]
    fn truth_found_by_the_verifier_not_only_exact_text() {
        // A verifier that ignores spaces: "1/2" is the truth for gold "1 / 2",
        // and gold is not appended.
        let loose = |a: &str, b: &str| a.replace(' ', "") == b.replace(' ', "");
        let r = strings(&["\\boxed{2}", "\\boxed{1/2}", "\\boxed{1 /2}"]);
        let h = build_hypotheses(&r, "1 / 2", &loose, 20, 8);
        assert_eq!(h.answers, ["2", "1/2", "1 /2"]);
        assert_eq!(h.truth, 1);
    }

    #[test]
    fn truth_appended_when_no_candidate_verifies() {
        let r = strings(&["\\boxed{2}", "\\boxed{3}"]);
        let h = build_hypotheses(&r, "5", &exact, 20, 8);
        assert_eq!(h.answers, ["2", "3", "5"]);
        assert_eq!(h.truth, 2);
    }

    #[test]
    fn cap_keeps_the_truth() {
        let r = strings(&["\\boxed{1}", "\\boxed{2}", "\\boxed{3}", "\\boxed{4}"]);
        // Truth appended at the end: cap 3 keeps "1", "2" and the truth "9".
        let h = build_hypotheses(&r, "9", &exact, 20, 3);
        assert_eq!(h.answers, ["1", "2", "9"]);
        assert_eq!(h.truth, 2);
        // Truth in the middle ("2"): cap 2 keeps "1" and "2".
        let h = build_hypotheses(&r, "2", &exact, 20, 2);
        assert_eq!(h.answers, ["1", "2"]);
        assert_eq!(h.truth, 1);
        // Truth last among candidates ("4"): cap 2 keeps "1" and "4".
        let h = build_hypotheses(&r, "4", &exact, 20, 2);
        assert_eq!(h.answers, ["1", "4"]);
        assert_eq!(h.truth, 1);
        // Cap 1 (and 0) leaves the truth alone.
        for cap in [0, 1] {
            let h = build_hypotheses(&r, "3", &exact, 20, cap);
            assert_eq!(h.answers, ["3"]);
            assert_eq!(h.truth, 0);
        }
    }

    #[test]
    fn no_responses_gives_just_gold() {
        let h = build_hypotheses(&[], "17", &exact, 20, 8);
        assert_eq!(h.answers, ["17"]);
        assert_eq!(h.truth, 0);
    }
}
