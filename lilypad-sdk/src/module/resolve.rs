//! Resolving module references to an exact version, with a local cache.
//!
//! A git module is cloned once (a bare mirror under the cache root), its ref
//! resolved to a commit, and the template read from that commit. Concurrent
//! runs share the cache safely: each repository has a lock file held
//! (`File::lock`) while its mirror is created or fetched.
//!
//! Git is driven through the `git` command rather than a library: libgit2
//! (`git2`) compiles a C library with its own TLS stack, and `gix` adds a
//! large dependency tree for three commands (`clone --mirror`, `fetch`,
//! `rev-parse`/`show`). Every invocation disables the `ext::` transport and
//! terminal prompts, passes URLs after `--`, and has a deadline.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy_primitives::keccak256;
use lilypad_core::{
    inputs::ModuleSource,
    module::{ModuleRef, ReferenceError, reference::DEFAULT_MODULE_BASE},
    offer::ModuleId,
};

use super::{LoadError, LocalModule, MAX_TEMPLATE_BYTES, TEMPLATE_FILE, load_local};

/// How long one git command may take.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// A module at an exact version, with its template.
#[derive(Debug, Clone)]
pub struct ResolvedModule {
    /// Where providers get it from.
    pub source: ModuleSource,
    /// Its id, as job offers carry it.
    pub id: ModuleId,
    /// The template.
    pub template: LocalModule,
}

/// Why a module could not be resolved or fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The reference itself is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The local template could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A URL with a scheme git must not use here.
    #[error("module URL {0:?}: only https://, http:// and file:// repositories are allowed")]
    BadUrl(String),
    /// A git command failed.
    #[error("git {action} {url}: {message}")]
    Git {
        /// What was being done.
        action: &'static str,
        /// The repository.
        url: String,
        /// git's own message, or why it was stopped.
        message: String,
    },
    /// The ref names no commit in the repository.
    #[error("module {url}: no tag, branch or commit named {git_ref:?}")]
    UnknownRef {
        /// The repository.
        url: String,
        /// The ref.
        git_ref: String,
    },
    /// The commit has no template at the root.
    #[error("module {url} at {commit}: not a module: no {TEMPLATE_FILE} at the repository root")]
    NoTemplate {
        /// The repository.
        url: String,
        /// The commit.
        commit: String,
    },
    /// A local module changed since the offer was made, or local modules are not allowed.
    #[error("local module {path}: {reason}")]
    Local {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The cache directory could not be used.
    #[error("module cache {}: {source}", .path.display())]
    Cache {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// A cache of module repositories and templates on disk.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    root: PathBuf,
    base: String,
    allow_local: bool,
}

impl ModuleCache {
    /// A cache under `root` (created when needed). `name:version` references
    /// expand against [`DEFAULT_MODULE_BASE`]; local modules are allowed.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), base: DEFAULT_MODULE_BASE.to_owned(), allow_local: true }
    }

    /// Uses `base` for `name:version` references (e.g. a mirror, or
    /// `file:///srv/modules/lilypad-module-` offline).
    pub fn with_base(mut self, base: impl Into<String>) -> Self {
        self.base = base.into();
        self
    }

    /// Whether [`Self::fetch`] accepts [`ModuleSource::Local`] (a provider on a
    /// public network must not read arbitrary paths of its own machine).
    pub fn allow_local(mut self, allow: bool) -> Self {
        self.allow_local = allow;
        self
    }

    /// The base `name:version` references expand against.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Resolves what a user typed (`cowsay:v0.0.4`, `github.com/o/r:ref`, a path).
    pub fn resolve_str(&self, reference: &str) -> Result<ResolvedModule, ResolveError> {
        self.resolve(&ModuleRef::parse_with_base(reference, &self.base)?)
    }

    /// Resolves a reference to an exact version (job creator side).
    pub fn resolve(&self, r: &ModuleRef) -> Result<ResolvedModule, ResolveError> {
        match r {
            ModuleRef::Local { path } => {
                let expanded = expand_home(path);
                let canonical = fs::canonicalize(&expanded)
                    .map_err(|_| LoadError::NotFound(PathBuf::from(&expanded)))?;
                let template = load_local(&canonical)?;
                let source = ModuleSource::Local {
                    path: canonical.to_string_lossy().into_owned(),
                    template_hash: keccak256(template.source.as_bytes()),
                };
                Ok(ResolvedModule { id: source.module_id(), source, template })
            }
            ModuleRef::Git { url, git_ref } => {
                check_url(url)?;
                let repo = self.mirror(url, Some(git_ref))?;
                let commit = rev_parse(&repo, url, git_ref)?;
                self.at_commit(&repo, url, &commit)
            }
        }
    }

    /// Fetches the module an offer names (provider side): the template at
    /// exactly that commit, or the local template if it still hashes the same.
    pub fn fetch(&self, source: &ModuleSource) -> Result<ResolvedModule, ResolveError> {
        match source {
            ModuleSource::Local { path, template_hash } => {
                if !self.allow_local {
                    return Err(ResolveError::Local {
                        path: path.clone(),
                        reason: "local modules are only allowed on a local network".into(),
                    });
                }
                let template = load_local(Path::new(path))?;
                let actual = keccak256(template.source.as_bytes());
                if actual != *template_hash {
                    return Err(ResolveError::Local {
                        path: path.clone(),
                        reason: format!(
                            "template hashes to {actual}, the job was made for {template_hash}"
                        ),
                    });
                }
                Ok(ResolvedModule { id: source.module_id(), source: source.clone(), template })
            }
            ModuleSource::Git { url, commit } => {
                check_url(url)?;
                if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ResolveError::UnknownRef {
                        url: url.clone(),
                        git_ref: commit.clone(),
                    });
                }
                let repo = self.mirror(url, Some(commit))?;
                self.at_commit(&repo, url, commit)
            }
        }
    }

    fn at_commit(
        &self,
        repo: &Path,
        url: &str,
        commit: &str,
    ) -> Result<ResolvedModule, ResolveError> {
        let source = ModuleSource::Git { url: url.to_owned(), commit: commit.to_owned() };
        let id = source.module_id();
        let cached = self.root.join("templates").join(format!("{id}.tmpl"));
        if !cached.is_file() {
            let spec = format!("{commit}:{TEMPLATE_FILE}");
            let out = git(Some(repo), &["cat-file", "blob", &spec], url, "read template").map_err(
                |_| ResolveError::NoTemplate { url: url.to_owned(), commit: commit.to_owned() },
            )?;
            if out.len() as u64 > MAX_TEMPLATE_BYTES {
                return Err(LoadError::TooLarge {
                    path: PathBuf::from(&spec),
                    size: out.len() as u64,
                }
                .into());
            }
            write_atomic(&cached, &out).map_err(|e| self.cache_err(&cached, e))?;
        }
        let mut template = load_local(&cached)?;
        // Template error positions name the module's own file.
        template.path = PathBuf::from(TEMPLATE_FILE);
        Ok(ResolvedModule { source, id, template })
    }

    /// Makes sure a bare mirror of `url` exists and holds `want` (a ref or commit).
    fn mirror(&self, url: &str, want: Option<&str>) -> Result<PathBuf, ResolveError> {
        let dir = self.root.join("git");
        fs::create_dir_all(&dir).map_err(|e| self.cache_err(&dir, e))?;
        let key = hex_prefix(keccak256(url.as_bytes()).as_slice());
        let repo = dir.join(format!("{key}.git"));
        let lock_path = dir.join(format!("{key}.lock"));
        let lock = fs::File::create(&lock_path).map_err(|e| self.cache_err(&lock_path, e))?;
        lock.lock().map_err(|e| self.cache_err(&lock_path, e))?;
        let result = (|| {
            if !repo.join("HEAD").is_file() {
                let tmp = dir.join(format!("{key}.git.tmp"));
                let _ = fs::remove_dir_all(&tmp);
                let tmp_s = tmp.to_string_lossy().into_owned();
                git(None, &["clone", "--mirror", "--quiet", "--", url, &tmp_s], url, "clone")?;
                fs::rename(&tmp, &repo).map_err(|e| self.cache_err(&repo, e))?;
                return Ok(());
            }
            // Already cloned: fetch only when the wanted version is not there.
            let present = want.is_some_and(|w| rev_parse(&repo, url, w).is_ok());
            if !present {
                git(
                    Some(&repo),
                    &["fetch", "--quiet", "--prune", "--force", "origin"],
                    url,
                    "fetch",
                )?;
            }
            Ok(())
        })();
        let _ = lock.unlock();
        result.map(|()| repo)
    }

    fn cache_err(&self, path: &Path, source: std::io::Error) -> ResolveError {
        let _ = &self.root;
        ResolveError::Cache { path: path.to_owned(), source }
    }
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_owned(),
    }
}

