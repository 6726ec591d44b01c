//! Chat completions with SmolLM2-135M-Instruct, in Rust with candle: the program
//! of the `chat` example module.
//!
//! Reads the conversation from `MESSAGES` (a JSON array of `{"role", "content"}`
//! objects), formats it with the model's own chat template (ChatML, with the
//! model's default system prompt when the conversation has none), generates at
//! most `MAX_TOKENS` tokens (default 64, at most 512) with the quantized llama
//! model of `$MODEL_DIR/model.gguf` (default `/model`), sampling with the seed
//! `SEED` (default 0; `TEMPERATURE` 0 decodes greedily), and writes
//! `$OUTPUT_DIR/completion.json` (default `/outputs`):
//! `{"text", "finish_reason", "model", "usage": {"prompt_tokens",
//! "completion_tokens", "total_tokens"}}`. The same inputs give the same text on
//! the same machine.
//!
//! The tokenizer is rebuilt from the GGUF file's own metadata (its byte-level
//! BPE vocabulary and merges, the pre-tokenizer llama.cpp calls `smollm`:
//! single digits, then GPT-2's byte-level split): the model file is the only
//! file the module needs.
//!
//! Exit status: 0 on success, 2 for bad input (`MESSAGES` missing, not JSON,
//! not a non-empty array of messages, an unknown role, a prompt too long;
//! `MAX_TOKENS`, `SEED` or `TEMPERATURE` not a number in range), 1 for anything
//! else (model file missing or unreadable).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{DecoderWrapper, PreTokenizerWrapper, Tokenizer};

/// The model name in the output.
const MODEL: &str = "SmolLM2-135M-Instruct";
/// The model's chat template adds this system prompt when the conversation
/// does not start with a system message (`tokenizer.chat_template` in the GGUF
/// file).
const DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
/// `MAX_TOKENS` when not given, and its upper bound (larger values are capped).
const DEFAULT_MAX_TOKENS: usize = 64;
const MAX_MAX_TOKENS: usize = 512;
/// At most this many prompt tokens (the model's context is 8192; this keeps a
/// job's time and memory bounded on a CPU).
const MAX_PROMPT_TOKENS: usize = 2048;
/// At most this many messages.
const MAX_MESSAGES: usize = 256;
/// Sampling: temperature (default; `TEMPERATURE` overrides, 0 is greedy) and
/// nucleus size.
/// 0.2 and 0.9 are the values of the model card's own example.
const DEFAULT_TEMPERATURE: f64 = 0.2;
const TOP_P: f64 = 0.9;
/// A mild repetition penalty over the last generated tokens (not the prompt's:
/// penalising the question's words pushes the model off the answer): a 135M
/// model otherwise falls into loops quickly.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_LAST_N: usize = 64;

/// A problem with the job's input: exit status 2.
#[derive(Debug)]
struct InputError(String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

fn input_error(msg: impl Into<String>) -> anyhow::Error {
    InputError(msg.into()).into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Message {
    role: String,
    content: String,
}

/// `MESSAGES`: a JSON array of 1..=MAX_MESSAGES `{"role", "content"}` objects,
/// roles `system`, `developer` (OpenAI's newer name for it), `user`,
/// `assistant`, `tool`.
fn parse_messages(raw: &str) -> Result<Vec<Message>> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
        input_error(format!(
            "MESSAGES is not JSON ({e}): give a JSON array of {{\"role\", \"content\"}} objects, \
             e.g. [{{\"role\":\"user\",\"content\":\"Say hi\"}}]"
        ))
    })?;
    let serde_json::Value::Array(items) = value else {
        return Err(input_error(format!(
            "MESSAGES must be a JSON array of {{\"role\", \"content\"}} objects, not {value}"
        )));
    };
    if items.is_empty() {
        return Err(input_error("MESSAGES is an empty list: give at least one message"));
    }
    if items.len() > MAX_MESSAGES {
        return Err(input_error(format!(
            "MESSAGES has {} messages, more than the {MAX_MESSAGES} one job takes",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let mut m: Message = serde_json::from_value(item.clone()).map_err(|_| {
                input_error(format!(
                    "MESSAGES[{i}] must be an object with a string \"role\" and a string \"content\", not {item}"
                ))
            })?;
            m.role = match m.role.as_str() {
                "system" | "developer" => "system".into(),
                "user" | "assistant" | "tool" => m.role,
                other => {
                    return Err(input_error(format!(
                        "MESSAGES[{i}] has the role {other:?}: use system, developer, user, assistant or tool"
                    )));
                }
            };
            Ok(m)
        })
        .collect()
}

/// `MAX_TOKENS`: a positive integer, capped at MAX_MAX_TOKENS (empty: default).
fn parse_max_tokens(raw: Option<&str>) -> Result<usize> {
    let raw = raw.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Ok(DEFAULT_MAX_TOKENS);
    }
    match raw.parse::<u64>() {
        Ok(0) => Err(input_error("MAX_TOKENS is 0: give at least 1")),
        Ok(n) => Ok((n.min(MAX_MAX_TOKENS as u64)) as usize),
        Err(_) => Err(input_error(format!("MAX_TOKENS is {raw:?}, not a positive integer"))),
    }
}

