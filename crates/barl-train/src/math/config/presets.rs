//! The built-in presets: one table of name, purpose and TOML text (the files
//! in `crates/barl-train/presets/`). Load one with the path `preset:NAME`.

/// A built-in run config.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    /// What it is for, one line.
    pub about: &'static str,
    /// Its TOML text.
    pub text: &'static str,
}

/// `name: "about"` rows to [`Preset`]s, the text read from `presets/<name>.toml`.
macro_rules! presets {
    ($($name:literal: $about:literal,)*) => {
        &[$(Preset {
            name: $name,
            about: $about,
            text: include_str!(concat!("../../../presets/", $name, ".toml")),
        },)*]
    };
}

/// Every built-in preset.
pub const PRESETS: &[Preset] = presets! {
    "paper": "BARL with the paper's math settings (spec section 9) on MATH train; set model=PATH",
    "paper-grpo": "`paper` with the GRPO (Markovian RL) baseline",
    "paper-progress": "`paper` with the Progress baseline",
    "paper-length-constrained": "`paper-grpo` with responses capped at 32 tokens",
    "cpu-arith-grpo": "GRPO on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
    "cpu-arith-progress": "Progress on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
    "cpu-arith-barl": "BARL on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
    "tiny-test": "six tiny steps, for tests with a randomly initialised model",
};

/// The TOML text of a built-in preset (see [`PRESETS`]).
pub fn preset_text(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|p| p.name == name).map(|p| p.text)
}