fn check_url(url: &str) -> Result<(), ResolveError> {
    let ok = ["https://", "http://", "file://"].iter().any(|s| url.starts_with(s))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok { Ok(()) } else { Err(ResolveError::BadUrl(url.to_owned())) }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn rev_parse(repo: &Path, url: &str, git_ref: &str) -> Result<String, ResolveError> {
    if git_ref.starts_with('-') {
        return Err(ResolveError::UnknownRef { url: url.to_owned(), git_ref: git_ref.to_owned() });
    }
    let spec = format!("{git_ref}^{{commit}}");
    let out =
        git(Some(repo), &["rev-parse", "--verify", "--quiet", &spec], url, "resolve").map_err(
            |_| ResolveError::UnknownRef { url: url.to_owned(), git_ref: git_ref.to_owned() },
        )?;
    let commit = String::from_utf8_lossy(&out).trim().to_owned();
    if commit.len() == 40 {
        Ok(commit)
    } else {
        Err(ResolveError::UnknownRef { url: url.to_owned(), git_ref: git_ref.to_owned() })
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Runs git with safe settings and a deadline; returns stdout.
fn git(
    repo: Option<&Path>,
    args: &[&str],
    url: &str,
    action: &'static str,
) -> Result<Vec<u8>, ResolveError> {
    let err = |message: String| ResolveError::Git { action, url: url.to_owned(), message };
    let mut cmd = Command::new("git");
    cmd.args(["-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null"]);
    if let Some(repo) = repo {
        cmd.arg("--git-dir").arg(repo);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        err(format!("cannot run git ({e}); install git (e.g. apt-get install git)"))
    })?;
    // Drain the pipes on threads so a chatty git cannot block on a full pipe.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + GIT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!("stopped after {} s", GIT_TIMEOUT.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(err(e.to_string())),
        }
    };
    let out = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        let msg = String::from_utf8_lossy(&stderr).trim().to_owned();
        Err(err(if msg.is_empty() { status.to_string() } else { msg }))
    }
}
