//! The typed `ModuleSpec` and its parsing from a rendered legacy module document.
//!
//! Published modules render to a Bacalhau-shaped document. Two shapes exist and
//! both are accepted:
//!
//! - `job.Spec.Docker {Image, Entrypoint, EnvironmentVariables, WorkingDirectory}`
//!   beside `"Engine": "Docker"`;
//! - `job.Spec.EngineSpec {Type: "docker", Params {Image, Entrypoint (may be
//!   null), EnvironmentVariables, Parameters, WorkingDirectory}}` beside an
//!   empty `"Docker": {}`.
//!
//! Resources come from `machine {gpu, cpu, ram, disk}` (millicores and MiB),
//! the optional `machine.gpus [{vram}]` (MiB per GPU), and Bacalhau's
//! `job.Spec.Resources {CPU, Memory, Disk, GPU}` quantities; when both are
//! given the larger value of each dimension wins, so a module never gets less
//! than either part asks for. `Metadata`, `Wasm`, `Verifier`, `PublisherSpec`
//! and `Deal` are accepted and ignored: they have no meaning here.

use serde::{Deserialize, Serialize};

use crate::{spec::JobRequirements, verify::Verification};

/// Timeout of a module that does not set `job.Spec.Timeout`, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 1800;

/// A container image reference, optionally pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// Repository, with registry if any, e.g. `docker.io/zorlin/sdxl`.
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// `sha256:<64 hex>` digest, if pinned.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `repo[:tag][@sha256:<hex>]`.
    pub fn parse(s: &str) -> Result<Self, ModuleError> {
        let bad = |reason: &'static str| ModuleError::BadImage { image: s.to_owned(), reason };
        if s.is_empty() {
            return Err(bad("the image is empty"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("an image reference cannot contain spaces"));
        }
        let (name, digest) = match s.split_once('@') {
            Some((name, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("a digest must start with sha256:"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("a sha256 digest has 64 hex digits"));
                }
                (name, Some(format!("sha256:{}", hex.to_ascii_lowercase())))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(name[last_slash + i + 1..].to_owned())),
            None => (name, None),
        };
        if repository.is_empty() || repository.starts_with('/') || repository.ends_with('/') {
            return Err(bad("the repository name is empty"));
        }
        if tag.as_deref() == Some("") {
            return Err(bad("the tag after ':' is empty"));
        }
        Ok(Self { repository: repository.to_owned(), tag, digest })
    }

    /// Whether the image is pinned by digest (required for verifiable deals).
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A directory the job writes and the provider publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Name of the output.
    pub name: String,
    /// Absolute path inside the container.
    pub path: String,
}

/// A file the job creator provides, mounted read-only into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFileSpec {
    /// Key the creator uses (`--input-file KEY=PATH`).
    pub name: String,
    /// Absolute path inside the container.
    pub path: String,
}

/// A module, rendered and typed: everything a provider needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSpec {
    /// The container image.
    pub image: ImageRef,
    /// Entrypoint; empty means the image's own.
    pub entrypoint: Vec<String>,
    /// Arguments after the entrypoint.
    pub parameters: Vec<String>,
    /// Environment, in order, as `(name, value)`.
    pub env: Vec<(String, String)>,
    /// Working directory; `None` means the image's own.
    pub working_dir: Option<String>,
    /// What the job needs.
    pub resources: JobRequirements,
    /// Wall-clock limit in seconds.
    pub timeout_secs: u64,
    /// Output directories.
    pub outputs: Vec<OutputSpec>,
    /// Input files.
    pub input_files: Vec<InputFileSpec>,
    /// How a re-run checks the results (`"verification"` in the template; `exact` by
    /// default). See [`crate::verify`].
    #[serde(default)]
    pub verification: Verification,
}

