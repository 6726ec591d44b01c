//! What a job creator hands to the provider of its deal: the module at an
//! exact version, the input values and the input files.
//!
//! The job offer commits to these by hash (`JobOffer::inputs_hash` =
//! keccak256 of [`JobInputs::canonical_bytes`]). The solver stores the bytes
//! and serves them only to the deal's provider, who checks the hash before
//! running anything, re-derives the module id from the module source and
//! renders the template itself: a creator cannot make a provider run
//! something other than what the offer names.

use std::collections::BTreeMap;

use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

use crate::{module::module_id, offer::ModuleId};

/// Inputs larger than this are refused; files travel through storage, by CID.
pub const MAX_INPUTS_BYTES: usize = 64 * 1024;

/// Where the provider gets the module from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModuleSource {
    /// A git repository at a resolved commit (40 hex digits).
    Git {
        /// Canonical clone URL.
        url: String,
        /// The resolved commit.
        commit: String,
    },
    /// A template on the provider's own machine (local networks and tests):
    /// the provider reads `path` and checks that the template's keccak256 is
    /// `template_hash`.
    Local {
        /// Absolute path of the module directory or template file.
        path: String,
        /// keccak256 of the template bytes.
        template_hash: B256,
    },
}

impl ModuleSource {
    /// The module id the offer must carry: `module_id(url, commit)` for git,
    /// `module_id("local:" ++ path, hex(template_hash))` for local templates.
    pub fn module_id(&self) -> ModuleId {
        match self {
            Self::Git { url, commit } => module_id(url, commit),
            Self::Local { path, template_hash } => {
                module_id(&format!("local:{path}"), &template_hash.to_string())
            }
        }
    }
}

/// The inputs of one job, as the provider receives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInputs {
    /// The module at an exact version.
    pub module: ModuleSource,
    /// Template inputs (`-i KEY=VALUE`).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Input files by key (`--input-file KEY=PATH`), each the CID of its
    /// content in the network's storage.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// Inputs that cannot be accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputsError {
    /// Over [`MAX_INPUTS_BYTES`].
    #[error("job inputs are {0} bytes, over the {MAX_INPUTS_BYTES}-byte limit (send files by CID)")]
    TooLarge(usize),
    /// Not the JSON document described by [`JobInputs`].
    #[error("job inputs are not valid: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The bytes are valid but not in canonical form, so their hash would differ.
    #[error(
        "job inputs are not in canonical form (serialize them with JobInputs::canonical_bytes)"
    )]
    NotCanonical,
    /// The inputs do not hash to what the offer committed to.
    #[error("job inputs hash to {actual}, but the offer commits to {expected}")]
    HashMismatch {
        /// The offer's `inputs_hash`.
        expected: B256,
        /// keccak256 of the bytes received.
        actual: B256,
    },
    /// An input file key that is not a plain name (it becomes a file name).
    #[error("input file key {0:?} must be letters, digits, '.', '_' or '-' (not '.' or '..')")]
    BadFileKey(String),
    /// The module source does not give the offer's module id.
    #[error("job inputs name module {actual}, but the offer is for module {expected}")]
    ModuleMismatch {
        /// The offer's module id.
        expected: ModuleId,
        /// The id derived from the inputs' module source.
        actual: ModuleId,
    },
}

impl JobInputs {
    /// The canonical encoding: compact JSON, fields in declaration order, maps
    /// sorted by key. Its keccak256 is the offer's `inputs_hash`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing plain structs and BTreeMaps of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// keccak256 of [`Self::canonical_bytes`].
    pub fn hash(&self) -> B256 {
        keccak256(self.canonical_bytes())
    }

    /// Parses inputs received for an offer and checks them against its
    /// `inputs_hash` and `module_id`.
    pub fn verify(bytes: &[u8], inputs_hash: B256, module: ModuleId) -> Result<Self, InputsError> {
        let actual = keccak256(bytes);
        if actual != inputs_hash {
            return Err(InputsError::HashMismatch { expected: inputs_hash, actual });
        }
        let inputs = Self::parse(bytes)?;
        let derived = inputs.module.module_id();
        if derived != module {
            return Err(InputsError::ModuleMismatch { expected: module, actual: derived });
        }
        Ok(inputs)
    }

    /// Parses inputs, refusing oversized and non-canonical documents.
    pub fn parse(bytes: &[u8]) -> Result<Self, InputsError> {
        if bytes.len() > MAX_INPUTS_BYTES {
            return Err(InputsError::TooLarge(bytes.len()));
        }
        let inputs: Self = serde_json::from_slice(bytes)?;
        if inputs.canonical_bytes() != bytes {
            return Err(InputsError::NotCanonical);
        }
        if let Some(key) = inputs.files.keys().find(|k| !is_plain_name(k)) {
            return Err(InputsError::BadFileKey(key.clone()));
        }
        Ok(inputs)
    }
}

/// Whether `key` can name a file: letters, digits, '.', '_' and '-', not `.` or `..`.
pub fn is_plain_name(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key != "."
        && key != ".."
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JobInputs {
        JobInputs {
            module: ModuleSource::Git {
                url: "https://github.com/a/b".into(),
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
            },
            values: [("Message".to_owned(), "moo".to_owned()), ("A".into(), "\"x\"".into())]
                .into_iter()
                .collect(),
            files: BTreeMap::new(),
        }
    }

    #[test]
    fn round_trip_and_verify() {
        let i = sample();
        let bytes = i.canonical_bytes();
        let got = JobInputs::verify(&bytes, i.hash(), i.module.module_id()).unwrap();
        assert_eq!(got, i);
        // Keys come out sorted, so the encoding is canonical.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.find("\"A\"").unwrap() < text.find("\"Message\"").unwrap(), "{text}");
    }

    #[test]
    fn wrong_hash_module_and_shape_are_refused() {
        let i = sample();
        let bytes = i.canonical_bytes();
        assert!(matches!(
            JobInputs::verify(&bytes, B256::ZERO, i.module.module_id()),
            Err(InputsError::HashMismatch { .. })
        ));
        assert!(matches!(
            JobInputs::verify(&bytes, i.hash(), B256::ZERO),
            Err(InputsError::ModuleMismatch { .. })
        ));
        let pretty = serde_json::to_vec_pretty(&i).unwrap();
        assert!(matches!(JobInputs::parse(&pretty), Err(InputsError::NotCanonical)));
        assert!(matches!(JobInputs::parse(b"{\"module\":1}"), Err(InputsError::Malformed(_))));
        let mut bad = sample();
        bad.files.insert("../etc".into(), "Qm".into());
        assert!(matches!(
            JobInputs::parse(&bad.canonical_bytes()),
            Err(InputsError::BadFileKey(_))
        ));
        let big = vec![b' '; MAX_INPUTS_BYTES + 1];
        assert!(matches!(JobInputs::parse(&big), Err(InputsError::TooLarge(_))));
    }

    #[test]
    fn local_and_git_ids_differ() {
        let git = ModuleSource::Git { url: "x".into(), commit: "y".into() };
        let local = ModuleSource::Local { path: "x".into(), template_hash: B256::ZERO };
        assert_ne!(git.module_id(), local.module_id());
    }
}
