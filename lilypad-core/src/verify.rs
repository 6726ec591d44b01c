//! How a module's results are checked by a re-run: byte-exact, or within a
//! tolerance that fits AI outputs.
//!
//! A module declares its mode in its template (top-level `"verification"`), so the
//! declaration is part of the module version the deal commits to:
//!
//! ```json
//! "verification": { "mode": "embeddings_cosine", "file": "outputs/embeddings.json", "min_cosine": 0.999 }
//! ```
//!
//! | mode | compares | passes when |
//! |---|---|---|
//! | `exact` (default) | the results' CID | equal |
//! | `embeddings_cosine` | vectors of `file` (OpenAI's `{"data":[{"embedding":[..]}]}`, or `[[..]]`) | same count and dimension, every pair's cosine similarity `>= min_cosine` |
//! | `json_numeric` | the JSON of `file` | same structure, strings, booleans; numbers within `abs_tol + rel_tol * max(abs(a), abs(b))` |
//! | `tokens` | the text of `file` (its JSON `field`, or the whole file) split on whitespace | the share of positions with the same token `>= min_agreement` |
//!
//! `file` is relative to the results directory (`outputs/...` for the default
//! `/outputs`, or `stdout`). [`compare`] is pure: it takes the two files' bytes (the
//! re-run's and the provider's) and gives a [`Comparison`] with the score. Outside
//! `exact`, only the declared file (and, by the mediator, the exit code) is checked:
//! the rest of the results (stdout, stderr) is not.

use serde::{Deserialize, Serialize};

/// A tolerance or threshold: a finite number (checked when a module is parsed).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tolerance(pub f64);

// Only finite values are ever constructed by `Verification::check`, so equality is total.
impl Eq for Tolerance {}

/// A module's verification mode (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Verification {
    /// The results' CID must be equal.
    #[default]
    Exact,
    /// Embedding vectors, compared pair by pair by cosine similarity.
    EmbeddingsCosine {
        /// The results file, relative to the results directory.
        file: String,
        /// The least cosine similarity of any pair, in (0, 1].
        min_cosine: Tolerance,
    },
    /// JSON documents whose numbers may differ a little.
    JsonNumeric {
        /// The results file, relative to the results directory.
        file: String,
        /// Relative tolerance per number, >= 0.
        rel_tol: Tolerance,
        /// Absolute tolerance per number, >= 0.
        #[serde(default = "zero")]
        abs_tol: Tolerance,
    },
    /// Generated text compared token by token (with a fixed seed it should agree).
    Tokens {
        /// The results file, relative to the results directory.
        file: String,
        /// The JSON string field holding the text; the whole file when absent.
        #[serde(default)]
        field: Option<String>,
        /// The least share of positions with the same token, in (0, 1].
        min_agreement: Tolerance,
    },
}

fn zero() -> Tolerance {
    Tolerance(0.0)
}

/// Why a verification declaration is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verification: {0}")]
pub struct VerificationError(pub String);

/// What a comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The provider's file is within the declared tolerance.
    pub pass: bool,
    /// The mode's score: the least cosine, the largest relative error, or the token
    /// agreement (`NaN` when the files could not be compared at all).
    pub score: f64,
    /// What was compared, in words.
    pub detail: String,
}

impl Verification {
    /// The results file a tolerance mode compares (`None` for `exact`).
    pub fn file(&self) -> Option<&str> {
        match self {
            Self::Exact => None,
            Self::EmbeddingsCosine { file, .. }
            | Self::JsonNumeric { file, .. }
            | Self::Tokens { file, .. } => Some(file),
        }
    }