/// Why a rendered module could not become a [`ModuleSpec`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// The rendered text is not JSON.
    #[error(
        "rendered module is not valid JSON at line {line}, column {column}: {message}\n{snippet}"
    )]
    Json {
        /// 1-based line in the rendered text.
        line: usize,
        /// 1-based column in the rendered text.
        column: usize,
        /// What the JSON parser expected.
        message: String,
        /// The offending line with a caret under the column.
        snippet: String,
    },
    /// A field has the wrong type or shape.
    #[error("{path}: {message}")]
    Field {
        /// Dotted path, e.g. `job.Spec.Timeout`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No Docker engine section with an image.
    #[error(
        "no container image: set job.Spec.Docker.Image (with \"Engine\": \"Docker\") or job.Spec.EngineSpec.Params.Image (with \"Type\": \"docker\")"
    )]
    NoImage,
    /// An engine other than Docker.
    #[error("engine {0:?} is not supported: only Docker modules run on this network")]
    UnsupportedEngine(String),
    /// A malformed image reference.
    #[error("image {image:?}: {reason}")]
    BadImage {
        /// The image as rendered.
        image: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A malformed environment entry.
    #[error("environment entry {0:?} is not NAME=value")]
    BadEnv(String),
    /// A network mode other than none.
    #[error("job.Spec.Network.Type {0:?} is not allowed: jobs run without network (use \"None\")")]
    NetworkNotAllowed(String),
    /// A resource quantity that cannot be read.
    #[error("{path}: cannot read quantity {value:?} ({reason})")]
    BadQuantity {
        /// Dotted path of the field.
        path: &'static str,
        /// The value as rendered.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A JSON number or a string holding one (Bacalhau quantities are strings).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Num(serde_json::Number),
    Str(String),
}

impl NumOrStr {
    fn text(&self) -> String {
        match self {
            Self::Num(n) => n.to_string(),
            Self::Str(s) => s.trim().to_owned(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct LegacyGpu {
    #[serde(default)]
    vram: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct LegacyMachine {
    #[serde(default)]
    gpu: Option<u32>,
    #[serde(default)]
    cpu: Option<u32>,
    #[serde(default)]
    ram: Option<u64>,
    #[serde(default)]
    disk: Option<u64>,
    #[serde(default)]
    gpus: Option<Vec<LegacyGpu>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyDocker {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    parameters: Option<Vec<String>>,
    #[serde(default)]
    environment_variables: Option<Vec<String>>,
    #[serde(default)]
    working_directory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEngineSpec {
    #[serde(default, rename = "Type")]
    kind: Option<String>,
    #[serde(default)]
    params: Option<LegacyDocker>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyResources {
    #[serde(default, rename = "CPU")]
    cpu: Option<NumOrStr>,
    #[serde(default)]
    memory: Option<NumOrStr>,
    #[serde(default)]
    disk: Option<NumOrStr>,
    #[serde(default, rename = "GPU")]
    gpu: Option<NumOrStr>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyOutput {
    #[serde(default)]
    name: String,
    path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyNetwork {
    #[serde(default, rename = "Type")]
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacySpec {
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    docker: Option<LegacyDocker>,
    #[serde(default)]
    engine_spec: Option<LegacyEngineSpec>,
    #[serde(default)]
    resources: Option<LegacyResources>,
    #[serde(default)]
    timeout: Option<serde_json::Number>,
    #[serde(default)]
    outputs: Option<Vec<LegacyOutput>>,
    #[serde(default)]
    network: Option<LegacyNetwork>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyJob {
    spec: LegacySpec,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LegacyInputFile {
    Path(String),
    Named {
        #[serde(alias = "Name")]
        name: String,
        #[serde(alias = "Path")]
        path: String,
    },
}

#[derive(Debug, Deserialize)]
struct LegacyModule {
    #[serde(default)]
    machine: Option<LegacyMachine>,
    job: LegacyJob,
    #[serde(default, rename = "inputFiles")]
    input_files: Option<Vec<LegacyInputFile>>,
    #[serde(default)]
    verification: Option<Verification>,
}

fn json_error(text: &str, e: &serde_json::Error) -> ModuleError {
    let line = e.line().max(1);
    let column = e.column().max(1);
    let src_line = text.lines().nth(line - 1).unwrap_or("");
    let caret = " ".repeat(src_line.chars().take(column - 1).count()) + "^";
    let message = e.to_string();
    // serde_json appends " at line L column C"; the position is reported on its own.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    ModuleError::Json { line, column, message, snippet: format!("{src_line}\n{caret}") }
}

/// Parses a CPU quantity into millicores: `1`, `0.5`, `500m`.
fn parse_cpu(path: &'static str, q: &NumOrStr) -> Result<u32, ModuleError> {
    let text = q.text();
    let bad = |reason| ModuleError::BadQuantity { path, value: text.clone(), reason };
    if text.is_empty() {
        return Ok(0);
    }
    let millis = if let Some(m) = text.strip_suffix('m') {
        m.parse::<f64>().map_err(|_| bad("expected cores like 1, 0.5 or millicores like 500m"))?
    } else {
        text.parse::<f64>()
            .map_err(|_| bad("expected cores like 1, 0.5 or millicores like 500m"))?
            * 1000.0
    };
    if !(0.0..=f64::from(u32::MAX)).contains(&millis) {
        return Err(bad("out of range"));
    }
    // Round up: a module asking for 0.0005 cores still needs some CPU.
    Ok(millis.ceil() as u32)
}

/// Parses a byte quantity into MiB (rounded up): `1gb`, `512Mi`, `1000mb`, `2Gi`, `1048576`.
fn parse_mib(path: &'static str, q: &NumOrStr) -> Result<u64, ModuleError> {
    let text = q.text();
    let bad = |reason| ModuleError::BadQuantity { path, value: text.clone(), reason };
    if text.is_empty() {
        return Ok(0);
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad("expected a number with an optional unit"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad("unknown unit (use b, kb, mb, gb, tb, Ki, Mi, Gi, Ti)")),
    };
    let mib = (num * mult / (1024.0 * 1024.0)).ceil();
    if !(0.0..=1e15).contains(&mib) {
        return Err(bad("out of range"));
    }
    Ok(mib as u64)
}

fn parse_count(path: &'static str, q: &NumOrStr) -> Result<u32, ModuleError> {
    let text = q.text();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<u32>().map_err(|_| ModuleError::BadQuantity {
        path,
        value: text.clone(),
        reason: "expected a whole number of GPUs",
    })
}

fn parse_env(entries: Vec<String>) -> Result<Vec<(String, String)>, ModuleError> {
    entries
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                Ok((k.to_owned(), v.to_owned()))
            }
            _ => Err(ModuleError::BadEnv(e)),
        })
        .collect()
}

fn absolute(path: String, field: &str) -> Result<String, ModuleError> {
    if path.starts_with('/') && !path.split('/').any(|s| s == "..") {
        Ok(path)
    } else {
        Err(ModuleError::Field {
            path: field.to_owned(),
            message: format!("{path:?} must be an absolute path inside the container without '..'"),
        })
    }
}

impl ModuleSpec {
    /// Parses the text a module template rendered to.
    pub fn from_rendered(text: &str) -> Result<Self, ModuleError> {
        // Syntax first, so a JSON error points at the rendered text.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| json_error(text, &e))?;
        let doc: LegacyModule = serde_path_to_error::deserialize(value).map_err(|e| {
            ModuleError::Field { path: e.path().to_string(), message: e.inner().to_string() }
        })?;
        Self::from_legacy(doc)
    }

    fn from_legacy(doc: LegacyModule) -> Result<Self, ModuleError> {
        let spec = doc.job.spec;

        // Which engine section holds the container.
        let docker_has_image = spec.docker.as_ref().is_some_and(|d| d.image.is_some());
        let engine = spec.engine.as_deref().map(str::to_ascii_lowercase);
        if let Some(e) = engine.as_deref()
            && e != "docker"
            && !docker_has_image
        {
            return Err(ModuleError::UnsupportedEngine(spec.engine.clone().unwrap_or_default()));
        }
        let container = if docker_has_image {
            spec.docker.unwrap_or_default()
        } else if let Some(es) = spec.engine_spec {
            let kind = es.kind.clone().unwrap_or_default();
            if !kind.eq_ignore_ascii_case("docker") {
                return Err(ModuleError::UnsupportedEngine(kind));
            }
            es.params.unwrap_or_default()
        } else {
            return Err(ModuleError::NoImage);
        };
        let image = ImageRef::parse(container.image.as_deref().ok_or(ModuleError::NoImage)?)?;

        if let Some(kind) = spec.network.and_then(|n| n.kind)
            && !kind.eq_ignore_ascii_case("none")
            && !kind.is_empty()
        {
            return Err(ModuleError::NetworkNotAllowed(kind));
        }

        let machine = doc.machine.unwrap_or_default();
        let mut req = JobRequirements {
            cpu_millicores: machine.cpu.unwrap_or(0),
            ram_mib: machine.ram.unwrap_or(0),
            disk_mib: machine.disk.unwrap_or(0),
            gpu_count: machine.gpu.unwrap_or(0),
            gpu_vram_mib: 0,
        };
        if let Some(gpus) = machine.gpus {
            let n = u32::try_from(gpus.len()).unwrap_or(u32::MAX);
            req.gpu_count = req.gpu_count.max(n);
            req.gpu_vram_mib = gpus.iter().filter_map(|g| g.vram).max().unwrap_or(0);
        }
        if let Some(r) = spec.resources {
            if let Some(q) = &r.cpu {
                req.cpu_millicores =
                    req.cpu_millicores.max(parse_cpu("job.Spec.Resources.CPU", q)?);
            }
            if let Some(q) = &r.memory {
                req.ram_mib = req.ram_mib.max(parse_mib("job.Spec.Resources.Memory", q)?);
            }
            if let Some(q) = &r.disk {
                req.disk_mib = req.disk_mib.max(parse_mib("job.Spec.Resources.Disk", q)?);
            }
            if let Some(q) = &r.gpu {
                req.gpu_count = req.gpu_count.max(parse_count("job.Spec.Resources.GPU", q)?);
            }
        }

        let timeout_secs = match spec.timeout {
            None => DEFAULT_TIMEOUT_SECS,
            Some(n) => match n.as_f64() {
                Some(t) if t > 0.0 && t <= 31_536_000.0 => t.ceil() as u64,
                Some(0.0) => DEFAULT_TIMEOUT_SECS,
                _ => {
                    return Err(ModuleError::Field {
                        path: "job.Spec.Timeout".into(),
                        message: format!("{n} is not a number of seconds between 0 and one year"),
                    });
                }
            },
        };

        let outputs = match spec.outputs {
            Some(list) if !list.is_empty() => list
                .into_iter()
                .map(|o| {
                    Ok(OutputSpec {
                        name: if o.name.is_empty() { "outputs".into() } else { o.name },
                        path: absolute(o.path, "job.Spec.Outputs.Path")?,
                    })
                })
                .collect::<Result<_, ModuleError>>()?,
            _ => vec![OutputSpec { name: "outputs".into(), path: "/outputs".into() }],
        };

        let input_files = doc
            .input_files
            .unwrap_or_default()
            .into_iter()
            .map(|f| {
                let (name, path) = match f {
                    LegacyInputFile::Path(p) => {
                        let name = p.rsplit('/').next().unwrap_or(&p).to_owned();
                        (name, p)
                    }
                    LegacyInputFile::Named { name, path } => (name, path),
                };
                Ok(InputFileSpec { name, path: absolute(path, "inputFiles.path")? })
            })
            .collect::<Result<_, ModuleError>>()?;

        let verification = doc.verification.unwrap_or_default();
        verification
            .check()
            .map_err(|e| ModuleError::Field { path: "verification".into(), message: e.0 })?;

        Ok(Self {
            image,
            entrypoint: container.entrypoint.unwrap_or_default(),
            parameters: container.parameters.unwrap_or_default(),
            env: parse_env(container.environment_variables.unwrap_or_default())?,
            working_dir: container.working_directory.filter(|w| !w.is_empty()),
            resources: req,
            timeout_secs,
            outputs,
            input_files,
            verification,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `job.Spec.Docker` shape, as cowsay renders with `Message=moo`.
    const DOCKER_SHAPE: &str = r#"{
  "machine": { "gpu": 0, "cpu": 1000, "ram": 100 },
  "job": {
    "APIVersion": "V1beta1",
    "Metadata": { "CreatedAt": "0001-01-01T00:00:00Z", "Requester": {} },
    "Spec": {
      "Deal": { "Concurrency": 1 },
      "Docker": {
        "Entrypoint": ["/usr/games/cowsay", "moo"],
        "EnvironmentVariables": ["A=b=c", "EMPTY="],
        "Image": "grycap/cowsay:latest@sha256:fad516b39e3a587f33ce3dbbb1e646073ef35e0b696bcf9afb1a3e399ce2ab0b",
        "WorkingDirectory": "/work"
      },
      "Engine": "Docker",
      "Language": { "JobContext": {} },
      "Network": { "Type": "None" },
      "PublisherSpec": { "Type": "IPFS" },
      "Resources": { "GPU": "" },
      "Timeout": 600,
      "Verifier": "Noop",
      "Wasm": { "EntryModule": {} },
      "Outputs": [ { "Name": "outputs", "StorageSource": "IPFS", "Path": "/outputs" } ]
    }
  }
}"#;

    /// The `EngineSpec` shape of sdxl/ollama-style modules.
    const ENGINE_SPEC_SHAPE: &str = r#"{
  "machine": { "gpu": 1, "cpu": 1000, "ram": 8000, "gpus": [ { "vram": 24576 } ] },
  "job": {
    "APIVersion": "V1beta1",
    "Metadata": { "CreatedAt": "0001-01-01T00:00:00Z", "Requester": {} },
    "Spec": {
      "Deal": { "Concurrency": 1 },
      "Docker": {},
      "EngineSpec": {
        "Params": {
          "Entrypoint": null,
          "EnvironmentVariables": ["PROMPT=question mark floating in space", "HF_HUB_OFFLINE=1"],
          "Image": "docker.io/zorlin/sdxl-sv3du:v0.9-sv3d-lilypad1",
          "Parameters": ["--steps", "20"],
          "WorkingDirectory": ""
        },
        "Type": "docker"
      },
      "Network": { "Type": "None" },
      "Outputs": [ { "Name": "outputs", "Path": "/outputs" } ],
      "PublisherSpec": { "Type": "ipfs" },
      "Resources": { "GPU": "1", "Memory": "16gb", "CPU": "500m", "Disk": "2Gi" },
      "Timeout": 1800,
      "Wasm": { "EntryModule": {} }
    }
  }
}"#;

    #[test]
    fn docker_shape() {
        let m = ModuleSpec::from_rendered(DOCKER_SHAPE).unwrap();
        assert_eq!(m.image.repository, "grycap/cowsay");
        assert_eq!(m.image.tag.as_deref(), Some("latest"));
        assert!(m.image.is_pinned());
        assert_eq!(m.entrypoint, ["/usr/games/cowsay", "moo"]);
        assert_eq!(m.env, [("A".into(), "b=c".into()), ("EMPTY".into(), String::new())]);
        assert_eq!(m.working_dir.as_deref(), Some("/work"));
        assert_eq!(m.timeout_secs, 600);
        assert_eq!(
            m.resources,
            JobRequirements { cpu_millicores: 1000, ram_mib: 100, ..Default::default() }
        );
        assert_eq!(m.outputs, [OutputSpec { name: "outputs".into(), path: "/outputs".into() }]);
    }

    #[test]
    fn engine_spec_shape() {
        let m = ModuleSpec::from_rendered(ENGINE_SPEC_SHAPE).unwrap();
        assert_eq!(m.image.to_string(), "docker.io/zorlin/sdxl-sv3du:v0.9-sv3d-lilypad1");
        assert!(!m.image.is_pinned());
        assert!(m.entrypoint.is_empty(), "null entrypoint means the image's own");
        assert_eq!(m.parameters, ["--steps", "20"]);
        assert_eq!(m.working_dir, None);
        // 16gb = 16e9 bytes = 15258.8 MiB, rounded up; larger than machine.ram.
        assert_eq!(
            m.resources,
            JobRequirements {
                cpu_millicores: 1000,
                ram_mib: 15259,
                disk_mib: 2048,
                gpu_count: 1,
                gpu_vram_mib: 24576
            }
        );
        assert_eq!(m.timeout_secs, 1800);
    }

    #[test]
    fn json_errors_point_at_the_position() {
        let text = "{\n  \"job\": {\n    \"Spec\": { \"Timeout\": 5,, }\n  }\n}";
        match ModuleSpec::from_rendered(text).unwrap_err() {
            ModuleError::Json { line, column, snippet, .. } => {
                assert_eq!((line, column), (3, 28), "the second comma");
                assert!(snippet.ends_with(&format!("{}^", " ".repeat(27))), "{snippet}");
            }
            e => panic!("wrong error {e}"),
        }
        let e = ModuleSpec::from_rendered("{\"job\": ").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn field_errors_name_the_path() {
        let e = ModuleSpec::from_rendered(
            r#"{"job":{"Spec":{"Engine":"Docker","Docker":{"Image":"a","Entrypoint":"sh"}}}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, ModuleError::Field { path, .. } if path == "job.Spec.Docker.Entrypoint"),
            "{e}"
        );
        let e =
            ModuleSpec::from_rendered(r#"{"machine":{"cpu":"x"},"job":{"Spec":{}}}"#).unwrap_err();
        assert!(matches!(&e, ModuleError::Field { path, .. } if path == "machine.cpu"), "{e}");
        assert_eq!(
            ModuleSpec::from_rendered(r#"{"job":{"Spec":{"Docker":{}}}}"#),
            Err(ModuleError::NoImage)
        );
        assert_eq!(
            ModuleSpec::from_rendered(r#"{"job":{"Spec":{"Engine":"Wasm"}}}"#),
            Err(ModuleError::UnsupportedEngine("Wasm".into()))
        );
        assert_eq!(
            ModuleSpec::from_rendered(
                r#"{"job":{"Spec":{"Docker":{"Image":"a"},"Network":{"Type":"Full"}}}}"#
            ),
            Err(ModuleError::NetworkNotAllowed("Full".into()))
        );
        assert_eq!(
            ModuleSpec::from_rendered(
                r#"{"job":{"Spec":{"Docker":{"Image":"a","EnvironmentVariables":["NOEQUALS"]}}}}"#
            ),
            Err(ModuleError::BadEnv("NOEQUALS".into()))
        );
        let e = ModuleSpec::from_rendered(
            r#"{"job":{"Spec":{"Docker":{"Image":"a"},"Resources":{"Memory":"12 parsecs"}}}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ModuleError::BadQuantity { path: "job.Spec.Resources.Memory", .. }));
        let e = ModuleSpec::from_rendered(
            r#"{"job":{"Spec":{"Docker":{"Image":"a"},"Outputs":[{"Name":"o","Path":"../x"}]}}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ModuleError::Field { .. }), "{e}");
    }

    #[test]
    fn images_with_and_without_digest() {
        let d = "sha256:".to_owned() + &"ab".repeat(32);
        let cases = [
            ("alpine", "alpine", None, None),
            ("alpine:3.20", "alpine", Some("3.20"), None),
            ("localhost:5000/x/y:1", "localhost:5000/x/y", Some("1"), None),
            ("localhost:5000/x/y", "localhost:5000/x/y", None, None),
        ];
        for (s, repo, tag, digest) in cases {
            let i = ImageRef::parse(s).unwrap();
            assert_eq!(
                (i.repository.as_str(), i.tag.as_deref(), i.digest.as_deref()),
                (repo, tag, digest)
            );
            assert_eq!(i.to_string(), s);
        }
        let i = ImageRef::parse(&format!("x/y@{d}")).unwrap();
        assert_eq!(i.digest.as_deref(), Some(d.as_str()));
        assert_eq!(i.tag, None);
        for bad in ["", "a b", "x@sha256:12", "x@md5:00", "x:", "/x"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantities() {
        let q = |s: &str| NumOrStr::Str(s.into());
        assert_eq!(parse_cpu("p", &q("500m")).unwrap(), 500);
        assert_eq!(parse_cpu("p", &q("1.5")).unwrap(), 1500);
        assert_eq!(parse_cpu("p", &q("")).unwrap(), 0);
        assert!(parse_cpu("p", &q("-1")).is_err());
        assert_eq!(parse_mib("p", &q("1Gi")).unwrap(), 1024);
        assert_eq!(parse_mib("p", &q("1gb")).unwrap(), 954);
        assert_eq!(parse_mib("p", &q("1")).unwrap(), 1);
        assert_eq!(parse_mib("p", &q("512Mi")).unwrap(), 512);
        assert!(parse_mib("p", &q("1xb")).is_err());
        assert_eq!(parse_count("p", &q("2")).unwrap(), 2);
        assert!(parse_count("p", &q("1.5")).is_err());
    }

    #[test]
    fn input_files() {
        let m = ModuleSpec::from_rendered(
            r#"{"inputFiles":["/inputs/a.txt",{"name":"Image","path":"/inputs/img.png"}],
                "job":{"Spec":{"Docker":{"Image":"a"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            m.input_files,
            [
                InputFileSpec { name: "a.txt".into(), path: "/inputs/a.txt".into() },
                InputFileSpec { name: "Image".into(), path: "/inputs/img.png".into() }
            ]
        );
        assert_eq!(m.timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn verification_is_declared_in_the_module_and_checked() {
        let job = r#""job":{"Spec":{"Engine":"Docker","Docker":{"Image":"a:1"}}}"#;
        let m = ModuleSpec::from_rendered(&format!("{{{job}}}")).unwrap();
        assert_eq!(m.verification, Verification::Exact);
        let m = ModuleSpec::from_rendered(&format!(
            r#"{{{job},"verification":{{"mode":"embeddings_cosine","file":"outputs/e.json","min_cosine":0.999}}}}"#
        ))
        .unwrap();
        assert_eq!(m.verification.file(), Some("outputs/e.json"));
        for bad in [
            r#"{"mode":"embeddings_cosine","file":"outputs/e.json","min_cosine":2}"#,
            r#"{"mode":"nearly"}"#,
        ] {
            let e = ModuleSpec::from_rendered(&format!(r#"{{{job},"verification":{bad}}}"#))
                .unwrap_err();
            assert!(
                matches!(&e, ModuleError::Field { path, .. } if path.starts_with("verification")),
                "{e}"
            );
        }
    }
}
