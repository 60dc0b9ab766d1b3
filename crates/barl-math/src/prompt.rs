//! Prompts for math problems: the chain-of-thought instruction as chat messages
//! (rendered through the model's chat template in `barl-model`) or as a raw
//! template string.
//!
//! The instruction defaults to [`DEFAULT_INSTRUCTION`], the one used by the
//! Qwen2.5-Math evaluation toolkit and most R1-style RL recipes.
//!
//! ```
//! use barl_math::prompt::{Prompt, PromptBuilder, PromptStyle};
//! let b = PromptBuilder::new(PromptStyle::ChatSystem);
//! let Prompt::Chat(msgs) = b.render("What is $1+1$?") else { unreachable!() };
//! assert_eq!(msgs[0].role, "system");
//! assert_eq!(msgs[1].content, "What is $1+1$?");
//! ```

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The usual math chain-of-thought instruction.
pub const DEFAULT_INSTRUCTION: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// Where the instruction goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptStyle {
    /// One user message: `question + "\n" + instruction`.
    ChatUser,
    /// A system message with the instruction, then the question as the user message.
    ChatSystem,
    /// A raw string: `{question}` and `{instruction}` in the template are
    /// replaced; no chat template is applied.
    Raw(String),
}

/// An unusable prompt style or template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("unknown prompt style `{0}` (expected chat-user, chat-system or raw:TEMPLATE)")]
    UnknownStyle(String),
    #[error("raw prompt template has no `{{question}}` placeholder: {0:?}")]
    NoQuestionPlaceholder(String),
}

impl PromptStyle {
    /// A raw template, checked to contain `{question}`.
    pub fn raw(template: &str) -> Result<Self, PromptError> {
        if !template.contains("{question}") {
            return Err(PromptError::NoQuestionPlaceholder(template.to_string()));
        }
        Ok(Self::Raw(template.to_string()))
    }
}

impl FromStr for PromptStyle {
    type Err = PromptError;

    /// `chat-user` (or `user`), `chat-system` (or `system`), or `raw:TEMPLATE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chat-user" | "chat_user" | "user" => Ok(Self::ChatUser),
            "chat-system" | "chat_system" | "system" => Ok(Self::ChatSystem),
            _ => match s.strip_prefix("raw:") {
                Some(template) => Self::raw(template),
                None => Err(PromptError::UnknownStyle(s.to_string())),
            },
        }
    }
}

/// A rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Messages for the model's chat template.
    Chat(Vec<ChatMessage>),
    /// Text to tokenize as is.
    Raw(String),
}

/// Style plus instruction text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptBuilder {
    pub style: PromptStyle,
    /// The instruction; empty means none (no system message, no extra line).
    pub instruction: String,
}

impl PromptBuilder {
    /// A builder with [`DEFAULT_INSTRUCTION`].
    pub fn new(style: PromptStyle) -> Self {
        Self {
            style,
            instruction: DEFAULT_INSTRUCTION.to_string(),
        }
    }

    /// Replaces the instruction text.
    pub fn with_instruction(mut self, instruction: impl Into<String>) -> Self {
        self.instruction = instruction.into();
        self
    }

    /// The prompt for one question (which should carry no instruction of its
    /// own; the loaders strip those, see [`crate::data`]).
    pub fn render(&self, question: &str) -> Prompt {
        let instruction = self.instruction.trim();
        match &self.style {
            PromptStyle::ChatUser => {
                let content = if instruction.is_empty() {
                    question.to_string()
                } else {
                    format!("{}\n{instruction}", question.trim_end())
                };
                Prompt::Chat(vec![ChatMessage::new("user", content)])
            }
            PromptStyle::ChatSystem => {
                let mut msgs = Vec::with_capacity(2);
                if !instruction.is_empty() {
                    msgs.push(ChatMessage::new("system", instruction));
                }
                msgs.push(ChatMessage::new("user", question));
                Prompt::Chat(msgs)
            }
            PromptStyle::Raw(template) => {
                Prompt::Raw(fill_template(template, question, instruction))
            }
        }
    }
}

/// Replaces `{question}` and `{instruction}` in one pass over the template, so
/// braces inside the question (LaTeX is full of them) are never re-expanded.
fn fill_template(template: &str, question: &str, instruction: &str) -> String {
    let mut out = String::with_capacity(template.len() + question.len() + instruction.len());
    let mut rest = template;
    while let Some(pos) = rest.find('{') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{question}") {
            out.push_str(question);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{instruction}") {
            out.push_str(instruction);
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_user_appends_instruction() {
        let p = PromptBuilder::new(PromptStyle::ChatUser).render("Find $x$.");
        assert_eq!(
            p,
            Prompt::Chat(vec![ChatMessage::new(
                "user",
                "Find $x$.\nPlease reason step by step, and put your final answer within \\boxed{}."
            )])
        );
    }

    #[test]
    fn chat_system_puts_instruction_first() {
        let p = PromptBuilder::new(PromptStyle::ChatSystem)
            .with_instruction("Box it.")
            .render("Q");
        assert_eq!(
            p,
            Prompt::Chat(vec![
                ChatMessage::new("system", "Box it."),
                ChatMessage::new("user", "Q")
            ])
        );
        // Empty instruction: no system message at all.
        let p = PromptBuilder::new(PromptStyle::ChatSystem)
            .with_instruction("")
            .render("Q");
        assert_eq!(p, Prompt::Chat(vec![ChatMessage::new("user", "Q")]));
    }

    #[test]
    fn raw_template_fills_placeholders_once() {
        let style: PromptStyle = "raw:Problem: {question}\n{instruction}\nSolution:"
            .parse()
            .unwrap();
        let b = PromptBuilder::new(style).with_instruction("Box it.");
        // A question that itself contains a placeholder-looking string stays literal.
        assert_eq!(
            b.render(r"Is \frac{1}{2} = {instruction}?"),
            Prompt::Raw("Problem: Is \\frac{1}{2} = {instruction}?\nBox it.\nSolution:".into())
        );
    }

    #[test]
    fn style_parsing_errors() {
        assert_eq!("system".parse::<PromptStyle>(), Ok(PromptStyle::ChatSystem));
        assert_eq!(
            "raw:no placeholder".parse::<PromptStyle>(),
            Err(PromptError::NoQuestionPlaceholder("no placeholder".into()))
        );
        assert_eq!(
            "chatty".parse::<PromptStyle>(),
            Err(PromptError::UnknownStyle("chatty".into()))
        );
    }
}
