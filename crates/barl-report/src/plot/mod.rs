//! Learning-curve plots written as PNG and SVG.
//!
//! Each [`Panel`] is one chart; each [`Series`] in it is drawn as the mean over seeds (a line) with a
//! shaded band of plus/minus one population standard deviation over seeds. [`plot_panels`] puts the
//! panels side by side and writes `<stem>.png` and `<stem>.svg` from the same drawing code.
//!
//! Text is rendered with an embedded TrueType font (Roboto Regular, Apache-2.0; see
//! `assets/fonts/LICENSE-Roboto.txt`) through plotters' pure-Rust `ab_glyph` font backend, so the PNG
//! needs no system fonts, no fontconfig/FreeType and no network.
//!
//! Missing values: a `NaN` y value is treated as a missing measurement for that seed and is left out of
//! the mean and standard deviation at that x. Where every seed is `NaN` the point is skipped and the
//! line (and band) is broken there. Infinite y values and non-finite x values are errors.

use std::fmt;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::FontRef;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::ComposedElement;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use plotters_backend::DrawingErrorKind;

use glyph_text::GlyphText;

/// Width in pixels of one panel in the PNG (and in the SVG's nominal size).
pub const PANEL_WIDTH: u32 = 500;
/// Height in pixels of the PNG (and of the SVG's nominal size).
pub const PANEL_HEIGHT: u32 = 420;

/// Largest image (in pixels) that [`plot_panels_sized`] agrees to allocate.
const MAX_PIXELS: u64 = 1 << 26;

/// The generic family plotters uses by default; registering the embedded font under it makes every
/// text element (captions, tick labels, legend) use it.
pub(crate) const FONT_FAMILY: &str = "sans-serif";
static FONT_TTF: &[u8] = include_bytes!("../../../../assets/fonts/Roboto-Regular.ttf");
static FONT: OnceLock<Result<FontRef<'static>, String>> = OnceLock::new();

pub(crate) const TITLE_FONT_SIZE: u32 = 20;
pub(crate) const AXIS_DESC_FONT_SIZE: u32 = 15;
pub(crate) const TICK_FONT_SIZE: u32 = 13;
pub(crate) const LEGEND_FONT_SIZE: u32 = 14;
/// Legend box layout (pixels), matching what is passed to plotters' series-label drawing.
const LEGEND_MARGIN: i32 = 10;
const LEGEND_SAMPLE_AREA: i32 = 30;
const LEGEND_SAMPLE_LEN: i32 = 22;
/// Distance of the legend box from the plotting area's border (pixels).
const LEGEND_INSET: i32 = 6;

/// Number of labelled ticks per axis (a hint; plotters picks round values).
const TICKS: usize = 6;

const BAND_ALPHA: f64 = 0.2;
pub(crate) const LINE_WIDTH: u32 = 2;
pub(crate) const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
pub(crate) const GRID_LIGHT: RGBColor = RGBColor(242, 242, 242);
pub(crate) const LEGEND_BORDER: RGBColor = RGBColor(170, 170, 170);

/// Series colours (the "tab10" palette), assigned to labels in order of first appearance over all
/// panels, so a method keeps its colour across panels.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One curve: y values (one Vec per seed, each aligned with `x`) drawn as the mean line with a shaded
/// band of +/- one standard deviation over seeds (population std; with one seed, no band).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y_per_seed: Vec<Vec<f64>>,
}

/// One chart: its title, axis labels, optional fixed y range (otherwise fitted to the data) and curves.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
}

