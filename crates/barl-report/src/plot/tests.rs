//! Tests of `plot`.

use super::*;
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("barl-plot-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const METHODS: [&str; 3] = ["grpo", "barl", "barl-prior"];

/// Deterministic noise in [-0.5, 0.5).
fn noise(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
}

/// Rising success curves in [0, 1], one series per method, `seeds` seeds each.
fn synthetic_panels(seeds: usize) -> Vec<Panel> {
    let x: Vec<f64> = (0..=40).map(|i| f64::from(i) * 50.0).collect();
    let mut state = 42u64;
    let mut panel = |title: &str, ceiling: f64| Panel {
        title: title.to_string(),
        x_label: "step".to_string(),
        y_label: "success rate".to_string(),
        y_range: Some((0.0, 1.0)),
        series: METHODS
            .iter()
            .enumerate()
            .map(|(m, label)| Series {
                label: label.to_string(),
                x: x.clone(),
                y_per_seed: (0..seeds)
                    .map(|_| {
                        x.iter()
                            .map(|&s| {
                                let rate = 1.0 - (-s / (300.0 + 400.0 * m as f64)).exp();
                                let top = ceiling * (1.0 - 0.25 * m as f64);
                                (top * rate + 0.15 * noise(&mut state)).clamp(0.0, 1.0)
                            })
                            .collect()
                    })
                    .collect(),
            })
            .collect(),
    };
    vec![
        panel("Train success", 0.95),
        panel("Test success (unseen symbol)", 0.7),
    ]
}

fn is_dark(p: &image::Rgb<u8>) -> bool {
    p.0.iter().all(|&c| c < 100)
}

fn near(p: &image::Rgb<u8>, c: RGBColor, tol: i32) -> bool {
    let RGBColor(r, g, b) = c;
    p.0.iter()
        .zip([r, g, b])
        .all(|(&a, b)| (i32::from(a) - i32::from(b)).abs() <= tol)
}

fn count_in(
    img: &image::RgbImage,
    xs: Range<i32>,
    ys: Range<i32>,
    pred: impl Fn(&image::Rgb<u8>) -> bool,
) -> usize {
    ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| pred(img.get_pixel(x as u32, y as u32)))
        .count()
}

#[test]
fn writes_png_and_svg_with_text_lines_bands_and_legend() {
    let dir = TempDir::new("full");
    let stem = dir.0.join("curves");
    let panels = synthetic_panels(5);
    let (png, svg, layouts) =
        render(&panels, &stem, PANEL_WIDTH, PANEL_HEIGHT).expect("plot succeeds");
    assert_eq!(png, dir.0.join("curves.png"));
    assert_eq!(svg, dir.0.join("curves.svg"));
    assert!(png.is_file() && svg.is_file());

    // PNG signature and IHDR, parsed by hand.
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (2 * PANEL_WIDTH, PANEL_HEIGHT));

    let img = image::load_from_memory(&bytes).expect("decodes").to_rgb8();
    assert_eq!(img.dimensions(), (2 * PANEL_WIDTH, PANEL_HEIGHT));
    assert_eq!(layouts.len(), 2);

    for layout in &layouts {
        let (xs, ys) = (layout.plot_x.clone(), layout.plot_y.clone());
        let area = (xs.len() * ys.len()) as f64;
        assert!(area > 100_000.0, "plotting area too small: {layout:?}");
        let non_white = count_in(&img, xs.clone(), ys.clone(), |p| p.0 != [255; 3]);
        assert!(
            non_white as f64 > 0.1 * area,
            "plotting area mostly blank: {non_white} of {area}"
        );
        let mut colours: Vec<[u8; 3]> = ys
            .clone()
            .flat_map(|y| xs.clone().map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(x as u32, y as u32).0)
            .collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 30, "only {} colours", colours.len());

        // Each method's line colour, and the bands' light tints of it.
        for colour in &PALETTE[..3] {
            let line = count_in(&img, xs.clone(), ys.clone(), |p| near(p, *colour, 8));
            assert!(line > 150, "too few pixels of {colour:?}: {line}");
            let band = colour.mix(BAND_ALPHA);
            let tint = RGBColor(
                (255.0 - (255.0 - f64::from(band.0)) * BAND_ALPHA) as u8,
                (255.0 - (255.0 - f64::from(band.1)) * BAND_ALPHA) as u8,
                (255.0 - (255.0 - f64::from(band.2)) * BAND_ALPHA) as u8,
            );
            let shaded = count_in(&img, xs.clone(), ys.clone(), |p| near(p, tint, 3));
            assert!(shaded > 150, "too few band pixels of {colour:?}: {shaded}");
        }

        // Text: dark pixels in the legend box (the series lines and the border are not dark) and
        // in the title above the plotting area.
        let (lx0, ly0, lx1, ly1) = layout.legend.expect("legend drawn");
        assert!(lx0 >= xs.start && lx1 <= xs.end && ly0 >= ys.start && ly1 <= ys.end);
        let legend_text = count_in(&img, lx0 + 2..lx1 - 1, ly0 + 2..ly1 - 1, is_dark);
        assert!(
            legend_text > 100,
            "no legend text: {legend_text} dark pixels"
        );
        let title_text = count_in(&img, xs.clone(), 0..ys.start, is_dark);
        assert!(title_text > 100, "no title text: {title_text} dark pixels");
    }

    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg"));
    for needle in
        METHODS
            .iter()
            .copied()
            .chain(["Train success", "Test success (unseen symbol)", "step"])
    {
        assert!(svg_text.contains(needle), "SVG lacks text {needle:?}");
    }
    assert!(svg_text.contains("<polygon"), "SVG has no bands");
}

