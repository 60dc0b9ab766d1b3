//! Token efficiency (`barl analyze efficiency`): pass@k against the tokens spent to get it, for
//! k = 1..n (the paper's token-efficiency comparison, spec section 9).
//!
//! For an eval file with problems `j` (`n_j` responses, `c_j` correct, mean
//! response length `m_j` tokens):
//!
//! ```text
//! pass@k    = mean_j pass_at_k(n_j, c_j, k)        (unbiased estimator, barl-core)
//! tokens(k) = k * sum_j m_j                        (k samples of every problem)
//! ```
//!
//! for `k = 1..min_j n_j`.

use std::path::{Path, PathBuf};

use barl_core::pass_at_k;
use barl_math::data::BENCHMARKS;
use barl_math::evalfile::EvalRecord;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde::Serialize;

use crate::plot::{
    embedded_font, PlotError, AXIS_DESC_FONT_SIZE, FONT_FAMILY as FONT, GRID_BOLD, GRID_LIGHT,
    LEGEND_BORDER, LEGEND_FONT_SIZE, LINE_WIDTH, PALETTE, TICK_FONT_SIZE, TITLE_FONT_SIZE,
};
use crate::ReportError;

/// pass@k and tokens at one k.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EfficiencyPoint {
    pub k: usize,
    pub pass_at_k: f64,
    pub tokens: f64,
}

/// One file's curve.
#[derive(Debug, Clone, Serialize)]
pub struct EfficiencyCurve {
    pub file: String,
    pub label: String,
    pub problems: usize,
    /// Fewest and most responses of a problem; k runs up to `n_min`.
    pub n_min: usize,
    pub n_max: usize,
    pub points: Vec<EfficiencyPoint>,
}

/// The curve of one file's records (k = 1..min n).
pub fn efficiency_curve(
    path: &Path,
    records: &[EvalRecord],
) -> Result<Vec<EfficiencyPoint>, ReportError> {
    let shown = path.display();
    if records.is_empty() {
        return Err(ReportError::Input(format!("{shown}: no records")));
    }
    if let Some(r) = records.iter().find(|r| r.responses.is_empty()) {
        return Err(ReportError::Input(format!(
            "{shown}: problem {} has no responses",
            r.id
        )));
    }
    let n_min = records.iter().map(|r| r.responses.len()).min().unwrap_or(0);
    // Sum over problems of the mean response length.
    let tokens_per_sample: f64 = records
        .iter()
        .map(|r| r.tokens.iter().sum::<usize>() as f64 / r.tokens.len() as f64)
        .sum();
    (1..=n_min)
        .map(|k| {
            let mut total = 0.0;
            for r in records {
                let (n, c) = r.counts();
                total += pass_at_k(n, c, k).map_err(|source| ReportError::Core {
                    what: format!("{shown}: problem {}", r.id),
                    source,
                })?;
            }
            Ok(EfficiencyPoint {
                k,
                pass_at_k: total / records.len() as f64,
                tokens: k as f64 * tokens_per_sample,
            })
        })
        .collect()
}

/// Default curve labels: the file stems, or the parent folders' names when a
/// stem is a benchmark name (as `barl eval` names its files) or not unique.
pub fn default_labels(files: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let stems: Vec<String> = files.iter().map(stem).collect();
    let generic = |s: &String| {
        BENCHMARKS.contains(&s.as_str())
            || s == "arith"
            || stems.iter().filter(|t| *t == s).count() > 1
    };
    files
        .iter()
        .zip(&stems)
        .map(|(p, s)| {
            let parent = p
                .parent()
                .and_then(|d| d.file_name())
                .map(|d| d.to_string_lossy().into_owned());
            match parent {
                Some(d) if generic(s) => d,
                _ => s.clone(),
            }
        })
        .collect()
}

/// The image format of a plot file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlotKind {
    Svg,
    Png,
}

/// The format `path` asks for: `.svg` or `.png` (any case); anything else is
/// an input error naming the file.
pub fn plot_kind(path: &Path) -> Result<PlotKind, ReportError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(PlotKind::Svg),
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(PlotKind::Png),
        _ => Err(ReportError::Input(format!(
            "--out {}: the plot file must end in .svg or .png",
            path.display()
        ))),
    }
}

const PLOT_SIZE: (u32, u32) = (640, 480);

/// Draws pass@k (y) against total tokens (x) with one line and markers per
/// file; the x axis is logarithmic when the largest token count is more than
/// 10 times the smallest.
pub fn plot_efficiency(curves: &[EfficiencyCurve], path: &Path) -> Result<(), ReportError> {
    let xs = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.tokens));
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(ReportError::Input(format!(
            "--out {}: nothing to plot",
            path.display()
        )));
    }
    let log = lo > 0.0 && hi > 10.0 * lo;
    let kind = plot_kind(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let fail =
        |e: String| ReportError::Plot(PlotError(format!("plotting {}: {e}", path.display())));
    // Both backends measure (and the bitmap one draws) text with a registered
    // font; the embedded one needs no system fonts.
    embedded_font()?;
    match kind {
        PlotKind::Svg => {
            let root = SVGBackend::new(path, PLOT_SIZE).into_drawing_area();
            draw_any(&root, curves, lo, hi, log).map_err(|e| fail(e.to_string()))
        }
        PlotKind::Png => {
            let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
            draw_any(&root, curves, lo, hi, log).map_err(|e| fail(e.to_string()))
        }
    }
}