/// `SEED`: any 64-bit integer, negative ones included (OpenAI's `seed` is
/// signed); empty: 0.
fn parse_seed(raw: Option<&str>) -> Result<u64> {
    let raw = raw.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Ok(0);
    }
    raw.parse::<u64>()
        .or_else(|_| raw.parse::<i64>().map(|n| n as u64))
        .map_err(|_| input_error(format!("SEED is {raw:?}, not a 64-bit integer")))
}

/// `TEMPERATURE`: 0 (greedy) ..= 2; empty: DEFAULT_TEMPERATURE.
fn parse_temperature(raw: Option<&str>) -> Result<f64> {
    let raw = raw.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Ok(DEFAULT_TEMPERATURE);
    }
    match raw.parse::<f64>() {
        Ok(t) if (0.0..=2.0).contains(&t) => Ok(t),
        _ => Err(input_error(format!("TEMPERATURE is {raw:?}, not a number from 0 to 2"))),
    }
}

/// The prompt as the model's chat template lays it out, in pieces: `Text` is
/// tokenized as plain text (so that a message cannot smuggle in a special
/// token such as `<|im_end|>`), `Special` is one special token.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Special(&'static str),
}

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";
const END_OF_TEXT: &str = "<|endoftext|>";

/// The template of the GGUF file (`tokenizer.chat_template`):
/// `{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}`
/// `<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n{% endif %}`
/// `<|im_start|>{role}\n{content}<|im_end|>\n{% endfor %}<|im_start|>assistant\n`.
fn chat_prompt(messages: &[Message]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut turn = |role: &str, content: &str| {
        out.push(Piece::Special(IM_START));
        out.push(Piece::Text(format!("{role}\n{content}")));
        out.push(Piece::Special(IM_END));
        out.push(Piece::Text("\n".into()));
    };
    if messages.first().is_some_and(|m| m.role != "system") {
        turn("system", DEFAULT_SYSTEM);
    }
    for m in messages {
        turn(&m.role, &m.content);
    }
    out.push(Piece::Special(IM_START));
    out.push(Piece::Text("assistant\n".into()));
    out
}

/// The tokenizer the GGUF file describes: byte-level BPE (`tokenizer.ggml.model`
/// `gpt2`) with its tokens and merges, pre-tokenized as llama.cpp's `smollm`
/// (= the Hugging Face tokenizer's `Digits(individual_digits)` then
/// `ByteLevel(add_prefix_space=false)`), no BOS. Special tokens are not part of
/// it: `Tokens::encode` inserts their ids.
struct Tokens {
    tokenizer: Tokenizer,
    special: HashMap<&'static str, u32>,
}

impl Tokens {
    fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let md = |k: &str| ct.metadata.get(k).with_context(|| format!("the GGUF file has no {k}"));
        let model = md("tokenizer.ggml.model")?.to_string()?;
        if model != "gpt2" {
            bail!(
                "tokenizer.ggml.model is {model:?}, this program reads byte-level BPE (gpt2) only"
            );
        }
        let tokens = md("tokenizer.ggml.tokens")?
            .to_vec()?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<candle_core::Result<Vec<String>>>()?;
        let merges = md("tokenizer.ggml.merges")?
            .to_vec()?
            .iter()
            .map(|v| {
                let m = v.to_string()?;
                m.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| candle_core::Error::Msg(format!("bad merge {m:?}")))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut vocab = Vocab::default();
        for (i, t) in tokens.iter().enumerate() {
            vocab.insert(t.clone(), i as u32);
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab.clone(), merges)
            .build()
            .map_err(|e| anyhow::anyhow!("building the BPE tokenizer: {e}"))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ]))));
        tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
        let mut special = HashMap::new();
        for name in [IM_START, IM_END, END_OF_TEXT] {
            let id = *vocab.get(name).with_context(|| format!("the vocabulary has no {name}"))?;
            special.insert(name, id);
        }
        Ok(Self { tokenizer, special })
    }

    fn encode(&self, pieces: &[Piece]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Special(name) => ids.push(self.special[name]),
                Piece::Text(text) => ids.extend_from_slice(
                    self.tokenizer
                        .encode(text.as_str(), false)
                        .map_err(|e| anyhow::anyhow!("tokenizing the prompt: {e}"))?
                        .get_ids(),
                ),
            }
        }
        Ok(ids)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| anyhow::anyhow!("decoding the completion: {e}"))
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    text: &'a str,
    finish_reason: &'static str,
    model: &'static str,
    usage: Usage,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
    total_tokens: usize,
}

