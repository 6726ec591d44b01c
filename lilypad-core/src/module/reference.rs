//! Module references as users type them: `cowsay:v0.0.4`,
//! `github.com/owner/repo:ref`, or a local path.

use std::fmt;

use alloy_primitives::keccak256;
use serde::{Deserialize, Serialize};

use crate::offer::ModuleId;

/// The base that `name:version` expands to: `<base><name>` at tag `version`.
pub const DEFAULT_MODULE_BASE: &str = "https://github.com/Lilypad-Tech/lilypad-module-";

/// Where a module comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModuleRef {
    /// A git repository at a ref (tag, branch or commit).
    Git {
        /// Canonical clone URL, e.g. `https://github.com/owner/repo`.
        url: String,
        /// Tag, branch or commit.
        git_ref: String,
    },
    /// A directory (or a template file) on this machine, used as is.
    Local {
        /// The path as given.
        path: String,
    },
}

/// A module reference that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Empty input.
    #[error("module reference is empty")]
    Empty,
    /// A remote reference without `:ref`.
    #[error(
        "module reference {0:?} has no version: write `name:version`, `host/owner/repo:ref`, or a local path starting with ./ or /"
    )]
    MissingRef(String),
    /// Part of the reference has characters git or a URL would not accept.
    #[error("module reference {reference:?}: {reason}")]
    Malformed {
        /// The reference as given.
        reference: String,
        /// What is wrong.
        reason: &'static str,
    },
}

fn is_local(s: &str) -> bool {
    s.starts_with('/')
        || s.starts_with("./")
        || s.starts_with("../")
        || s == "."
        || s == ".."
        || s.starts_with("file://")
        || s.starts_with('~')
}

fn valid_ref(r: &str) -> bool {
    !r.is_empty()
        && !r.starts_with('-')
        && !r.contains("..")
        && r.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+'))
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ModuleRef {
    /// Parses a reference; `name:version` expands against `base`
    /// (see [`DEFAULT_MODULE_BASE`]).
    pub fn parse_with_base(input: &str, base: &str) -> Result<Self, ReferenceError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if is_local(s) {
            let path = s.strip_prefix("file://").unwrap_or(s).trim();
            if path.is_empty() {
                return Err(ReferenceError::Malformed {
                    reference: s.to_owned(),
                    reason: "a file:// reference needs a path after it, e.g. file:///srv/modules/cowsay",
                });
            }
            return Ok(Self::Local { path: path.to_owned() });
        }
        let malformed = |reason| ReferenceError::Malformed { reference: s.to_owned(), reason };
        // The ref follows the last ':' that is not part of a URL scheme.
        let body = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
        let Some((repo, git_ref)) = body.rsplit_once(':') else {
            return Err(ReferenceError::MissingRef(s.to_owned()));
        };
        if !valid_ref(git_ref) {
            return Err(malformed("the part after ':' is not a valid git tag, branch or commit"));
        }
        let repo = repo.trim_end_matches('/').trim_end_matches(".git");
        let parts: Vec<&str> = repo.split('/').collect();
        let url = match parts.as_slice() {
            [name] => {
                if !valid_segment(name) {
                    return Err(malformed(
                        "a module name may hold letters, digits, '.', '_' and '-'",
                    ));
                }
                format!("{base}{name}")
            }
            [host, rest @ ..] if rest.len() >= 2 && host.contains('.') => {
                if !parts.iter().all(|p| valid_segment(p)) {
                    return Err(malformed(
                        "each path segment may hold letters, digits, '.', '_' and '-'",
                    ));
                }
                let scheme = if s.starts_with("http://") { "http" } else { "https" };
                format!("{scheme}://{}", parts.join("/"))
            }
            _ => {
                return Err(malformed(
                    "expected `name:version` or `host/owner/repo:ref` (e.g. github.com/owner/repo:v1)",
                ));
            }
        };
        Ok(Self::Git { url, git_ref: git_ref.to_owned() })
    }

    /// Parses a reference with the default base.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        Self::parse_with_base(input, DEFAULT_MODULE_BASE)
    }
}

