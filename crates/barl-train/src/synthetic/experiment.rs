//! Running methods x seeds (in parallel) and summarising over seeds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::config::{Method, SyntheticConfig};
use super::trainer::{train_one, RunResult, StepMetrics};
use crate::TrainError;

/// Trains every (method, seed) pair on up to `jobs` threads. Results come back
/// in (method, seed) order whatever the scheduling; each run is deterministic
/// in its seed. `on_step(method, seed, metrics)` is called from worker threads.
pub fn run_experiment(
    cfg: &SyntheticConfig,
    methods: &[Method],
    seeds: &[u64],
    jobs: usize,
    on_step: &(dyn Fn(Method, u64, &StepMetrics) + Sync),
) -> Result<Vec<RunResult>, TrainError> {
    cfg.validate()?;
    let work: Vec<(Method, u64)> = methods
        .iter()
        .flat_map(|&m| seeds.iter().map(move |&s| (m, s)))
        .collect();
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<RunResult, TrainError>>>> =
        Mutex::new((0..work.len()).map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, work.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= work.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let (method, seed) = work[i];
                let r = train_one(cfg, method, seed, &mut |m| on_step(method, seed, m));
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                slots
                    .lock()
                    .expect("no worker panics while holding the lock")[i] = Some(r);
            });
        }
    });
    let slots = slots.into_inner().expect("workers finished");
    let mut out = Vec::with_capacity(work.len());
    for slot in slots.into_iter().flatten() {
        out.push(slot?);
    }
    Ok(out)
}

/// Mean, sample standard deviation (n - 1; 0 for one seed) and per-seed values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds.
    pub std: f64,
    /// The values, in the order of `Summary::seeds`.
    pub per_seed: Vec<f64>,
}

impl MetricStats {
    /// Statistics of `values`.
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len() as f64;
        let mean = if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / n
        };
        let std = if values.len() < 2 {
            0.0
        } else {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        };
        Self {
            mean,
            std,
            per_seed: values,
        }
    }
}

/// The `summary.json` schema (version 2). Metrics are read at the final
/// evaluation of each run. `methods` maps a method name to metric name to stats.
/// Metric names: `train_success`, `test_success`, `train_success_greedy`,
/// `test_success_greedy`, `train_attempts`, `test_attempts`,
/// `test_switch_rate` (the `test_*` ones only when there are test prompts, the
/// switch rate only when every seed's test episodes made a second attempt),
/// `first_attempt_dependence`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Schema version of this file.
    pub schema_version: u32,
    /// Training steps of each run.
    pub steps: usize,
    /// Seeds, in the order of every `per_seed` list.
    pub seeds: Vec<u64>,
    /// method -> metric -> stats.
    pub methods: BTreeMap<String, BTreeMap<String, MetricStats>>,
    /// The test success `steps_to_test_target` is measured against.
    pub test_target: f64,
    /// method -> first evaluation step at which the seed-mean sampled test
    /// success reached `test_target` (absent: never).
    pub steps_to_test_target: BTreeMap<String, usize>,
}

/// Summarises runs (as returned by [`run_experiment`]) per method over seeds.
pub fn summarize(cfg: &SyntheticConfig, runs: &[RunResult]) -> Summary {
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let mut methods = BTreeMap::new();
    let mut reach = BTreeMap::new();
    for method in Method::ALL {
        let mine: Vec<&RunResult> = runs.iter().filter(|r| r.method == method).collect();
        if mine.is_empty() {
            continue;
        }
        let mut metrics: BTreeMap<String, MetricStats> = BTreeMap::new();
        let finals: Vec<_> = mine.iter().filter_map(|r| r.evals.last()).collect();
        let mut put = |name: &str, f: &dyn Fn(&super::trainer::EvalMetrics) -> Option<f64>| {
            let v: Vec<f64> = finals.iter().filter_map(|e| f(e)).collect();
            if v.len() == finals.len() {
                metrics.insert(name.to_string(), MetricStats::of(v));
            }
        };
        put("train_success", &|e| Some(e.train_success));
        put("train_success_greedy", &|e| Some(e.train_success_greedy));
        put("train_attempts", &|e| Some(e.train_attempts));
        put("test_success", &|e| e.test_success);
        put("test_success_greedy", &|e| e.test_success_greedy);
        put("test_attempts", &|e| e.test_attempts);
        put("test_switch_rate", &|e| e.test_switch_rate);
        put("first_attempt_dependence", &|e| e.first_attempt_dependence);
        if let Some(step) = first_step_at(&mine, TEST_TARGET) {
            reach.insert(method.name().to_string(), step);
        }
        methods.insert(method.name().to_string(), metrics);
    }
    Summary {
        schema_version: 2,
        steps: cfg.steps,
        seeds,
        methods,
        test_target: TEST_TARGET,
        steps_to_test_target: reach,
    }
}

/// The test success the summary times each method against.
pub const TEST_TARGET: f64 = 0.8;

/// First evaluation step at which the mean over `runs` (one per seed, same
/// evaluation steps) of the sampled test success is at least `target`.
pub fn first_step_at(runs: &[&RunResult], target: f64) -> Option<usize> {
    let first = runs.first()?;
    (0..first.evals.len()).find_map(|i| {
        let vals: Option<Vec<f64>> = runs
            .iter()
            .map(|r| r.evals.get(i).and_then(|e| e.test_success))
            .collect();
        let vals = vals?;
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        (mean >= target).then_some(first.evals[i].step)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_sample_std() {
        // mean (1 + 2 + 4) / 3 = 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9;
        // / (3 - 1) = 7/3; sqrt = 1.527525
        let s = MetricStats::of(vec![1.0, 2.0, 4.0]);
        assert!((s.mean - 2.333333).abs() < 1e-6);
        assert!((s.std - 1.527525).abs() < 1e-6);
        assert_eq!(MetricStats::of(vec![0.5]).std, 0.0);
    }

    fn run(test: &[f64]) -> RunResult {
        RunResult {
            method: Method::Barl,
            seed: 0,
            steps: vec![],
            evals: test
                .iter()
                .enumerate()
                .map(|(i, &t)| super::super::trainer::EvalMetrics {
                    step: 10 * i,
                    test_success: Some(t),
                    ..Default::default()
                })
                .collect(),
            greedy_transcripts: vec![],
        }
    }

    /// The step is read off the seed-mean curve: means 0.45, 0.75, 0.85 at
    /// steps 0, 10, 20, so 0.8 is first reached at step 20.
    #[test]
    fn target_step_uses_the_mean_over_seeds() {
        let (a, b) = (run(&[0.1, 0.9, 0.7]), run(&[0.8, 0.6, 1.0]));
        assert_eq!(first_step_at(&[&a, &b], 0.8), Some(20));
        assert_eq!(first_step_at(&[&a, &b], 0.9), None);
        assert_eq!(first_step_at(&[&a], 0.8), Some(10));
    }
}