    /// Checks the declaration: thresholds in range, a relative file path that stays
    /// inside the outputs.
    pub fn check(&self) -> Result<(), VerificationError> {
        let bad = |m: String| Err(VerificationError(m));
        let unit = |name: &str, t: Tolerance| {
            if t.0.is_finite() && t.0 > 0.0 && t.0 <= 1.0 {
                Ok(())
            } else {
                Err(VerificationError(format!("{name} must be in (0, 1], not {}", t.0)))
            }
        };
        let non_negative = |name: &str, t: Tolerance| {
            if t.0.is_finite() && t.0 >= 0.0 {
                Ok(())
            } else {
                Err(VerificationError(format!("{name} must be a number >= 0, not {}", t.0)))
            }
        };
        match self {
            Self::Exact => return Ok(()),
            Self::EmbeddingsCosine { min_cosine, .. } => unit("min_cosine", *min_cosine)?,
            Self::JsonNumeric { rel_tol, abs_tol, .. } => {
                non_negative("rel_tol", *rel_tol)?;
                non_negative("abs_tol", *abs_tol)?;
            }
            Self::Tokens { min_agreement, .. } => unit("min_agreement", *min_agreement)?,
        }
        let file = self.file().unwrap_or_default();
        if file.is_empty()
            || file.starts_with('/')
            || file.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        {
            return bad(format!(
                "file {file:?} must be a relative path inside the results (no `..`, no leading `/`)"
            ));
        }
        Ok(())
    }
}

/// Compares the provider's file (`theirs`) with the re-run's (`ours`) under `mode`.
/// `Exact` compares the bytes; the results' CID is what a mediator compares for it.
pub fn compare(mode: &Verification, ours: &[u8], theirs: &[u8]) -> Comparison {
    let unreadable = |whose: &str, why: String| Comparison {
        pass: false,
        score: f64::NAN,
        detail: format!("{whose} file cannot be compared: {why}"),
    };
    match mode {
        Verification::Exact => {
            let pass = ours == theirs;
            Comparison {
                pass,
                score: if pass { 1.0 } else { 0.0 },
                detail: if pass { "identical".into() } else { "different bytes".into() },
            }
        }
        Verification::EmbeddingsCosine { min_cosine, .. } => {
            let a = match vectors(ours) {
                Ok(v) => v,
                Err(e) => return unreadable("the re-run's", e),
            };
            let b = match vectors(theirs) {
                Ok(v) => v,
                Err(e) => return unreadable("the provider's", e),
            };
            if a.len() != b.len() {
                return unreadable(
                    "the provider's",
                    format!("{} vectors, the re-run has {}", b.len(), a.len()),
                );
            }
            let mut least = 1.0f64;
            let mut at = 0;
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                if x.len() != y.len() {
                    return unreadable(
                        "the provider's",
                        format!("vector {i} has {} dimensions, the re-run's {}", y.len(), x.len()),
                    );
                }
                let c = cosine(x, y);
                if c < least || c.is_nan() {
                    least = c;
                    at = i;
                }
            }
            let pass = least >= min_cosine.0;
            Comparison {
                pass,
                score: least,
                detail: format!(
                    "{} vectors: least cosine similarity {least:.6} (vector {at}), at least {} needed",
                    a.len(),
                    min_cosine.0
                ),
            }
        }
        Verification::JsonNumeric { rel_tol, abs_tol, .. } => {
            let (a, b) = match (json(ours), json(theirs)) {
                (Err(e), _) => return unreadable("the re-run's", e),
                (_, Err(e)) => return unreadable("the provider's", e),
                (Ok(a), Ok(b)) => (a, b),
            };
            let mut worst = 0.0f64;
            match numeric_diff(&a, &b, "$", rel_tol.0, abs_tol.0, &mut worst) {
                Ok(()) => Comparison {
                    pass: true,
                    score: worst,
                    detail: format!(
                        "every number within tolerance (largest relative error {worst:.3e})"
                    ),
                },
                Err(why) => Comparison { pass: false, score: worst, detail: why },
            }
        }
        Verification::Tokens { field, min_agreement, .. } => {
            let (a, b) = match (text(ours, field.as_deref()), text(theirs, field.as_deref())) {
                (Err(e), _) => return unreadable("the re-run's", e),
                (_, Err(e)) => return unreadable("the provider's", e),
                (Ok(a), Ok(b)) => (a, b),
            };
            let (ta, tb): (Vec<&str>, Vec<&str>) =
                (a.split_whitespace().collect(), b.split_whitespace().collect());
            let longest = ta.len().max(tb.len());
            let same = ta.iter().zip(&tb).filter(|(x, y)| x == y).count();
            #[allow(clippy::cast_precision_loss)] // token counts are far below 2^52
            let score = if longest == 0 { 1.0 } else { same as f64 / longest as f64 };
            Comparison {
                pass: score >= min_agreement.0,
                score,
                detail: format!(
                    "{same} of {longest} tokens agree ({score:.4}), at least {} needed",
                    min_agreement.0
                ),
            }
        }
    }
}

