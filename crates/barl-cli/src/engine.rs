//! What `generate` and `eval` share: loading a model (GGUF file or Hugging Face
//! folder) with its tokenizer and chat template, and turning prompts into ids.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use barl_model::{
    load_gguf, load_hf_folder, AnyModel, CausalLm, ChatMessage, LoadedModel, Tokenizer,
};
use candle_core::Device;

use crate::UsageError;

/// A loaded model, ready to sample.
pub struct Engine {
    pub path: PathBuf,
    pub model: AnyModel,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
}

impl Engine {
    /// Loads `path`: a directory is read as a Hugging Face folder, a file as GGUF.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(UsageError(format!("--model: {} does not exist", path.display())).into());
        }
        let device = Device::Cpu;
        let loaded: LoadedModel = if path.is_dir() {
            load_hf_folder(path, &device)
        } else {
            load_gguf(path, &device)
        }
        .with_context(|| format!("loading {}", path.display()))?;
        let model = AnyModel::from_weights(&loaded.config, &loaded.weights, &device)
            .with_context(|| format!("building the model of {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            model,
            tokenizer: loaded.tokenizer,
            chat_template: loaded.chat_template,
        })
    }

    /// The chat template applied to `messages`, ending with the assistant's turn.
    pub fn render_chat(&self, messages: &[(String, String)]) -> Result<String> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            UsageError(format!(
                "{} has no chat template; drop --chat or use a raw prompt template",
                self.path.display()
            ))
        })?;
        let messages: Vec<ChatMessage> = messages
            .iter()
            .map(|(role, content)| ChatMessage {
                role: role.clone(),
                content: content.clone(),
            })
            .collect();
        let bos = self.tokenizer.bos_token().unwrap_or_default();
        let eos = self.tokenizer.eos_token().unwrap_or_default();
        Ok(barl_model::render_chat(
            template, &messages, true, &bos, &eos,
        )?)
    }

    /// Token ids of a prompt. Rendered chat text already carries its special
    /// tokens (as Hugging Face's `apply_chat_template` does), so only raw text
    /// gets the tokenizer's own BOS.
    pub fn encode(&self, text: &str, chat: bool) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, !chat)?)
    }

    /// Generation stops on the config's EOS ids and the tokenizer's EOS.
    pub fn stop_tokens(&self) -> Vec<u32> {
        let mut stops = self.model.config().eos_token_ids.clone();
        if let Some(eos) = self.tokenizer.eos_token_id() {
            if !stops.contains(&eos) {
                stops.push(eos);
            }
        }
        stops
    }

    /// Text of generated ids, special tokens dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode(ids, true)?)
    }
}