/// Picks the x axis (log or linear, with a margin) and draws.
fn draw_any<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[EfficiencyCurve],
    lo: f64,
    hi: f64,
    log: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if log {
        let (x0, x1) = (lo / 1.25, hi * 1.25);
        // Ticks at 1, 2, 5 x 10^e and grid lines at 1..9 x 10^e: plotters' own
        // log ticks start at the first power of 10 inside the range.
        let series = |mantissas: &[f64]| -> Vec<f64> {
            let (e0, e1) = (x0.log10().floor() as i32, x1.log10().ceil() as i32);
            (e0..=e1)
                .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
                .filter(|v| (x0..=x1).contains(v))
                .collect()
        };
        let x = (x0..x1)
            .log_scale()
            .with_key_points(series(&[1.0, 2.0, 5.0]))
            .with_light_points(series(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]));
        draw(root, curves, x, "total generated tokens (log scale)")
    } else {
        let pad = if hi > lo {
            0.05 * (hi - lo)
        } else {
            lo.abs().max(1.0) * 0.5
        };
        draw(
            root,
            curves,
            (lo - pad).max(0.0)..hi + pad,
            "total generated tokens",
        )
    }
}

fn draw<DB: DrawingBackend, X>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[EfficiencyCurve],
    x: X,
    x_label: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption("pass@k vs tokens", (FONT, TITLE_FONT_SIZE))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(46)
        .y_label_area_size(60)
        .build_cartesian_2d(x, 0.0..1.02f64)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("pass@k")
        .axis_desc_style((FONT, AXIS_DESC_FONT_SIZE))
        .label_style((FONT, TICK_FONT_SIZE))
        .x_label_formatter(&|v: &f64| token_label(*v))
        .y_label_formatter(&|v: &f64| format!("{v:.1}"))
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .draw()?;
    for (i, c) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.tokens, p.pass_at_k)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(LINE_WIDTH)))?
            .label(c.label.as_str())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (20, 0)], color.stroke_width(LINE_WIDTH))
                    + Circle::new((10, 0), 3, color.filled())
            });
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, LEGEND_FONT_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(LEGEND_BORDER)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A token count for a tick label: `500`, `2k`, `12.5k`, `1M`.
fn token_label(v: f64) -> String {
    let short = |x: f64, unit: &str| {
        let t = format!("{x:.1}");
        format!("{}{unit}", t.strip_suffix(".0").unwrap_or(&t))
    };
    if v.abs() >= 1e6 {
        short(v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        short(v / 1e3, "k")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, correct: &[bool], tokens: &[usize]) -> EvalRecord {
        EvalRecord {
            id: id.into(),
            benchmark: "b".into(),
            prompt: "p".into(),
            gold: "1".into(),
            responses: correct.iter().map(|_| "r".to_string()).collect(),
            extracted: correct.iter().map(|_| None).collect(),
            correct: correct.to_vec(),
            tokens: tokens.to_vec(),
            truncated: correct.iter().map(|_| false).collect(),
        }
    }

    #[test]
    fn curve_by_hand_with_unequal_n() {
        // Problem a: n = 3, c = 1, tokens 10, 20, 30 (mean 20).
        // Problem b: n = 2, c = 0, tokens 4, 6 (mean 5).
        // k = 1: pass = (1/3 + 0) / 2 = 1/6; tokens = 1 * (20 + 5) = 25.
        // k = 2: a: 1 - C(2,2)/C(3,2) = 2/3; pass = 1/3; tokens = 50. k stops at min n = 2.
        let recs = [
            rec("a", &[true, false, false], &[10, 20, 30]),
            rec("b", &[false, false], &[4, 6]),
        ];
        let pts = efficiency_curve(Path::new("f.jsonl"), &recs).unwrap();
        assert_eq!(pts.len(), 2);
        assert!((pts[0].pass_at_k - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(pts[0].tokens, 25.0);
        assert!((pts[1].pass_at_k - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(pts[1].tokens, 50.0);
    }

    #[test]
    fn empty_inputs_are_errors_naming_the_file() {
        let err = efficiency_curve(Path::new("e.jsonl"), &[]).unwrap_err();
        assert!(err.to_string().contains("e.jsonl: no records"), "{err}");
        let err = efficiency_curve(Path::new("z.jsonl"), &[rec("p7", &[], &[])]).unwrap_err();
        assert!(
            err.to_string()
                .contains("z.jsonl: problem p7 has no responses"),
            "{err}"
        );
    }

    #[test]
    fn token_labels() {
        assert_eq!(token_label(500.0), "500");
        assert_eq!(token_label(2000.0), "2k");
        assert_eq!(token_label(12500.0), "12.5k");
        assert_eq!(token_label(5e6), "5M");
    }

    #[test]
    fn labels_fall_back_to_the_folder_for_benchmark_stems() {
        let files = [
            PathBuf::from("runs/eval-grpo/gsm8k.jsonl"),
            PathBuf::from("runs/eval-barl/gsm8k.jsonl"),
        ];
        assert_eq!(default_labels(&files), ["eval-grpo", "eval-barl"]);
        let files = [
            PathBuf::from("x/base.jsonl"),
            PathBuf::from("x/arith.jsonl"),
        ];
        assert_eq!(default_labels(&files), ["base", "x"]);
        let files = [PathBuf::from("a/run.jsonl"), PathBuf::from("b/run.jsonl")];
        assert_eq!(default_labels(&files), ["a", "b"]);
    }
}