fn json(bytes: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))
}

/// The vectors of an embeddings file: OpenAI's response shape or an array of arrays.
fn vectors(bytes: &[u8]) -> Result<Vec<Vec<f64>>, String> {
    let doc = json(bytes)?;
    let rows: Vec<&serde_json::Value> = match &doc {
        serde_json::Value::Object(o) => {
            let data = o.get("data").and_then(|d| d.as_array()).ok_or("no \"data\" array")?;
            data.iter()
                .map(|d| d.get("embedding").ok_or("a \"data\" entry without \"embedding\""))
                .collect::<Result<_, _>>()?
        }
        serde_json::Value::Array(a) => a.iter().collect(),
        _ => return Err("neither {\"data\": [...]} nor an array of vectors".into()),
    };
    if rows.is_empty() {
        return Err("no vectors".into());
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let nums = r.as_array().ok_or_else(|| format!("vector {i} is not an array"))?;
            nums.iter()
                .map(|n| {
                    n.as_f64()
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| format!("vector {i} holds {n}, not a finite number"))
                })
                .collect()
        })
        .collect()
}

/// Cosine similarity; 0 for a zero vector.
fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

fn numeric_diff(
    a: &serde_json::Value,
    b: &serde_json::Value,
    at: &str,
    rel: f64,
    abs: f64,
    worst: &mut f64,
) -> Result<(), String> {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            let diff = (x - y).abs();
            let scale = x.abs().max(y.abs());
            let relative = if scale == 0.0 { 0.0 } else { diff / scale };
            *worst = worst.max(relative);
            if diff <= abs + rel * scale {
                Ok(())
            } else {
                Err(format!("{at}: {y} differs from the re-run's {x} beyond the tolerance"))
            }
        }
        (V::Array(x), V::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{at}: {} items, the re-run has {}", y.len(), x.len()));
            }
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                numeric_diff(p, q, &format!("{at}[{i}]"), rel, abs, worst)?;
            }
            Ok(())
        }
        (V::Object(x), V::Object(y)) => {
            if let Some(k) = x.keys().find(|k| !y.contains_key(*k)) {
                return Err(format!("{at}: no key {k:?}"));
            }
            if let Some(k) = y.keys().find(|k| !x.contains_key(*k)) {
                return Err(format!("{at}: an extra key {k:?}"));
            }
            for (k, p) in x {
                numeric_diff(p, &y[k], &format!("{at}.{k}"), rel, abs, worst)?;
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{at}: {b} differs from the re-run's {a}")),
    }
}

