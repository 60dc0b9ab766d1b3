//! Reflection statistics: how often responses use self-reflection phrases
//! ("wait", "let me check", ...) and whether responses that do are more often
//! correct.
//!
//! Matching is case-insensitive and by whole words: text and phrases are both
//! split into words (maximal runs of letters and digits, lower-cased), and a
//! phrase matches where its words appear consecutively. So `wait` counts in
//! "Wait, no" but not in "waiting", and `double-check` matches "Double-check"
//! and "double check". The count of a response is the sum over phrases of their
//! occurrences.

use serde::{Deserialize, Serialize};

/// The default phrase list.
pub const DEFAULT_PHRASES: &[&str] = &[
    "wait",
    "let me check",
    "alternatively",
    "verify",
    "mistake",
    "double-check",
    "re-check",
    "let me reconsider",
];

/// Lower-cased words of `text` (runs of alphanumeric characters).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Counts reflection phrases in responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReflectionCounter {
    /// The phrases as given (for display).
    phrases: Vec<String>,
    /// Each phrase as lower-cased words; phrases without any word are dropped.
    patterns: Vec<Vec<String>>,
}

impl Default for ReflectionCounter {
    fn default() -> Self {
        Self::new(DEFAULT_PHRASES)
    }
}

impl ReflectionCounter {
    /// A counter for `phrases`; phrases with no letters or digits are ignored.
    pub fn new<S: AsRef<str>>(phrases: &[S]) -> Self {
        let mut kept = Vec::new();
        let mut patterns = Vec::new();
        for p in phrases {
            let w = words(p.as_ref());
            if !w.is_empty() {
                kept.push(p.as_ref().trim().to_string());
                patterns.push(w);
            }
        }
        Self {
            phrases: kept,
            patterns,
        }
    }

    /// The phrases counted, in order.
    pub fn phrases(&self) -> &[String] {
        &self.phrases
    }

    /// Occurrences of each phrase in `text`, in phrase order.
    pub fn count_by_phrase(&self, text: &str) -> Vec<usize> {
        let w = words(text);
        self.patterns
            .iter()
            .map(|pat| {
                w.windows(pat.len())
                    .filter(|win| *win == pat.as_slice())
                    .count()
            })
            .collect()
    }

    /// Total occurrences of all phrases in `text`.
    pub fn count(&self, text: &str) -> usize {
        self.count_by_phrase(text).iter().sum()
    }

    /// Statistics over `(response, correct)` pairs.
    pub fn stats<'a, I>(&self, pairs: I) -> ReflectionStats
    where
        I: IntoIterator<Item = (&'a str, bool)>,
    {
        let mut acc = StatsAccumulator::new(self.phrases.len());
        for (text, correct) in pairs {
            acc.add(&self.count_by_phrase(text), correct);
        }
        acc.finish(&self.phrases)
    }
}

/// Share and mean count of one phrase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhraseStats {
    pub phrase: String,
    /// Mean occurrences per response.
    pub mean_count: f64,
    /// Fraction of responses with at least one occurrence.
    pub share: f64,
}

/// Reflection statistics of a set of responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectionStats {
    /// Number of responses.
    pub responses: usize,
    /// Mean phrase count per response (0 when there are none).
    pub mean_count: f64,
    /// Fraction of responses with count >= 1, `n_with / responses`.
    pub share_with_any: f64,
    /// Accuracy of the responses with count >= 1 (`None` when `n_with == 0`).
    pub acc_with: Option<f64>,
    /// Accuracy of the responses with count 0 (`None` when `n_without == 0`).
    pub acc_without: Option<f64>,
    /// Responses with at least one phrase.
    pub n_with: usize,
    /// Responses with none.
    pub n_without: usize,
    /// The same per phrase, in phrase order.
    pub per_phrase: Vec<PhraseStats>,
}

/// Sums for [`ReflectionStats`].
struct StatsAccumulator {
    responses: usize,
    total: usize,
    n_with: usize,
    correct_with: usize,
    correct_without: usize,
    phrase_total: Vec<usize>,
    phrase_with: Vec<usize>,
}

