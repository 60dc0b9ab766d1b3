//! Held-out evaluation: `n` sampled responses per problem, answers extracted and
//! graded, one record per problem appended to a JSONL file as it goes, so an
//! interrupted evaluation resumes where it stopped. Used by `barl eval` and by
//! the trainer's periodic evaluation.

use std::collections::HashSet;
use std::path::Path;

use barl_math::data::Problem;
use barl_math::evalfile::{EvalRecord, EvalWriter};
use barl_math::extract::{extract_answer, ExtractOptions};
use barl_math::grader::Grader;
use barl_math::prompt::PromptBuilder;
use barl_model::{sample, FinishReason, SampleConfig};

use super::engine::Engine;
use crate::TrainError;

/// What every evaluated set shares.
pub struct EvalSetup<'a> {
    /// Samples per problem.
    pub n: usize,
    /// Sampling settings (stop tokens included).
    pub sampling: SampleConfig,
    /// Sequences per batch.
    pub batch_size: usize,
    pub grader: &'a dyn Grader,
    pub builder: &'a PromptBuilder,
    /// Whether a response cut off at the length limit may still earn the
    /// last-number credit (off by default: it has no final answer).
    pub credit_truncated: bool,
}

/// Where an evaluation of one set stands, reported after every batch (and once
/// before the first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalProgress {
    /// Problems found already evaluated in the file (a resumed evaluation).
    pub resumed: usize,
    /// Problems evaluated in this call so far.
    pub done: usize,
    /// Problems this call evaluates.
    pub todo: usize,
    /// Mean correctness over every response in the file so far.
    pub accuracy: f64,
}

/// Evaluates `problems` (named `bench`), appending one record per problem to
/// `path` as it goes; problems already in `path` are not sampled again. Returns
/// all records of `bench` in the file.
pub fn eval_problems(
    engine: &Engine,
    setup: &EvalSetup,
    bench: &str,
    problems: &[Problem],
    path: &Path,
    on_progress: &mut dyn FnMut(EvalProgress),
) -> Result<Vec<EvalRecord>, TrainError> {
    let n = setup.n;
    let (mut writer, done) = EvalWriter::resume(path)?;
    let done_ids: HashSet<String> = done.iter().map(|r| r.id.clone()).collect();
    let mut records: Vec<EvalRecord> = done.into_iter().filter(|r| r.benchmark == bench).collect();
    // (position in the benchmark, problem): the position fixes the sampler streams.
    let todo: Vec<(usize, &Problem)> = problems
        .iter()
        .enumerate()
        .filter(|(_, p)| !done_ids.contains(&p.id))
        .collect();
    let (mut hits, mut seen) = count_correct(&records);
    let mut progress = EvalProgress {
        resumed: done_ids.len(),
        done: 0,
        todo: todo.len(),
        accuracy: hits as f64 / seen.max(1) as f64,
    };
    on_progress(progress);
    // Whole problems per batch, so each record is written complete.
    let per_batch = (setup.batch_size / n).max(1);
    for chunk in todo.chunks(per_batch) {
        let mut prompts_text = Vec::new();
        let mut ids = Vec::new();
        for (_, p) in chunk {
            let (text, tokens) = engine.prompt_ids(setup.builder, &p.question)?;
            for _ in 0..n {
                ids.push(tokens.clone());
            }
            prompts_text.push(text);
        }
        // Sample s of the problem at position i draws from stream i * n + s,
        // so results depend neither on the batch size nor on resuming (records
        // are written in order, so the unfinished problems are contiguous).
        let cfg = SampleConfig {
            first_stream: (chunk[0].0 * n) as u64,
            ..setup.sampling.clone()
        };
        let completions =
            sample(&engine.model, &ids, &cfg).map_err(|source| TrainError::Sampling {
                what: format!("{bench} problem {}", chunk[0].1.id),
                source,
            })?;
        for (j, (_, p)) in chunk.iter().enumerate() {
            let mine = &completions[j * n..(j + 1) * n];
            let mut rec = EvalRecord {
                id: p.id.clone(),
                benchmark: bench.to_string(),
                prompt: prompts_text[j].clone(),
                gold: p.gold.clone(),
                responses: Vec::new(),
                extracted: Vec::new(),
                correct: Vec::new(),
                tokens: Vec::new(),
                truncated: Vec::new(),
            };
            for c in mine {
                let text = engine.decode(&c.tokens)?;
                let truncated = c.finish == FinishReason::Length;
                let opts =
                    ExtractOptions::default().for_response(truncated, setup.credit_truncated);
                let answer = extract_answer(&text, &opts);
                let ok = answer
                    .as_deref()
                    .map(|a| setup.grader.grade(a, &p.gold).correct)
                    .unwrap_or(false);
                rec.responses.push(text);
                rec.extracted.push(answer);
                rec.correct.push(ok);
                rec.tokens.push(c.tokens.len());
                rec.truncated.push(truncated);
                hits += ok as usize;
                seen += 1;
            }
            writer.write(&rec)?;
            records.push(rec);
        }
        progress.done += chunk.len();
        progress.accuracy = hits as f64 / seen.max(1) as f64;
        on_progress(progress);
    }
    Ok(records)
}

/// (correct responses, responses) over `records`.
fn count_correct(records: &[EvalRecord]) -> (usize, usize) {
    records.iter().fold((0, 0), |(h, s), r| {
        let (n, c) = r.counts();
        (h + c, s + n)
    })
}

/// Mean correctness over every response of `records`.
pub fn accuracy(records: &[EvalRecord]) -> f64 {
    let (hits, total) = count_correct(records);
    hits as f64 / total.max(1) as f64
}