fn device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        Ok(Device::cuda_if_available(0)?)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Device::Cpu)
    }
}

struct Generated {
    ids: Vec<u32>,
    stopped: bool,
}

fn generate(
    model: &mut ModelWeights,
    prompt: &[u32],
    stop: &[u32],
    max_tokens: usize,
    mut sampler: LogitsProcessor,
    device: &Device,
) -> Result<Generated> {
    let mut ids: Vec<u32> = Vec::new();
    let mut input = Tensor::new(prompt, device)?.unsqueeze(0)?;
    let mut pos = 0;
    while ids.len() < max_tokens {
        let logits = model.forward(&input, pos)?.squeeze(0)?;
        pos += input.dim(1)?;
        let start = ids.len().saturating_sub(REPEAT_LAST_N);
        let logits = candle_transformers::utils::apply_repeat_penalty(
            &logits,
            REPEAT_PENALTY,
            &ids[start..],
        )?;
        let next = sampler.sample(&logits)?;
        if stop.contains(&next) {
            return Ok(Generated { ids, stopped: true });
        }
        ids.push(next);
        input = Tensor::new(&[next], device)?.unsqueeze(0)?;
    }
    Ok(Generated { ids, stopped: false })
}

fn run() -> Result<()> {
    let raw = std::env::var("MESSAGES").map_err(|_| {
        input_error(
            "MESSAGES is not set: give the conversation as a JSON array, e.g. \
             MESSAGES='[{\"role\":\"user\",\"content\":\"Say hi\"}]'",
        )
    })?;
    let messages = parse_messages(&raw)?;
    let max_tokens = parse_max_tokens(std::env::var("MAX_TOKENS").ok().as_deref())?;
    let seed = parse_seed(std::env::var("SEED").ok().as_deref())?;
    let temperature = parse_temperature(std::env::var("TEMPERATURE").ok().as_deref())?;
    let model_dir = PathBuf::from(std::env::var("MODEL_DIR").unwrap_or_else(|_| "/model".into()));
    let output_dir =
        PathBuf::from(std::env::var("OUTPUT_DIR").unwrap_or_else(|_| "/outputs".into()));

    let started = Instant::now();
    let device = device()?;
    let path = model_dir.join("model.gguf");
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let content = gguf_file::Content::read(&mut file)
        .with_context(|| format!("reading {}", path.display()))?;
    let tokens = Tokens::from_gguf(&content)?;
    let mut model = ModelWeights::from_gguf(content, &mut file, &device)
        .with_context(|| format!("loading the model of {}", path.display()))?;
    let loaded = started.elapsed();

    let prompt = tokens.encode(&chat_prompt(&messages))?;
    if prompt.len() > MAX_PROMPT_TOKENS {
        return Err(input_error(format!(
            "the conversation is {} tokens long, more than the {MAX_PROMPT_TOKENS} one job takes",
            prompt.len()
        )));
    }
    let sampling = if temperature == 0.0 {
        Sampling::ArgMax
    } else {
        Sampling::TopP { p: TOP_P, temperature }
    };
    let sampler = LogitsProcessor::from_sampling(seed, sampling);
    let stop = [tokens.special[IM_END], tokens.special[END_OF_TEXT]];
    let started_gen = Instant::now();
    let out = generate(&mut model, &prompt, &stop, max_tokens, sampler, &device)?;
    let took = started_gen.elapsed();
    let text = tokens.decode(&out.ids)?;

    let completion = Completion {
        text: &text,
        finish_reason: if out.stopped { "stop" } else { "length" },
        model: MODEL,
        usage: Usage {
            prompt_tokens: prompt.len(),
            completion_tokens: out.ids.len(),
            total_tokens: prompt.len() + out.ids.len(),
        },
    };
    write_output(&output_dir, &completion)?;
    println!(
        "chat: {} message(s), {} prompt + {} completion tokens ({}), seed {seed}, {MODEL} on {}: \
         model loaded in {:.2}s, generated in {:.2}s ({:.1} tokens/s) -> {}",
        messages.len(),
        prompt.len(),
        out.ids.len(),
        completion.finish_reason,
        if device.is_cuda() { "cuda" } else { "cpu" },
        loaded.as_secs_f64(),
        took.as_secs_f64(),
        (out.ids.len() + 1) as f64 / took.as_secs_f64().max(1e-9),
        output_dir.join("completion.json").display()
    );
    Ok(())
}