fn text(bytes: &[u8], field: Option<&str>) -> Result<String, String> {
    match field {
        None => String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8 text".into()),
        Some(f) => json(bytes)?
            .get(f)
            .and_then(|v| v.as_str())
            .map(String::from)
            .ok_or_else(|| format!("no string field {f:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(rows: &[&[f64]]) -> Vec<u8> {
        let data: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| serde_json::json!({"object": "embedding", "index": i, "embedding": r}))
            .collect();
        serde_json::to_vec(&serde_json::json!({"object": "list", "data": data})).unwrap()
    }

    fn cos_mode(t: f64) -> Verification {
        Verification::EmbeddingsCosine { file: "embeddings.json".into(), min_cosine: Tolerance(t) }
    }

    #[test]
    fn declarations_parse_and_are_checked() {
        let v: Verification = serde_json::from_str(
            r#"{"mode":"embeddings_cosine","file":"embeddings.json","min_cosine":0.999}"#,
        )
        .unwrap();
        assert_eq!(v, cos_mode(0.999));
        assert!(v.check().is_ok());
        assert_eq!(
            serde_json::from_str::<Verification>(r#"{"mode":"exact"}"#).unwrap(),
            Verification::Exact
        );
        for bad in [
            r#"{"mode":"embeddings_cosine","file":"e.json","min_cosine":1.5}"#,
            r#"{"mode":"embeddings_cosine","file":"../e.json","min_cosine":0.9}"#,
            r#"{"mode":"embeddings_cosine","file":"/e.json","min_cosine":0.9}"#,
            r#"{"mode":"json_numeric","file":"e.json","rel_tol":-1}"#,
            r#"{"mode":"tokens","file":"c.json","min_agreement":0}"#,
        ] {
            let v: Verification = serde_json::from_str(bad).unwrap();
            assert!(v.check().is_err(), "{bad}");
        }
        for unknown in
            [r#"{"mode":"fuzzy"}"#, r#"{"mode":"tokens","file":"c","min_agreement":1,"x":1}"#]
        {
            assert!(serde_json::from_str::<Verification>(unknown).is_err(), "{unknown}");
        }
    }

    #[test]
    fn cosine_mode_passes_small_noise_and_fails_large_noise() {
        let ours = emb(&[&[1.0, 0.0, 0.0], &[0.0, 0.6, 0.8]]);
        let close = emb(&[&[0.9999, 0.01, 0.0], &[0.0, 0.6, 0.8]]);
        let far = emb(&[&[0.7, 0.7, 0.0], &[0.0, 0.6, 0.8]]);
        let c = compare(&cos_mode(0.999), &ours, &close);
        assert!(c.pass && c.score > 0.9999 && c.score < 1.0, "{c:?}");
        let c = compare(&cos_mode(0.999), &ours, &far);
        assert!(!c.pass && (c.score - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-3, "{c:?}");
        assert!(c.detail.contains("vector 0"), "{c:?}");
        // A missing vector, another dimension, or garbage never pass.
        for bad in [emb(&[&[1.0, 0.0, 0.0]]), emb(&[&[1.0, 0.0], &[0.0, 1.0]]), b"nope".to_vec()] {
            assert!(!compare(&cos_mode(0.5), &ours, &bad).pass);
        }
        // A bare array of vectors is read too.
        assert!(compare(&cos_mode(0.999), &ours, b"[[1,0,0],[0,0.6,0.8]]").pass);
    }

    #[test]
    fn json_numeric_mode_bounds_every_number() {
        let m = Verification::JsonNumeric {
            file: "r.json".into(),
            rel_tol: Tolerance(1e-3),
            abs_tol: Tolerance(0.0),
        };
        let ours = br#"{"x": [1.0, 2.0], "label": "cat"}"#;
        assert!(compare(&m, ours, br#"{"x": [1.0005, 2.0], "label": "cat"}"#).pass);
        assert!(!compare(&m, ours, br#"{"x": [1.01, 2.0], "label": "cat"}"#).pass);
        assert!(!compare(&m, ours, br#"{"x": [1.0, 2.0], "label": "dog"}"#).pass);
        assert!(!compare(&m, ours, br#"{"x": [1.0], "label": "cat"}"#).pass);
        assert!(!compare(&m, ours, br#"{"x": [1.0, 2.0], "label": "cat", "y": 1}"#).pass);
    }

    #[test]
    fn tokens_mode_counts_agreeing_positions() {
        let m = Verification::Tokens {
            file: "c.json".into(),
            field: Some("text".into()),
            min_agreement: Tolerance(0.75),
        };
        let ours = br#"{"text": "the cat sat on the mat"}"#;
        let c = compare(&m, ours, br#"{"text": "the cat sat on a mat"}"#);
        assert!(c.pass && (c.score - 5.0 / 6.0).abs() < 1e-9, "{c:?}");
        assert!(!compare(&m, ours, br#"{"text": "a dog ran"}"#).pass);
        assert!(!compare(&m, ours, br#"{"words": "the cat sat on the mat"}"#).pass);
    }
}