#[test]
fn plot_panels_returns_paths_and_one_seed_has_no_band() {
    let dir = TempDir::new("one-seed");
    let stem = dir.0.join("nested").join("run.v2");
    let panels = synthetic_panels(1);
    let (png, svg) = plot_panels(&panels, &stem).expect("plot succeeds");
    assert_eq!(png, dir.0.join("nested").join("run.v2.png"));
    assert_eq!(svg, dir.0.join("nested").join("run.v2.svg"));
    assert!(png.is_file());
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(!svg_text.contains("<polygon"), "one seed must draw no band");
    assert!(svg_text.contains("barl-prior"));
}

#[test]
fn nan_values_are_skipped_and_break_the_line() {
    let dir = TempDir::new("nan");
    let mut panels = synthetic_panels(3);
    panels[0].series[0].y_per_seed[1][4] = f64::NAN;
    for ys in &mut panels[0].series[1].y_per_seed {
        ys[10] = f64::NAN;
    }
    panels[1].y_range = None;
    let (png, _) = plot_panels(&panels, &dir.0.join("nan")).expect("NaN is skipped");
    assert!(png.is_file());

    let prepared = prepare(&panels).unwrap();
    assert_eq!(prepared[0].curves[0].runs.len(), 1);
    assert_eq!(prepared[0].curves[1].runs.len(), 2);
    assert_eq!(prepared[0].curves[1].runs[0].len(), 10);
    let (lo, hi) = prepared[1].y_range;
    assert!(
        lo < 0.05 && hi > 0.6 && hi < 1.2,
        "fitted y range ({lo}, {hi})"
    );
}

#[test]
fn mean_and_population_std() {
    let (m, s) = mean_std([1.0, 3.0, f64::NAN].into_iter()).unwrap();
    assert_eq!((m, s), (2.0, 1.0));
    assert_eq!(mean_std([0.5].into_iter()), Some((0.5, 0.0)));
    assert_eq!(mean_std([f64::NAN].into_iter()), None);
}

#[test]
fn tick_labels_use_just_enough_decimals() {
    assert_eq!(tick_decimals(0.0, 2000.0), 0);
    assert_eq!(tick_decimals(0.0, 1.0), 1);
    assert_eq!(tick_decimals(0.0, 0.05), 2);
    assert_eq!(tick_formatter(0.0, 2000.0)(&500.0), "500");
    assert_eq!(tick_formatter(0.0, 1.0)(&0.2), "0.2");
    assert_eq!(tick_formatter(0.0, 1e9)(&2e8), "2e8");
    assert_eq!(tick_formatter(0.0, 1e9)(&0.0), "0");
}

#[test]
fn x_order_does_not_matter() {
    let series = Series {
        label: "s".into(),
        x: vec![2.0, 0.0, 1.0],
        y_per_seed: vec![vec![0.2, 0.0, 0.1]],
    };
    let curve = prepare_series(&series, "p", &mut Vec::new()).unwrap();
    let xs: Vec<f64> = curve.runs[0].iter().map(|p| p.x).collect();
    assert_eq!(xs, [0.0, 1.0, 2.0]);
}

fn expect_err(panels: &[Panel], stem: &Path, needle: &str) {
    let err = plot_panels(panels, stem).expect_err("must fail");
    assert!(
        err.to_string().contains(needle),
        "error {err:?} lacks {needle:?}"
    );
}

#[test]
fn errors_instead_of_panicking() {
    let dir = TempDir::new("errors");
    let stem = dir.0.join("bad");
    expect_err(&[], &stem, "empty");

    let mut p = synthetic_panels(2);
    p[1].series[2].y_per_seed[1].pop();
    expect_err(&p, &stem, "mismatched lengths");
    expect_err(&p, &stem, "barl-prior");

    let mut p = synthetic_panels(2);
    p[0].series[0].y_per_seed.clear();
    expect_err(&p, &stem, "no seeds");

    let mut p = synthetic_panels(2);
    p[0].series[0].x.clear();
    p[0].series[0].y_per_seed = vec![vec![], vec![]];
    expect_err(&p, &stem, "no points");

    let mut p = synthetic_panels(2);
    p[0].series[1].x[3] = f64::NAN;
    expect_err(&p, &stem, "x[3]");

    let mut p = synthetic_panels(2);
    p[0].series[1].y_per_seed[0][3] = f64::INFINITY;
    expect_err(&p, &stem, "not finite");

    let mut p = synthetic_panels(2);
    p[0].y_range = Some((1.0, 1.0));
    expect_err(&p, &stem, "y_range");

    let mut p = synthetic_panels(2);
    p[0].series[0].y_per_seed[0][0] = f64::MAX;
    p[0].series[0].y_per_seed[1][0] = f64::MAX;
    expect_err(&p, &stem, "too large");

    // I/O failure: the parent "directory" is a file; the message names the file.
    let blocker = dir.0.join("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    expect_err(&synthetic_panels(2), &blocker.join("out"), "out.png");

    assert!(plot_panels_sized(&synthetic_panels(1), &stem, 0, 100).is_err());
    assert!(!dir.0.join("bad.png").exists());
}

#[test]
fn font_registration_is_idempotent() {
    let a = embedded_font().unwrap();
    let b = embedded_font().unwrap();
    assert!(std::ptr::eq(a, b));
}