impl fmt::Display for ModuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Git { url, git_ref } => write!(f, "{url}@{git_ref}"),
            Self::Local { path } => f.write_str(path),
        }
    }
}

/// The id of a module at a resolved commit: keccak256(url ++ 0x00 ++ commit).
///
/// The separator keeps `("ab", "c")` and `("a", "bc")` apart.
pub fn module_id(canonical_url: &str, commit: &str) -> ModuleId {
    let mut buf = Vec::with_capacity(canonical_url.len() + 1 + commit.len());
    buf.extend_from_slice(canonical_url.as_bytes());
    buf.push(0);
    buf.extend_from_slice(commit.as_bytes());
    keccak256(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(url: &str, r: &str) -> ModuleRef {
        ModuleRef::Git { url: url.into(), git_ref: r.into() }
    }

    #[test]
    fn short_names_expand_to_the_base() {
        assert_eq!(
            ModuleRef::parse("cowsay:v0.0.4").unwrap(),
            git("https://github.com/Lilypad-Tech/lilypad-module-cowsay", "v0.0.4")
        );
        assert_eq!(
            ModuleRef::parse_with_base("sdxl:v1", "https://example.org/m-").unwrap(),
            git("https://example.org/m-sdxl", "v1")
        );
    }

    #[test]
    fn host_owner_repo() {
        let want = git("https://github.com/owner/repo", "e54535a77729d1731d5e5874073aedc56217b86f");
        for s in [
            "github.com/owner/repo:e54535a77729d1731d5e5874073aedc56217b86f",
            "https://github.com/owner/repo:e54535a77729d1731d5e5874073aedc56217b86f",
            "github.com/owner/repo.git:e54535a77729d1731d5e5874073aedc56217b86f",
        ] {
            assert_eq!(ModuleRef::parse(s).unwrap(), want, "{s}");
        }
        assert_eq!(
            ModuleRef::parse("gitlab.com/group/sub/repo:main").unwrap(),
            git("https://gitlab.com/group/sub/repo", "main")
        );
    }

    #[test]
    fn local_paths() {
        for s in ["./examples/modules/cowsay", "/tmp/m", "../m", "file:///tmp/m"] {
            assert!(matches!(ModuleRef::parse(s).unwrap(), ModuleRef::Local { .. }), "{s}");
        }
        assert_eq!(
            ModuleRef::parse("file:///tmp/m").unwrap(),
            ModuleRef::Local { path: "/tmp/m".into() }
        );
    }

    /// Found by the `module_spec` fuzz target: `file://` with nothing (or only
    /// white space) after it was accepted as a local module with an empty path.
    #[test]
    fn a_file_url_without_a_path_is_rejected() {
        for s in ["file://", "file://\n\n", "file://   "] {
            assert!(
                matches!(ModuleRef::parse(s), Err(ReferenceError::Malformed { .. })),
                "{s:?}: {:?}",
                ModuleRef::parse(s)
            );
        }
    }

    #[test]
    fn bad_references_say_why() {
        assert_eq!(ModuleRef::parse("  "), Err(ReferenceError::Empty));
        assert!(matches!(ModuleRef::parse("cowsay"), Err(ReferenceError::MissingRef(_))));
        assert!(matches!(ModuleRef::parse("cow say:v1"), Err(ReferenceError::Malformed { .. })));
        assert!(matches!(
            ModuleRef::parse("cowsay:--upload-pack=x"),
            Err(ReferenceError::Malformed { .. })
        ));
        assert!(matches!(ModuleRef::parse("cowsay:a..b"), Err(ReferenceError::Malformed { .. })));
        assert!(matches!(ModuleRef::parse("owner/repo:v1"), Err(ReferenceError::Malformed { .. })));
        assert!(matches!(
            ModuleRef::parse("github.com/../x:v1"),
            Err(ReferenceError::Malformed { .. })
        ));
        let msg = ModuleRef::parse("cowsay").unwrap_err().to_string();
        assert!(msg.contains("name:version"), "{msg}");
    }

    #[test]
    fn module_ids_separate_url_and_commit() {
        assert_ne!(module_id("ab", "c"), module_id("a", "bc"));
        assert_eq!(module_id("u", "c"), module_id("u", "c"));
    }
}