/// Why a plot could not be made; the message names the offending panel/series or output file.
#[derive(Debug)]
pub struct PlotError(pub String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlotError {}

/// Draws the panels side by side (1 row, N columns) into `<path_stem>.png`
/// (`PANEL_WIDTH`*N x `PANEL_HEIGHT`) and `<path_stem>.svg`; returns the two paths.
///
/// The suffixes are appended to the stem (`runs/cmp.v2` gives `runs/cmp.v2.png`), and missing parent
/// directories are created. Errors (never panics) on an empty panel list, mismatched lengths, series
/// without seeds or points, infinite values, non-finite x, an invalid `y_range`, or I/O failure (the
/// message names the file). `NaN` y values are skipped as missing (see the module docs).
pub fn plot_panels(panels: &[Panel], path_stem: &Path) -> Result<(PathBuf, PathBuf), PlotError> {
    plot_panels_sized(panels, path_stem, PANEL_WIDTH, PANEL_HEIGHT)
}

/// [`plot_panels`] with an explicit panel size in pixels.
pub fn plot_panels_sized(
    panels: &[Panel],
    path_stem: &Path,
    width_per_panel: u32,
    height: u32,
) -> Result<(PathBuf, PathBuf), PlotError> {
    render(panels, path_stem, width_per_panel, height).map(|(png, svg, _)| (png, svg))
}

/// Parses the embedded font and registers it with plotters (once per process).
pub(crate) fn embedded_font() -> Result<&'static FontRef<'static>, PlotError> {
    FONT.get_or_init(|| {
        let font = FontRef::try_from_slice(FONT_TTF)
            .map_err(|e| format!("the embedded font Roboto-Regular.ttf is invalid: {e}"))?;
        register_font(FONT_FAMILY, FontStyle::Normal, FONT_TTF).map_err(|_| {
            "the embedded font Roboto-Regular.ttf could not be registered with plotters".to_string()
        })?;
        Ok(font)
    })
    .as_ref()
    .map_err(|e| PlotError(e.clone()))
}

/// `<stem>.<ext>`, keeping any dots already in the stem.
fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Where things ended up in one panel, in pixels of the whole image (used by the tests).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone)]
struct PanelLayout {
    plot_x: Range<i32>,
    plot_y: Range<i32>,
    /// `(x0, y0, x1, y1)` of the legend box, if the panel has a legend.
    legend: Option<(i32, i32, i32, i32)>,
}

fn render(
    panels: &[Panel],
    path_stem: &Path,
    width_per_panel: u32,
    height: u32,
) -> Result<(PathBuf, PathBuf, Vec<PanelLayout>), PlotError> {
    // Inputs are validated before drawing; this only guards against a panic inside plotters turning
    // into a crash of the trainer.
    catch_unwind(AssertUnwindSafe(|| {
        render_unguarded(panels, path_stem, width_per_panel, height)
    }))
    .unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(PlotError(format!(
            "plotting {} failed inside the plotting library: {why}",
            path_stem.display()
        )))
    })
}

fn render_unguarded(
    panels: &[Panel],
    path_stem: &Path,
    width_per_panel: u32,
    height: u32,
) -> Result<(PathBuf, PathBuf, Vec<PanelLayout>), PlotError> {
    let prepared = prepare(panels)?;
    let png_path = with_suffix(path_stem, "png");
    let svg_path = with_suffix(path_stem, "svg");

    let total_width = u32::try_from(panels.len())
        .ok()
        .and_then(|n| n.checked_mul(width_per_panel))
        .filter(|&w| w > 0 && height > 0)
        .filter(|&w| u64::from(w) * u64::from(height) <= MAX_PIXELS)
        .ok_or_else(|| {
            PlotError(format!(
                "cannot plot {}: invalid image size {} panels x {width_per_panel} x {height} px",
                png_path.display(),
                panels.len()
            ))
        })?;
    let size = (total_width, height);

    let font = embedded_font()?;

    if let Some(dir) = png_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            PlotError(format!(
                "cannot write {}: creating directory {} failed: {e}",
                png_path.display(),
                dir.display()
            ))
        })?;
    }

    let layouts = {
        let root = GlyphText {
            inner: BitMapBackend::new(&png_path, size),
            font,
        }
        .into_drawing_area();
        let layouts = draw_panels(&root, &prepared)
            .map_err(|e| PlotError(format!("failed to draw {}: {e}", png_path.display())))?;
        root.present()
            .map_err(|e| PlotError(format!("failed to write {}: {e}", png_path.display())))?;
        layouts
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw_panels(&root, &prepared)
            .map_err(|e| PlotError(format!("failed to draw {}: {e}", svg_path.display())))?;
        root.present()
            .map_err(|e| PlotError(format!("failed to draw {}: {e}", svg_path.display())))?;
    }
    std::fs::write(&svg_path, svg)
        .map_err(|e| PlotError(format!("failed to write {}: {e}", svg_path.display())))?;

    Ok((png_path, svg_path, layouts))
}

/// A point of a curve: x, mean over the seeds present, and mean -/+ std.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    x: f64,
    mean: f64,
    lo: f64,
    hi: f64,
}

/// A series ready to draw: runs of consecutive (in x order) points without gaps.
#[derive(Debug)]
struct Curve {
    label: String,
    color: RGBColor,
    band: bool,
    runs: Vec<Vec<Point>>,
}

#[derive(Debug)]
struct PreparedPanel<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    curves: Vec<Curve>,
}