fn write_output(dir: &Path, completion: &Completion) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("completion.json");
    let json = serde_json::to_vec(completion)?;
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))
}

fn main() -> ExitCode {
    // The GGUF file's weights are Q4_1, for which candle has no SIMD kernel (a
    // scalar dot product: ~0.4 s a token on one x86 core); dequantized to f32
    // at load (~540 MB) they go through candle's f32 matmul, which picks AVX2
    // or AVX-512 at run time: ~6x faster, and the same weights, exactly.
    // `CANDLE_DEQUANTIZE_ALL=0` in the environment keeps them quantized.
    if std::env::var_os("CANDLE_DEQUANTIZE_ALL").is_none() {
        // SAFETY: at the start of main, before any other thread exists.
        unsafe { std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1") };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<InputError>() => {
            eprintln!("chat: bad input: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("chat: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }

    #[test]
    fn messages_parse_and_map_developer_to_system() {
        let m = parse_messages(
            r#"[{"role":"developer","content":"be brief"},{"role":"user","content":"hi"}]"#,
        )
        .unwrap();
        assert_eq!(m, vec![msg("system", "be brief"), msg("user", "hi")]);
    }

    #[test]
    fn bad_messages_are_input_errors() {
        for raw in [
            "not json",
            "{}",
            "[]",
            r#"["hi"]"#,
            r#"[{"role":"user"}]"#,
            r#"[{"role":"user","content":5}]"#,
            r#"[{"role":"wizard","content":"hi"}]"#,
        ] {
            let e = parse_messages(raw).unwrap_err();
            assert!(e.is::<InputError>(), "{raw}: {e}");
        }
    }

    #[test]
    fn numbers_parse_with_defaults_and_caps() {
        assert_eq!(parse_max_tokens(None).unwrap(), DEFAULT_MAX_TOKENS);
        assert_eq!(parse_max_tokens(Some("")).unwrap(), DEFAULT_MAX_TOKENS);
        assert_eq!(parse_max_tokens(Some("10")).unwrap(), 10);
        assert_eq!(parse_max_tokens(Some("100000")).unwrap(), MAX_MAX_TOKENS);
        for bad in ["0", "-1", "ten", "1.5"] {
            assert!(parse_max_tokens(Some(bad)).unwrap_err().is::<InputError>(), "{bad}");
        }
        assert_eq!(parse_seed(None).unwrap(), 0);
        assert_eq!(parse_seed(Some("42")).unwrap(), 42);
        assert_eq!(parse_seed(Some("-1")).unwrap(), u64::MAX);
        assert!(parse_seed(Some("x")).unwrap_err().is::<InputError>());
        assert_eq!(parse_temperature(None).unwrap(), DEFAULT_TEMPERATURE);
        assert_eq!(parse_temperature(Some("0")).unwrap(), 0.0);
        assert!(parse_temperature(Some("3")).unwrap_err().is::<InputError>());
    }

    #[test]
    fn prompt_follows_the_chat_template() {
        let render = |pieces: Vec<Piece>| {
            pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Text(t) => t,
                    Piece::Special(s) => s.to_owned(),
                })
                .collect::<String>()
        };
        assert_eq!(
            render(chat_prompt(&[msg("user", "Say hi")])),
            format!(
                "<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n"
            )
        );
        assert_eq!(
            render(chat_prompt(&[msg("system", "S"), msg("user", "U"), msg("assistant", "A")])),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>assistant\n"
        );
        // A special token in a message stays text, tokenized as such.
        assert!(
            chat_prompt(&[msg("user", "<|im_end|>")])
                .contains(&Piece::Text("user\n<|im_end|>".into()))
        );
    }
}
