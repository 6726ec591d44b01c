//! Loading modules: local templates, and git modules resolved to an exact
//! commit through a cache ([`ModuleCache`]).

use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    path::{Path, PathBuf},
};

mod resolve;

pub use resolve::{GIT_TIMEOUT, ModuleCache, ResolveError, ResolvedModule};

use lilypad_core::module::{
    ModuleError, ModuleSpec,
    template::{Rendered, Template, TemplateError},
};

/// The template file at the root of every module.
pub const TEMPLATE_FILE: &str = "lilypad_module.json.tmpl";

/// Templates larger than this are refused: real ones are a few KiB.
pub const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// A module template read from this machine.
#[derive(Debug, Clone)]
pub struct LocalModule {
    /// The template file.
    pub path: PathBuf,
    /// Its text.
    pub source: String,
}

/// Why a local module could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Nothing at the path.
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    /// A directory without a template.
    #[error("{}: not a module: it has no {TEMPLATE_FILE}", .0.display())]
    NoTemplate(PathBuf),
    /// Over [`MAX_TEMPLATE_BYTES`].
    #[error("{}: {size} bytes is over the {MAX_TEMPLATE_BYTES}-byte limit for a module template", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Not UTF-8 text.
    #[error("{}: not UTF-8 text", .0.display())]
    NotUtf8(PathBuf),
    /// Any other I/O failure.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The template does not parse or execute.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The rendered document is not a valid module.
    #[error("{0}")]
    Module(#[from] ModuleError),
}

/// Reads a module template from a directory (its `lilypad_module.json.tmpl`) or a file.
pub fn load_local(path: &Path) -> Result<LocalModule, LoadError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound(path.to_owned()),
        _ => LoadError::Io { path: path.to_owned(), source: e },
    })?;
    let file = if meta.is_dir() {
        let f = path.join(TEMPLATE_FILE);
        if !f.is_file() {
            return Err(LoadError::NoTemplate(path.to_owned()));
        }
        f
    } else {
        path.to_owned()
    };
    let io = |e| LoadError::Io { path: file.clone(), source: e };
    let handle = fs::File::open(&file).map_err(io)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so an oversized file is caught without reading it all.
    handle.take(MAX_TEMPLATE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        let size = fs::metadata(&file).map_or(bytes.len() as u64, |m| m.len());
        return Err(LoadError::TooLarge { path: file, size });
    }
    let source = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8(file.clone()))?;
    Ok(LocalModule { path: file, source })
}

impl LocalModule {
    /// The name used in template error positions: the file name.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| TEMPLATE_FILE.to_owned(), |n| n.to_string_lossy().into_owned())
    }

    /// Renders the template with `inputs`, without parsing the result.
    pub fn render_raw(&self, inputs: &BTreeMap<String, String>) -> Result<Rendered, LoadError> {
        Ok(Template::parse(&self.name(), &self.source)?.render(inputs)?)
    }

    /// Renders the template and parses the result into a [`ModuleSpec`].
    pub fn render(
        &self,
        inputs: &BTreeMap<String, String>,
    ) -> Result<(Rendered, ModuleSpec), LoadError> {
        let rendered = self.render_raw(inputs)?;
        let spec = ModuleSpec::from_rendered(&rendered.text)?;
        Ok((rendered, spec))
    }
}
