//! The one progress-bar style of the CLI: `<what> [=====>   ] pos/len <unit>, elapsed (eta) msg`.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items counted in `unit` ("steps", "problems"), labelled
/// `what`; hidden when `quiet`.
pub fn bar(quiet: bool, what: &str, len: usize, unit: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let template = format!(
        "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{elapsed}} (eta {{eta}}) {{msg}}"
    );
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}