/// Mean and population standard deviation of the non-NaN values; `None` if there are none.
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> Option<(f64, f64)> {
    let (n, sum) = values
        .clone()
        .filter(|v| !v.is_nan())
        .fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    if n == 0 {
        return None;
    }
    let mean = sum / n as f64;
    let var = values
        .filter(|v| !v.is_nan())
        .map(|v| (v - mean) * (v - mean))
        .sum::<f64>()
        / n as f64;
    Some((mean, var.sqrt()))
}

/// Widens a degenerate range so plotters gets a non-empty one.
fn non_degenerate(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let d = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 0.5 };
        (lo - d, hi + d)
    }
}

fn prepare(panels: &[Panel]) -> Result<Vec<PreparedPanel<'_>>, PlotError> {
    if panels.is_empty() {
        return Err(PlotError("nothing to plot: the panel list is empty".into()));
    }
    let mut labels: Vec<&str> = Vec::new();
    let mut out = Vec::with_capacity(panels.len());
    for (pi, panel) in panels.iter().enumerate() {
        let pname = format!("panel {pi} ('{}')", panel.title);
        if let Some((lo, hi)) = panel.y_range {
            if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
                return Err(PlotError(format!(
                    "{pname}: invalid y_range ({lo}, {hi}); need finite lo < hi"
                )));
            }
        }
        let mut curves = Vec::with_capacity(panel.series.len());
        for series in &panel.series {
            curves.push(prepare_series(series, &pname, &mut labels)?);
        }

        let all_points = || curves.iter().flat_map(|c| c.runs.iter().flatten());
        let x_range = panel
            .series
            .iter()
            .flat_map(|s| s.x.iter().copied())
            .fold(None, |acc: Option<(f64, f64)>, x| {
                Some(acc.map_or((x, x), |(a, b)| (a.min(x), b.max(x))))
            })
            .map_or((0.0, 1.0), |(a, b)| non_degenerate(a, b));
        let y_range = match panel.y_range {
            Some(r) => r,
            None => all_points()
                .fold(None, |acc: Option<(f64, f64)>, p| {
                    Some(acc.map_or((p.lo, p.hi), |(a, b)| (a.min(p.lo), b.max(p.hi))))
                })
                .map_or((0.0, 1.0), |(a, b)| {
                    let (a, b) = non_degenerate(a, b);
                    let pad = (b - a) * 0.05;
                    (a - pad, b + pad)
                }),
        };
        if !(x_range.1 - x_range.0).is_finite() || !(y_range.1 - y_range.0).is_finite() {
            return Err(PlotError(format!(
                "{pname}: the data span is too large to plot"
            )));
        }
        out.push(PreparedPanel {
            title: &panel.title,
            x_label: &panel.x_label,
            y_label: &panel.y_label,
            x_range,
            y_range,
            curves,
        });
    }
    Ok(out)
}

fn prepare_series<'a>(
    series: &'a Series,
    pname: &str,
    labels: &mut Vec<&'a str>,
) -> Result<Curve, PlotError> {
    let sname = format!("series '{}' in {pname}", series.label);
    let n = series.x.len();
    if series.y_per_seed.is_empty() {
        return Err(PlotError(format!(
            "{sname} has no seeds (y_per_seed is empty)"
        )));
    }
    if n == 0 {
        return Err(PlotError(format!("{sname} has no points (x is empty)")));
    }
    if let Some((i, x)) = series.x.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(PlotError(format!("{sname}: x[{i}] = {x} is not finite")));
    }
    for (seed, ys) in series.y_per_seed.iter().enumerate() {
        if ys.len() != n {
            return Err(PlotError(format!(
                "{sname}: mismatched lengths: seed {seed} has {} y values but x has {n}",
                ys.len()
            )));
        }
        if let Some((i, y)) = ys.iter().enumerate().find(|(_, y)| y.is_infinite()) {
            return Err(PlotError(format!(
                "{sname}: y_per_seed[{seed}][{i}] = {y} is not finite"
            )));
        }
    }

    let color_index = match labels.iter().position(|l| *l == series.label) {
        Some(i) => i,
        None => {
            labels.push(&series.label);
            labels.len() - 1
        }
    };

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| series.x[a].total_cmp(&series.x[b]));
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for i in order {
        match mean_std(series.y_per_seed.iter().map(|ys| ys[i])) {
            Some((mean, std)) => {
                let (lo, hi) = (mean - std, mean + std);
                if !(lo.is_finite() && hi.is_finite()) {
                    return Err(PlotError(format!(
                        "{sname}: values at x = {} are too large to average",
                        series.x[i]
                    )));
                }
                run.push(Point {
                    x: series.x[i],
                    mean,
                    lo,
                    hi,
                });
            }
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    Ok(Curve {
        label: series.label.clone(),
        color: PALETTE[color_index % PALETTE.len()],
        band: series.y_per_seed.len() > 1,
        runs,
    })
}

/// Decimals needed to show the ticks plotters places on `lo..hi` exactly (`500`, not `500.0`).
fn tick_decimals(lo: f64, hi: f64) -> usize {
    let ticks = RangedCoordf64::from(lo..hi).key_points(TICKS);
    let step = match ticks.as_slice() {
        [a, b, ..] => (b - a).abs(),
        _ => (hi - lo).abs(),
    };
    (0..=9)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() <= 1e-6 * scaled.abs().max(1.0)
        })
        .map_or(10, |d| d as usize)
}

