//! Rollouts on running vLLM servers (OpenAI-compatible `/v1/completions`),
//! and the weight sync that keeps them on the trained policy.
//!
//! - [`VllmServers::sample`]: `n` completions of each prompt, sent as token
//!   ids (the prompt is tokenised and templated by barl, exactly as for the
//!   local engine), prompts spread round-robin over the servers, all requests
//!   in flight at once; each completion comes back as token ids (stop token
//!   included, as the local sampler returns them) with the server's log-probs.
//! - [`VllmServers::reload_weights`]: every server reloads its weights in
//!   place from a Hugging Face folder (`POST /collective_rpc` with
//!   `reload_weights`, which needs `VLLM_SERVER_DEV_MODE=1`) and drops its
//!   prefix cache (`POST /reset_prefix_cache`).
//!
//! Each request is retried with doubling back-off on a transport error or a
//! 5xx answer; what still fails is an error naming the server's URL. Start
//! servers with `scripts/vllm-cpu.sh start` (or any vLLM deployment).

use std::path::Path;
use std::time::Duration;

use barl_model::{Completion, FinishReason};
use serde_json::{json, Value};

/// What went wrong talking to a server; names its URL.
#[derive(Debug, thiserror::Error)]
#[error("vLLM server {url}: {message}")]
pub struct ServerError {
    pub url: String,
    pub message: String,
}

/// The sampling settings sent with each request.
#[derive(Clone, Debug, PartialEq)]
pub struct VllmSampling {
    pub n: usize,
    pub max_tokens: usize,
    /// 0 is greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub stop_token_ids: Vec<u32>,
    /// Prompt `i` of a call is sent with seed `seed + i` (wrapping), so a
    /// prompt's samples do not depend on which server draws them.
    pub seed: u64,
}

/// One or more vLLM servers serving the same model.
pub struct VllmServers {
    urls: Vec<String>,
    /// The model name each server answers to (its `/v1/models` first entry).
    models: Vec<String>,
    agent: ureq::Agent,
    retries: usize,
    backoff: Duration,
    /// The LoRA adapter requests sample with (see [`VllmServers::load_lora`]).
    adapter: std::sync::Mutex<Option<String>>,
}

impl VllmServers {
    /// Connects to `urls` (e.g. `http://127.0.0.1:8000`), asking each for
    /// its model name. `timeout` bounds each request; a failed request is
    /// tried `retries` more times.
    pub fn connect(
        urls: &[String],
        timeout: Duration,
        retries: usize,
    ) -> Result<Self, ServerError> {
        if urls.is_empty() {
            return Err(ServerError {
                url: "(none)".into(),
                message: "no server URL given (rollout.urls)".into(),
            });
        }
        let mut servers = Self {
            urls: urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            models: Vec::new(),
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            retries,
            backoff: Duration::from_millis(500),
            adapter: Default::default(),
        };
        for i in 0..servers.urls.len() {
            let v = servers.call(i, "GET", "/v1/models", None)?;
            let name = v["data"][0]["id"]
                .as_str()
                .ok_or_else(|| servers.err(i, "/v1/models lists no model"))?;
            servers.models.push(name.to_string());
        }
        Ok(servers)
    }

    fn err(&self, server: usize, message: impl Into<String>) -> ServerError {
        ServerError {
            url: self.urls[server].clone(),
            message: message.into(),
        }
    }

    /// One JSON request to server `server` and its JSON answer (`Null` for
    /// an empty one), see [`VllmServers::request`].
    fn call(
        &self,
        server: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ServerError> {
        let text = self.request(server, method, path, body)?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| {
            self.err(
                server,
                format!("{path}: answer is not JSON ({e}): {}", clip(&text)),
            )
        })
    }