impl StatsAccumulator {
    fn new(n_phrases: usize) -> Self {
        Self {
            responses: 0,
            total: 0,
            n_with: 0,
            correct_with: 0,
            correct_without: 0,
            phrase_total: vec![0; n_phrases],
            phrase_with: vec![0; n_phrases],
        }
    }

    fn add(&mut self, counts: &[usize], correct: bool) {
        let count: usize = counts.iter().sum();
        self.responses += 1;
        self.total += count;
        if count > 0 {
            self.n_with += 1;
            self.correct_with += usize::from(correct);
        } else {
            self.correct_without += usize::from(correct);
        }
        for (i, &c) in counts.iter().enumerate() {
            self.phrase_total[i] += c;
            self.phrase_with[i] += usize::from(c > 0);
        }
    }

    fn finish(self, phrases: &[String]) -> ReflectionStats {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let n_without = self.responses - self.n_with;
        ReflectionStats {
            responses: self.responses,
            mean_count: ratio(self.total, self.responses),
            share_with_any: ratio(self.n_with, self.responses),
            acc_with: (self.n_with > 0).then(|| ratio(self.correct_with, self.n_with)),
            acc_without: (n_without > 0).then(|| ratio(self.correct_without, n_without)),
            n_with: self.n_with,
            n_without,
            per_phrase: phrases
                .iter()
                .enumerate()
                .map(|(i, p)| PhraseStats {
                    phrase: p.clone(),
                    mean_count: ratio(self.phrase_total[i], self.responses),
                    share: ratio(self.phrase_with[i], self.responses),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_case_insensitive() {
        let c = ReflectionCounter::default();
        // "Wait" (1) + "wait" (1); "waiting" and "awaited" do not count.
        assert_eq!(c.count("Wait, waiting... I awaited. wait"), 2);
        // "verify" yes, "verified"/"verifying" no (whole word).
        assert_eq!(c.count("Let's verify. I verified, verifying."), 1);
        // Multi-word: "Let me check" (1) + "let me  CHECK" across spaces (1).
        assert_eq!(c.count("Let me check this; let me  CHECK again"), 2);
        // Hyphenated phrases match with or without the hyphen.
        assert_eq!(c.count("Double-check: double check, re-check, recheck"), 3);
        assert_eq!(c.count("No reflection here."), 0);
    }

    #[test]
    fn counts_hand_checked_paragraph() {
        let c = ReflectionCounter::default();
        let text = "Wait, that is a mistake. Alternatively, let me reconsider. \
                    Let me check by substitution; to verify, wait again.";
        // wait 2, let me check 1, alternatively 1, verify 1, mistake 1,
        // double-check 0, re-check 0, let me reconsider 1 -> 7.
        assert_eq!(c.count_by_phrase(text), vec![2, 1, 1, 1, 1, 0, 0, 1]);
        assert_eq!(c.count(text), 7);
    }

    #[test]
    fn custom_phrases_and_empty_ones() {
        let c = ReflectionCounter::new(&["Hmm", "  ", "on second thought"]);
        assert_eq!(
            c.phrases(),
            &["Hmm".to_string(), "on second thought".to_string()]
        );
        assert_eq!(c.count("hmm. On second thought, hmm"), 3);
    }

    #[test]
    fn stats_by_hand() {
        let c = ReflectionCounter::new(&["wait"]);
        let pairs = [
            ("wait wait", true),  // count 2
            ("wait", false),      // count 1
            ("fine", true),       // 0
            ("ok", false),        // 0
            ("fine again", true), // 0
        ];
        let s = c.stats(pairs);
        assert_eq!(s.responses, 5);
        // mean count (2+1+0+0+0)/5 = 0.6; share 2/5 = 0.4.
        assert!((s.mean_count - 0.6).abs() < 1e-12);
        assert!((s.share_with_any - 0.4).abs() < 1e-12);
        // with: 1 correct of 2 = 0.5; without: 2 correct of 3.
        assert_eq!((s.n_with, s.n_without), (2, 3));
        assert_eq!(s.acc_with, Some(0.5));
        assert!((s.acc_without.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.per_phrase[0].share, 0.4);

        let empty = c.stats(std::iter::empty());
        assert_eq!(
            (empty.responses, empty.acc_with, empty.acc_without),
            (0, None, None)
        );
    }
}