/// Tick label format for an axis on `lo..hi`: fixed-point with [`tick_decimals`], or scientific
/// notation for very large or very small values.
fn tick_formatter(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let decimals = tick_decimals(lo, hi);
    let magnitude = lo.abs().max(hi.abs());
    let scientific = magnitude >= 1e7 || decimals > 6;
    move |v: &f64| {
        if scientific && *v != 0.0 {
            format!("{v:e}")
        } else {
            format!("{v:.decimals$}")
        }
    }
}

/// Draws all panels into `root`, side by side. Used for both the PNG and the SVG.
fn draw_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[PreparedPanel<'_>],
) -> Result<Vec<PanelLayout>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    root.split_evenly((1, panels.len()))
        .iter()
        .zip(panels)
        .map(|(area, panel)| draw_panel(area, panel))
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &PreparedPanel<'_>,
) -> Result<PanelLayout, DrawingAreaErrorKind<DB::ErrorType>> {
    let (x0, x1) = panel.x_range;
    let (y0, y1) = panel.y_range;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, (FONT_FAMILY, TITLE_FONT_SIZE))
        .margin(12)
        .margin_right(26)
        .x_label_area_size(46)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let x_fmt = tick_formatter(x0, x1);
    let y_fmt = tick_formatter(y0, y1);
    chart
        .configure_mesh()
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .axis_desc_style((FONT_FAMILY, AXIS_DESC_FONT_SIZE))
        .label_style((FONT_FAMILY, TICK_FONT_SIZE))
        .x_labels(TICKS)
        .y_labels(TICKS)
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .draw()?;

    // plotters does not clip to the plotting area, so values are clamped to the visible y range.
    let clamp = |v: f64| v.clamp(y0, y1);
    for curve in panel.curves.iter().filter(|c| c.band) {
        for run in curve.runs.iter().filter(|r| r.len() > 1) {
            let outline: Vec<(f64, f64)> = run
                .iter()
                .map(|p| (p.x, clamp(p.hi)))
                .chain(run.iter().rev().map(|p| (p.x, clamp(p.lo))))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(
                outline,
                curve.color.mix(BAND_ALPHA).filled(),
            )))?;
        }
    }
    // Lines after all bands, so no band covers a line.
    for curve in &panel.curves {
        let line_style = curve.color.stroke_width(LINE_WIDTH);
        for run in &curve.runs {
            if let [p] = run.as_slice() {
                chart.draw_series(std::iter::once(Circle::new(
                    (p.x, clamp(p.mean)),
                    3,
                    curve.color.filled(),
                )))?;
            } else {
                chart.draw_series(LineSeries::new(
                    run.iter().map(|p| (p.x, clamp(p.mean))),
                    line_style,
                ))?;
            }
        }
        let (color, band) = (curve.color, curve.band);
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label(curve.label.as_str())
            .legend(move |(x, y)| legend_sample(x, y, color, band));
    }

    let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
    let mut layout = PanelLayout {
        plot_x: plot_x.clone(),
        plot_y: plot_y.clone(),
        legend: None,
    };
    if panel.curves.is_empty() {
        return Ok(layout);
    }

    // Legend size, computed the way plotters lays out its series labels.
    let font: TextStyle = (FONT_FAMILY, LEGEND_FONT_SIZE).into();
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), &font);
    for curve in &panel.curves {
        text.push_line(curve.label.as_str());
    }
    let (text_w, text_h) = text.estimate_dimension().map_err(|e| {
        DrawingAreaErrorKind::BackendError(DrawingErrorKind::FontError(Box::new(e)))
    })?;
    let legend_w = text_w + LEGEND_SAMPLE_AREA + 2 * LEGEND_MARGIN;
    let legend_h = text_h + 2 * LEGEND_MARGIN;

    // Put the legend in the corner of the plotting area that covers the least data.
    let area_w = plot_x.end - plot_x.start;
    let area_h = plot_y.end - plot_y.start;
    let left = LEGEND_INSET;
    let right = (area_w - legend_w - LEGEND_INSET).max(0);
    let top = LEGEND_INSET;
    let bottom = (area_h - legend_h - LEGEND_INSET).max(0);
    let candidates = [(left, top), (right, bottom), (right, top), (left, bottom)];
    let to_pixels = |(x, y): (f64, f64)| {
        let (px, py) = chart.backend_coord(&(x, clamp(y)));
        (px - plot_x.start, py - plot_y.start)
    };
    let (lx, ly) = candidates
        .into_iter()
        .min_by_key(|&(cx, cy)| {
            legend_overlap(
                &panel.curves,
                (cx, cy, cx + legend_w, cy + legend_h),
                to_pixels,
            )
        })
        .unwrap_or((left, top));

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(lx, ly))
        .margin(LEGEND_MARGIN as u32)
        .legend_area_size(LEGEND_SAMPLE_AREA as u32)
        .label_font((FONT_FAMILY, LEGEND_FONT_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(LEGEND_BORDER)
        .draw()?;
    layout.legend = Some((
        plot_x.start + lx,
        plot_y.start + ly,
        plot_x.start + lx + legend_w,
        plot_y.start + ly + legend_h,
    ));
    Ok(layout)
}

/// The legend's sample of a series: its line, over a patch of its band colour when it has a band
/// (a fully transparent patch is skipped by both backends).
fn legend_sample<DB: DrawingBackend>(
    x: i32,
    y: i32,
    color: RGBColor,
    band: bool,
) -> LegendSample<DB> {
    let alpha = if band { BAND_ALPHA } else { 0.0 };
    EmptyElement::at((x, y))
        + Rectangle::new([(0, -6), (LEGEND_SAMPLE_LEN, 6)], color.mix(alpha).filled())
        + PathElement::new(
            vec![(0, 0), (LEGEND_SAMPLE_LEN, 0)],
            color.stroke_width(LINE_WIDTH),
        )
}

type LegendSample<DB> =
    ComposedElement<(i32, i32), DB, Rectangle<(i32, i32)>, PathElement<(i32, i32)>>;

/// How much of the curves (lines and bands, in pixels relative to the plotting area) falls inside the
/// box `(x0, y0, x1, y1)`: the summed vertical overlap over every other pixel column.
fn legend_overlap(
    curves: &[Curve],
    (bx0, by0, bx1, by1): (i32, i32, i32, i32),
    to_pixels: impl Fn((f64, f64)) -> (i32, i32),
) -> i64 {
    // Half the line width plus a little air around the legend box.
    const PAD: f64 = 3.0;
    let (bx0, by0, bx1, by1) = (
        f64::from(bx0),
        f64::from(by0),
        f64::from(bx1),
        f64::from(by1),
    );
    let mut total = 0.0;
    for curve in curves {
        for run in &curve.runs {
            // Pixel columns with the vertical extent of the curve there (top < bottom in pixels).
            let cols: Vec<(f64, f64, f64)> = run
                .iter()
                .map(|p| {
                    let (hi, lo) = if curve.band {
                        (p.hi, p.lo)
                    } else {
                        (p.mean, p.mean)
                    };
                    let (px, top) = to_pixels((p.x, hi));
                    let (_, bottom) = to_pixels((p.x, lo));
                    (f64::from(px), f64::from(top) - PAD, f64::from(bottom) + PAD)
                })
                .collect();
            let overlap = |top: f64, bottom: f64| (bottom.min(by1) - top.max(by0)).max(0.0);
            if let [(px, top, bottom)] = cols.as_slice() {
                if (bx0..=bx1).contains(px) {
                    total += overlap(*top, *bottom);
                }
                continue;
            }
            for pair in cols.windows(2) {
                let ((xa, ta, ba), (xb, tb, bb)) = (pair[0], pair[1]);
                let (start, end) = (xa.max(bx0), xb.min(bx1));
                let mut cx = start;
                while cx <= end {
                    let t = if xb > xa { (cx - xa) / (xb - xa) } else { 0.0 };
                    total += overlap(ta + t * (tb - ta), ba + t * (bb - ba));
                    cx += 2.0;
                }
            }
        }
    }
    total.round() as i64
}

mod glyph_text;

#[cfg(test)]
mod tests;