    /// One request to server `server` and the text of its answer, retried
    /// on transport errors and 5xx answers; a 4xx answer is an error at once
    /// (with its body).
    fn request(
        &self,
        server: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, ServerError> {
        let url = format!("{}{path}", self.urls[server]);
        let mut wait = self.backoff;
        let mut attempt = 0;
        loop {
            let req = self.agent.request(method, &url);
            let res = match body {
                Some(b) => req.send_json(b.clone()),
                None => req.call(),
            };
            let failure = match res {
                Ok(r) => {
                    return r
                        .into_string()
                        .map_err(|e| self.err(server, format!("{path}: reading the answer: {e}")));
                }
                Err(ureq::Error::Status(code, r)) if code < 500 => {
                    let text = r.into_string().unwrap_or_default();
                    return Err(
                        self.err(server, format!("{path} answered {code}: {}", clip(&text)))
                    );
                }
                Err(ureq::Error::Status(code, r)) => format!(
                    "{path} answered {code}: {}",
                    clip(&r.into_string().unwrap_or_default())
                ),
                // ureq's own text repeats the URL, which the error names already.
                Err(ureq::Error::Transport(t)) => {
                    let mut m = format!("{path}: {}", t.kind());
                    if let Some(msg) = t.message() {
                        m += &format!(": {msg}");
                    }
                    if let Some(cause) = std::error::Error::source(&t) {
                        m += &format!(": {cause}");
                    }
                    m
                }
            };
            if attempt >= self.retries {
                let tries = attempt + 1;
                return Err(self.err(server, format!("{failure} ({tries} tries)")));
            }
            attempt += 1;
            std::thread::sleep(wait);
            wait *= 2;
        }
    }

    /// `cfg.n` completions of each of `prompts` (token ids), in prompt order.
    pub fn sample(
        &self,
        prompts: &[&[u32]],
        cfg: &VllmSampling,
    ) -> Result<Vec<Vec<Completion>>, ServerError> {
        std::thread::scope(|s| {
            let handles: Vec<_> = prompts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let server = i % self.urls.len();
                    s.spawn(move || {
                        self.sample_one(server, p, cfg, cfg.seed.wrapping_add(i as u64))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a sampling thread panicked"))
                .collect()
        })
    }

    fn sample_one(
        &self,
        server: usize,
        prompt: &[u32],
        cfg: &VllmSampling,
        seed: u64,
    ) -> Result<Vec<Completion>, ServerError> {
        let adapter = self.adapter.lock().expect("adapter name lock").clone();
        let body = json!({
            "model": adapter.unwrap_or_else(|| self.models[server].clone()),
            "prompt": prompt,
            "n": cfg.n,
            "max_tokens": cfg.max_tokens,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "stop_token_ids": cfg.stop_token_ids,
            // The token ids are what barl trains on; text is not used.
            "return_token_ids": true,
            "logprobs": 0,
            // vLLM's seed is a signed 64-bit integer.
            "seed": seed & i64::MAX as u64,
            "skip_special_tokens": false,
        });
        let v = self.call(server, "POST", "/v1/completions", Some(&body))?;
        parse_completions(&v, cfg.n).map_err(|m| self.err(server, format!("/v1/completions: {m}")))
    }

    /// Every server reloads its weights from the Hugging Face folder `dir`
    /// (which it must be able to read) and drops its prefix cache.
    pub fn reload_weights(&self, dir: &Path) -> Result<(), ServerError> {
        let body = json!({
            "method": "reload_weights",
            "kwargs": { "weights_path": dir.display().to_string() },
        });
        for i in 0..self.urls.len() {
            self.call(i, "POST", "/collective_rpc", Some(&body))?;
            self.call(i, "POST", "/reset_prefix_cache", None)?;
        }
        Ok(())
    }
}

impl VllmServers {
    /// Every server drops the adapter loaded before (if any) and loads the
    /// PEFT folder `dir` under `name` (`/v1/load_lora_adapter`; the server
    /// runs with `--enable-lora` and VLLM_ALLOW_RUNTIME_LORA_UPDATING); later
    /// requests sample with it. A fresh name each time, so no server keeps
    /// an older copy cached under the same name.
    pub fn load_lora(&self, name: &str, dir: &Path) -> Result<(), ServerError> {
        let mut current = self.adapter.lock().expect("adapter name lock");
        for i in 0..self.urls.len() {
            if let Some(old) = current.as_deref() {
                let body = json!({ "lora_name": old });
                // The LoRA endpoints answer in plain text.
                self.request(i, "POST", "/v1/unload_lora_adapter", Some(&body))?;
            }
            let body = json!({ "lora_name": name, "lora_path": dir.display().to_string() });
            self.request(i, "POST", "/v1/load_lora_adapter", Some(&body))?;
        }
        *current = Some(name.to_string());
        Ok(())
    }
}

/// The `n` choices of a `/v1/completions` answer for one prompt, by index.
pub fn parse_completions(v: &Value, n: usize) -> Result<Vec<Completion>, String> {
    let choices = v["choices"].as_array().ok_or("no `choices` array")?;
    if choices.len() != n {
        return Err(format!("{} choices for n = {n}", choices.len()));
    }
    let mut out: Vec<Option<Completion>> = vec![None; n];
    for c in choices {
        let index = c["index"].as_u64().ok_or("a choice without `index`")? as usize;
        let tokens = numbers(&c["token_ids"], "token_ids", |t| {
            t.as_u64().map(|t| t as u32)
        })?;
        let logprobs = numbers(
            &c["logprobs"]["token_logprobs"],
            "logprobs.token_logprobs",
            |l| l.as_f64().map(|l| l as f32),
        )?;
        if logprobs.len() != tokens.len() {
            return Err(format!(
                "{} log-probs for {} tokens",
                logprobs.len(),
                tokens.len()
            ));
        }
        let finish = match c["finish_reason"].as_str() {
            Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            other => return Err(format!("finish_reason {other:?}")),
        };
        let slot = out
            .get_mut(index)
            .ok_or_else(|| format!("choice index {index} for n = {n}"))?;
        *slot = Some(Completion {
            tokens,
            logprobs,
            finish,
        });
    }
    out.into_iter()
        .enumerate()
        .map(|(i, c)| c.ok_or(format!("no choice with index {i}")))
        .collect()
}

/// The array `v` of a choice (field `what`), each entry read by `read`.
fn numbers<T>(v: &Value, what: &str, read: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("a choice without `{what}`"))?;
    items
        .iter()
        .map(|x| read(x).ok_or_else(|| format!("`{what}` holds {x}, not a number")))
        .collect()
}

/// The start of a long answer, for an error line.
fn clip(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer of vLLM 0.32.0 (trimmed to the fields read), n = 2.
    fn answer() -> Value {
        json!({"choices": [
            {"index": 1, "token_ids": [7042, 30], "finish_reason": "stop",
             "logprobs": {"token_logprobs": [-0.25, -0.5], "tokens": ["a", "b"]}},
            {"index": 0, "token_ids": [7042, 3805, 731], "finish_reason": "length",
             "logprobs": {"token_logprobs": [-0.25, -6.75, -0.75], "tokens": ["a", "c", "d"]}}
        ]})
    }

    #[test]
    fn completions_come_back_by_index_with_tokens_logprobs_and_finish() {
        let c = parse_completions(&answer(), 2).unwrap();
        assert_eq!(c[0].tokens, vec![7042, 3805, 731]);
        assert_eq!(c[0].logprobs, vec![-0.25, -6.75, -0.75]);
        assert_eq!(c[0].finish, FinishReason::Length);
        assert_eq!(c[1].tokens, vec![7042, 30]);
        assert_eq!(c[1].finish, FinishReason::Stop);
    }

    #[test]
    fn malformed_answers_are_errors_saying_what_is_wrong() {
        assert_eq!(
            parse_completions(&answer(), 3).unwrap_err(),
            "2 choices for n = 3"
        );
        let mut v = answer();
        v["choices"][0]["logprobs"]["token_logprobs"] = json!([-0.25]);
        assert_eq!(
            parse_completions(&v, 2).unwrap_err(),
            "1 log-probs for 2 tokens"
        );
        let mut v = answer();
        v["choices"][1]["index"] = json!(1);
        assert_eq!(
            parse_completions(&v, 2).unwrap_err(),
            "no choice with index 0"
        );
        let mut v = answer();
        v["choices"][0]["finish_reason"] = json!("abort");
        assert!(parse_completions(&v, 2).unwrap_err().contains("abort"));
        let mut v = answer();
        v["choices"][0]["token_ids"] = Value::Null;
        assert_eq!(
            parse_completions(&v, 2).unwrap_err(),
            "a choice without `token_ids`"
        );
        let mut v = answer();
        v["choices"][0]["logprobs"]["token_logprobs"][1] = json!("x");
        assert_eq!(
            parse_completions(&v, 2).unwrap_err(),
            "`logprobs.token_logprobs` holds \"x\", not a number"
        );
        assert_eq!(
            parse_completions(&json!({}), 1).unwrap_err(),
            "no `choices` array"
        );
    }

    #[test]
    fn a_dead_server_is_an_error_naming_its_url_after_the_retries() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let t = std::time::Instant::now();
        let e = VllmServers::connect(std::slice::from_ref(&url), Duration::from_secs(2), 2)
            .err()
            .unwrap();
        assert_eq!(e.url, url);
        assert!(
            e.message.contains("/v1/models") && e.message.ends_with("(3 tries)"),
            "{e}"
        );
        // Two back-offs: 0.5 s + 1 s.
        assert!(t.elapsed() >= Duration::from_millis(1500));
        let e = VllmServers::connect(&[], Duration::from_secs(1), 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("rollout.urls"), "{e}");
    }
}
