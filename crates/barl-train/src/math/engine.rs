//! A loaded language model with its tokenizer and chat template: what training,
//! evaluation and generation share, and how prompts become token ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use barl_math::prompt::{Prompt, PromptBuilder, PromptStyle};
use barl_model::{load_model, AnyModel, CausalLm, ChatMessage, LoadedModel, LoraConfig, Tokenizer};
use candle_core::{Device, Tensor};

use crate::TrainError;

/// A loaded model, ready to sample or train.
pub struct Engine {
    pub path: PathBuf,
    pub model: AnyModel,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
}

impl Engine {
    /// Loads `path`: a directory is read as a Hugging Face folder, a file as GGUF.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        if !path.exists() {
            return Err(TrainError::Setting(format!(
                "--model: {} does not exist",
                path.display()
            )));
        }
        let device = Device::Cpu;
        let load_err = |source| TrainError::Load {
            path: path.to_path_buf(),
            source,
        };
        let loaded: LoadedModel = load_model(path, &device).map_err(load_err)?;
        let model =
            AnyModel::from_weights(&loaded.config, &loaded.weights, &device).map_err(load_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            model,
            tokenizer: loaded.tokenizer,
            chat_template: loaded.chat_template,
        })
    }

    /// The engine with a LoRA adapter on its model (see
    /// `barl_model::Llama::with_adapter`); dropout masks follow `seed`.
    pub fn with_adapter(
        self,
        lora: &LoraConfig,
        adapter: &HashMap<String, Tensor>,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let model = self
            .model
            .map_decoder(|d| d.with_adapter(lora, adapter, seed))
            .map_err(|source| TrainError::Load {
                path: self.path.clone(),
                source,
            })?;
        Ok(Self { model, ..self })
    }

    /// See `barl_model::Llama::merge_for_inference` (call again after each update).
    pub fn merge_for_inference(&mut self) -> Result<(), TrainError> {
        self.model
            .decoder_mut()
            .merge_for_inference()
            .map_err(|source| TrainError::Load {
                path: self.path.clone(),
                source,
            })
    }

    /// [`Engine::load`], then the PEFT adapter in `adapter` (a folder).
    pub fn load_with_adapter(path: &Path, adapter: &Path) -> Result<Self, TrainError> {
        let engine = Self::load(path)?;
        let a =
            barl_model::load_adapter(adapter, &Device::Cpu).map_err(|source| TrainError::Load {
                path: adapter.to_path_buf(),
                source,
            })?;
        engine.with_adapter(&a.config, &a.weights, 0)
    }

    /// The chat template applied to `messages` (role, content), ending with the
    /// assistant's turn.
    pub fn render_chat(&self, messages: &[(String, String)]) -> Result<String, TrainError> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            TrainError::Setting(format!(
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
    pub fn encode(&self, text: &str, chat: bool) -> Result<Vec<u32>, TrainError> {
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
    pub fn decode(&self, ids: &[u32]) -> Result<String, TrainError> {
        Ok(self.tokenizer.decode(ids, true)?)
    }

    /// The prompt text of `question` (chat template applied for chat styles)
    /// and its token ids.
    pub fn prompt_ids(
        &self,
        builder: &PromptBuilder,
        question: &str,
    ) -> Result<(String, Vec<u32>), TrainError> {
        let chat = matches!(
            builder.style,
            PromptStyle::ChatUser | PromptStyle::ChatSystem
        );
        let text = match builder.render(question) {
            Prompt::Chat(msgs) => {
                let msgs: Vec<(String, String)> =
                    msgs.into_iter().map(|m| (m.role, m.content)).collect();
                self.render_chat(&msgs)?
            }
            Prompt::Raw(t) => t,
        };
        let ids = self.encode(&text, chat)?;
        Ok((text, ids))
    }
}
