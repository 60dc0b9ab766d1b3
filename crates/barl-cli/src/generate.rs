//! `barl generate`: completions from the command line, to see that a model
//! loaded right, or JSONL in and out for batches.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use barl_model::{sample, FinishReason, SampleConfig};
use clap::Args;
use serde_json::{json, Value};

use crate::UsageError;
use barl_train::math::engine::Engine;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Model: a GGUF file or a Hugging Face folder (config.json, *.safetensors, tokenizer.json)
    #[arg(long)]
    pub model: PathBuf,
    /// A LoRA adapter (PEFT folder) applied to --model without merging
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// One prompt; the completion is printed to stdout
    #[arg(long, conflicts_with = "input")]
    pub prompt: Option<String>,
    /// JSONL file of prompts (field `prompt`, or `messages` as a list of {role, content}); `-` for stdin. One JSON line per prompt is written to --output
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Where the JSONL results of --input go [stdout]
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Apply the model's chat template (the prompt becomes the user's message)
    #[arg(long)]
    pub chat: bool,
    /// System message placed before the user's message (with --chat)
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Most new tokens per completion
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass in (0, 1]; 1 disables
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Seed of the sampler
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prompts decoded together in one batch
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
}

struct Job {
    /// The input line's JSON object (echoed back), or None for --prompt.
    source: Option<Value>,
    ids: Vec<u32>,
}

pub fn run(args: &GenerateArgs) -> Result<()> {
    if args.prompt.is_none() && args.input.is_none() {
        return Err(UsageError("give --prompt TEXT or --input FILE.jsonl".into()).into());
    }
    if args.batch_size == 0 {
        return Err(UsageError("--batch-size must be at least 1".into()).into());
    }
    let mut cfg = SampleConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        ..SampleConfig::default()
    };
    cfg.validate()
        .map_err(|e| UsageError(format!("sampling options: {e}")))?;
    let started = Instant::now();
    let engine = match &args.adapter {
        Some(a) => Engine::load_with_adapter(&args.model, a)?,
        None => Engine::load(&args.model)?,
    };
    let loaded_s = started.elapsed().as_secs_f64();

    let mut jobs = Vec::new();
    if let Some(text) = &args.prompt {
        let messages = messages_of(args, text);
        jobs.push(Job {
            source: None,
            ids: encode(&engine, args, text, &messages)?,
        });
    } else if let Some(path) = &args.input {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(BufReader::new(std::io::stdin()))
        } else {
            let file = std::fs::File::open(path)
                .map_err(|e| UsageError(format!("--input {}: {e}", path.display())))?;
            Box::new(BufReader::new(file))
        };
        for (i, line) in reader.split(b'\n').enumerate() {
            let at = format!("{}:{}", path.display(), i + 1);
            let line = line.with_context(|| format!("reading {at}"))?;
            let line = std::str::from_utf8(&line)
                .map_err(|_| UsageError(format!("{at}: not valid UTF-8")))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .map_err(|e| UsageError(format!("{at}: not JSON ({e})")))?;
            let (text, messages) =
                prompt_of(&value, args).map_err(|msg| UsageError(format!("{at}: {msg}")))?;
            jobs.push(Job {
                ids: encode(&engine, args, &text, &messages)?,
                source: Some(value),
            });
        }
    }

    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .map_err(|e| UsageError(format!("--output {}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    cfg.stop_tokens = engine.stop_tokens();
    let gen_started = Instant::now();
    let mut new_tokens = 0usize;
    for (b, chunk) in jobs.chunks(args.batch_size).enumerate() {
        let prompts: Vec<&[u32]> = chunk.iter().map(|j| j.ids.as_slice()).collect();
        // Prompt i draws from stream i whatever --batch-size is.
        let cfg = SampleConfig {
            first_stream: (b * args.batch_size) as u64,
            ..cfg.clone()
        };
        let completions = sample(&engine.model, &prompts, &cfg)?;
        for (job, c) in chunk.iter().zip(completions) {
            new_tokens += c.tokens.len();
            let text = engine.decode(&c.tokens)?;
            let finish = match c.finish {
                FinishReason::Stop => "stop",
                FinishReason::Length => "length",
            };
            match &job.source {
                None => writeln!(out, "{text}")?,
                Some(src) => {
                    let mut obj = src.clone();
                    if let Some(map) = obj.as_object_mut() {
                        map.insert("completion".into(), json!(text));
                        map.insert("completion_tokens".into(), json!(c.tokens.len()));
                        map.insert("finish_reason".into(), json!(finish));
                    }
                    writeln!(out, "{}", serde_json::to_string(&obj)?)?;
                }
            }
        }
    }
    out.flush()?;
    let gen_s = gen_started.elapsed().as_secs_f64();
    eprintln!(
        "generate: {} prompt(s), {} new tokens in {:.2} s ({:.1} tokens/s); model loaded in {:.2} s",
        jobs.len(),
        new_tokens,
        gen_s,
        new_tokens as f64 / gen_s.max(1e-9),
        loaded_s
    );
    Ok(())
}

fn messages_of(args: &GenerateArgs, user: &str) -> Vec<(String, String)> {
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(("system".to_string(), system.clone()));
    }
    messages.push(("user".to_string(), user.to_string()));
    messages
}

fn encode(
    engine: &Engine,
    args: &GenerateArgs,
    text: &str,
    messages: &[(String, String)],
) -> Result<Vec<u32>> {
    if args.chat {
        let rendered = engine.render_chat(messages)?;
        Ok(engine.encode(&rendered, true)?)
    } else {
        Ok(engine.encode(text, false)?)
    }
}

/// The prompt text (raw) and the chat messages of one input line.
fn prompt_of(
    value: &Value,
    args: &GenerateArgs,
) -> Result<(String, Vec<(String, String)>), String> {
    if let Some(text) = value.get("prompt").and_then(Value::as_str) {
        return Ok((text.to_string(), messages_of(args, text)));
    }
    if let Some(list) = value.get("messages").and_then(Value::as_array) {
        if !args.chat {
            return Err("`messages` needs --chat".into());
        }
        let mut messages = Vec::new();
        for (i, m) in list.iter().enumerate() {
            let role = m.get("role").and_then(Value::as_str);
            let content = m.get("content").and_then(Value::as_str);
            match (role, content) {
                (Some(r), Some(c)) => messages.push((r.to_string(), c.to_string())),
                _ => return Err(format!("messages[{i}] needs string `role` and `content`")),
            }
        }
        return Ok((String::new(), messages));
    }
    Err("no string `prompt` and no `messages` list".into())
}
