//! Sentence embeddings with sentence-transformers' all-MiniLM-L6-v2, in Rust
//! with candle: the program of the `embeddings` example module.
//!
//! Reads the texts from `TEXTS` (a JSON array of strings, or one JSON string),
//! computes what sentence-transformers computes for this model (BERT, mean
//! pooling over the attention mask, L2 normalisation, at most 256 tokens per
//! text, special tokens included), writes `$OUTPUT_DIR/embeddings.json`
//! (default `/outputs`) in OpenAI's embeddings response shape and prints a
//! one-line summary. The model files are read from `$MODEL_DIR` (default
//! `/model`): `config.json`, `tokenizer.json`, `model.safetensors`.
//!
//! Exit status: 0 on success, 2 for bad input (`TEXTS` missing, not JSON, not
//! strings, empty, too many texts), 1 for anything else (model files missing).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Serialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The model name in the output (OpenAI's `model` field).
const MODEL: &str = "all-MiniLM-L6-v2";
/// sentence-transformers' `max_seq_length` for this model
/// (`sentence_bert_config.json`): longer texts are truncated, as there.
const MAX_TOKENS: usize = 256;
/// At most this many texts in one job.
const MAX_TEXTS: usize = 256;
/// Texts per forward pass (padded to the longest of the batch).
const BATCH: usize = 32;

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

/// `TEXTS`: a JSON array of 1..=MAX_TEXTS strings, or one JSON string.
fn parse_texts(raw: &str) -> Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
        input_error(format!(
            "TEXTS is not JSON ({e}): give a JSON array of strings, e.g. [\"hello\",\"world\"], or one JSON string"
        ))
    })?;
    let texts = match value {
        serde_json::Value::String(s) => vec![s],
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                serde_json::Value::String(s) => Ok(s),
                other => Err(input_error(format!("TEXTS[{i}] is not a string: {other}"))),
            })
            .collect::<Result<Vec<_>>>()?,
        other => {
            return Err(input_error(format!(
                "TEXTS must be a JSON array of strings or one JSON string, not {other}"
            )));
        }
    };
    if texts.is_empty() {
        return Err(input_error("TEXTS is an empty list: give at least one text"));
    }
    if texts.len() > MAX_TEXTS {
        return Err(input_error(format!(
            "TEXTS has {} texts, more than the {MAX_TEXTS} one job may embed: split them over several jobs",
            texts.len()
        )));
    }
    Ok(texts)
}

#[derive(Serialize)]
struct Response<'a> {
    object: &'static str,
    model: &'static str,
    data: Vec<Embedding<'a>>,
    usage: Usage,
}

#[derive(Serialize)]
struct Embedding<'a> {
    object: &'static str,
    index: usize,
    embedding: &'a [f32],
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: usize,
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

struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl Embedder {
    fn load(dir: &Path) -> Result<Self> {
        let file = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            if !path.is_file() {
                bail!(
                    "model file {} is missing (set MODEL_DIR to the model's directory)",
                    path.display()
                );
            }
            Ok(path)
        };
        let config: Config = serde_json::from_slice(
            &std::fs::read(file("config.json")?).context("reading config.json")?,
        )
        .context("parsing config.json")?;
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json")?)
            .map_err(|e| anyhow::anyhow!("loading tokenizer.json: {e}"))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("tokenizer truncation: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: config.pad_token_id as u32,
            pad_token: "[PAD]".into(),
            ..Default::default()
        }));
        let device = device()?;
        let weights =
            std::fs::read(file("model.safetensors")?).context("reading model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .context("loading model.safetensors")?;
        let model = BertModel::load(vb, &config).context("building BERT from model.safetensors")?;
        Ok(Self { model, tokenizer, device })
    }

    /// The normalised embeddings of `texts` and the number of tokens each
    /// text gave (after truncation, special tokens included).
    fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, usize)> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let tokens = mask.iter().map(|&m| m as usize).sum();
        let ids = Tensor::from_vec(ids, (rows, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, len), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (rows, len, 384)

        // sentence-transformers' Pooling (mean over the tokens the mask keeps)...
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, 384)
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (rows, 1)
        let pooled = summed.broadcast_div(&counts)?;
        // ...then Normalize (torch.nn.functional.normalize, eps 1e-12).
        let norms = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let normalized = pooled.broadcast_div(&norms)?;
        Ok((normalized.to_vec2::<f32>()?, tokens))
    }
}

fn run() -> Result<()> {
    let raw = std::env::var("TEXTS").map_err(|_| {
        input_error("TEXTS is not set: give the texts as a JSON array of strings, e.g. TEXTS='[\"hello\",\"world\"]'")
    })?;
    let texts = parse_texts(&raw)?;
    let model_dir = PathBuf::from(std::env::var_os("MODEL_DIR").unwrap_or_else(|| "/model".into()));
    let out_dir =
        PathBuf::from(std::env::var_os("OUTPUT_DIR").unwrap_or_else(|| "/outputs".into()));

    let start = Instant::now();
    let embedder = Embedder::load(&model_dir)?;
    let loaded = start.elapsed();
    let mut vectors = Vec::with_capacity(texts.len());
    let mut tokens = 0;
    for chunk in texts.chunks(BATCH) {
        let (v, t) = embedder.embed(chunk)?;
        vectors.extend(v);
        tokens += t;
    }
    let response = Response {
        object: "list",
        model: MODEL,
        data: vectors
            .iter()
            .enumerate()
            .map(|(index, v)| Embedding { object: "embedding", index, embedding: v })
            .collect(),
        usage: Usage { prompt_tokens: tokens, total_tokens: tokens },
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.join("embeddings.json");
    std::fs::write(&out, serde_json::to_vec(&response)?)
        .with_context(|| format!("writing {}", out.display()))?;
    let device = if embedder.device.is_cpu() { "cpu" } else { "gpu" };
    println!(
        "embeddings: {} text(s), {tokens} tokens, {} dimensions, {MODEL} on {device}: model loaded in {:.2}s, embedded in {:.2}s -> {}",
        texts.len(),
        vectors.first().map_or(0, Vec::len),
        loaded.as_secs_f64(),
        (start.elapsed() - loaded).as_secs_f64(),
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embeddings: error: {e:#}");
            if e.downcast_ref::<InputError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_a_json_array_or_one_json_string() {
        assert_eq!(parse_texts(r#"["a","b"]"#).unwrap(), ["a", "b"]);
        assert_eq!(parse_texts(r#""one""#).unwrap(), ["one"]);
        for (raw, want) in [
            ("hello", "not JSON"),
            ("[]", "empty list"),
            ("[1]", "TEXTS[0] is not a string"),
            ("{}", "must be a JSON array"),
        ] {
            let e = parse_texts(raw).unwrap_err();
            assert!(e.downcast_ref::<InputError>().is_some());
            assert!(e.to_string().contains(want), "{raw}: {e}");
        }
        let many = serde_json::to_string(&vec!["x"; MAX_TEXTS + 1]).unwrap();
        assert!(parse_texts(&many).unwrap_err().to_string().contains("more than the 256"));
        assert_eq!(
            parse_texts(&serde_json::to_string(&vec!["x"; MAX_TEXTS]).unwrap()).unwrap().len(),
            MAX_TEXTS
        );
    }
}
