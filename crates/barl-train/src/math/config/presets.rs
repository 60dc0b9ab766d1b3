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

/// Every built-in preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "paper",
        about: "BARL with the paper's math settings (spec section 9) on MATH train; set model=PATH",
        text: include_str!("../../../presets/paper.toml"),
    },
    Preset {
        name: "paper-grpo",
        about: "`paper` with the GRPO (Markovian RL) baseline",
        text: include_str!("../../../presets/paper-grpo.toml"),
    },
    Preset {
        name: "paper-progress",
        about: "`paper` with the Progress baseline",
        text: include_str!("../../../presets/paper-progress.toml"),
    },
    Preset {
        name: "paper-length-constrained",
        about: "`paper-grpo` with responses capped at 32 tokens",
        text: include_str!("../../../presets/paper-length-constrained.toml"),
    },
    Preset {
        name: "cpu-arith-grpo",
        about: "GRPO on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
        text: include_str!("../../../presets/cpu-arith-grpo.toml"),
    },
    Preset {
        name: "cpu-arith-progress",
        about: "Progress on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
        text: include_str!("../../../presets/cpu-arith-progress.toml"),
    },
    Preset {
        name: "cpu-arith-barl",
        about: "BARL on generated arithmetic: a small CPU run for SmolLM2-135M-Instruct",
        text: include_str!("../../../presets/cpu-arith-barl.toml"),
    },
    Preset {
        name: "tiny-test",
        about: "six tiny steps, for tests with a randomly initialised model",
        text: include_str!("../../../presets/tiny-test.toml"),
    },
];

/// The TOML text of a built-in preset (see [`PRESETS`]).
pub fn preset_text(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|p| p.name == name).map(|p| p.text)
}
