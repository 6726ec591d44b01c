//! A client of the Kubo RPC API: works with [`serve`](super::serve) and with a kubo daemon.

use std::{
    fs,
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use cid::Cid;
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use super::{
    ContentStore, Limits, MAX_BLOCK_SIZE, StorageError, parse_cid,
    rules::TreeCheck,
    unixfs::{BlockSink, add_path_to},
    verify_block,
    walk::{self, BlockSource},
};

/// Settings of a [`StorageClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of each HTTP request (a kubo daemon looks for a missing block on
    /// the network until then).
    pub timeout: Duration,
    /// Caps on what `fetch` and `cat` accept.
    pub limits: Limits,
    /// Blocks uploaded at once by `publish_*`. (Publishing always checks the
    /// tree against the default [`Limits`], what every fetch accepts.)
    pub upload_concurrency: usize,
}

impl Default for ClientOptions {
    /// 60 s per request, default [`Limits`], 4 uploads at once.
    fn default() -> Self {
        Self { timeout: Duration::from_secs(60), limits: Limits::default(), upload_concurrency: 4 }
    }
}

/// What a fetch wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSummary {
    /// Bytes of file content.
    pub bytes: u64,
    /// Files and directories below the root.
    pub entries: u64,
}

/// A client of the Kubo RPC API (`/api/v0/...`): our [`serve`](super::serve)
/// or a kubo daemon (`http://127.0.0.1:5001`). Everything it downloads is
/// verified against its CID before use.
#[derive(Debug, Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    base: String,
    opts: ClientOptions,
}

#[derive(Deserialize)]
struct PutAnswer {
    #[serde(rename = "Key")]
    key: String,
}

#[derive(Deserialize)]
struct KuboError {
    #[serde(rename = "Message")]
    message: String,
}

/// Records the CIDs put into a store (to upload them afterwards).
struct Recording<'a> {
    store: &'a ContentStore,
    cids: Vec<Cid>,
}

impl BlockSink for Recording<'_> {
    fn put_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StorageError> {
        if !self.store.has(cid) {
            self.cids.push(*cid);
        }
        self.store.put(cid, data)
    }
}

impl StorageClient {
    /// A client of the API at `base_url` (e.g. `http://127.0.0.1:5001`), default options.
    pub fn new(base_url: &str) -> Result<Self, StorageError> {
        Self::with_options(base_url, ClientOptions::default())
    }

    /// A client with the given options.
    pub fn with_options(base_url: &str, opts: ClientOptions) -> Result<Self, StorageError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .build()
            .map_err(|source| StorageError::Http { url: base.clone(), source })?;
        Ok(Self { http, base, opts })
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, command: &str) -> String {
        format!("{}/api/v0/{command}", self.base)
    }

    async fn check(url: &str, resp: reqwest::Response) -> Result<reqwest::Response, StorageError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<KuboError>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| body.chars().take(500).collect());
        Err(StorageError::Status { url: url.to_owned(), status: status.as_u16(), message })
    }

    /// Uploads one block (`block/put`); checks the server named it with the same hash.
    pub async fn put_block(&self, cid: &Cid, data: Vec<u8>) -> Result<(), StorageError> {
        let codec = if cid.codec() == super::RAW { "raw" } else { "dag-pb" };
        let url = format!(
            "{}?cid-codec={codec}&mhtype=sha2-256&mhlen=32&pin=false",
            self.url("block/put")
        );
        let form = Form::new().part("file", Part::bytes(data).file_name("block"));
        let http_err = |source| StorageError::Http { url: url.clone(), source };
        let resp = self.http.post(&url).multipart(form).send().await.map_err(http_err)?;
        let resp = Self::check(&url, resp).await?;
        let answer: PutAnswer = resp.json().await.map_err(http_err)?;
        let key = parse_cid(&answer.key)?;
        if key.hash() != cid.hash() {
            return Err(StorageError::Protocol {
                url,
                reason: format!("stored the block as {key}, expected the hash of {cid}"),
            });
        }
        Ok(())
    }

    async fn get_raw(&self, cid: &Cid) -> Result<Vec<u8>, StorageError> {
        let url = format!("{}?arg={cid}", self.url("block/get"));
        let http_err = |source| StorageError::Http { url: url.clone(), source };
        let resp = self.http.post(&url).send().await.map_err(http_err)?;
        let mut resp = Self::check(&url, resp).await?;
        let too_big = || StorageError::Protocol {
            url: url.clone(),
            reason: format!("block larger than {MAX_BLOCK_SIZE} bytes"),
        };
        if resp.content_length().is_some_and(|n| n > MAX_BLOCK_SIZE as u64) {
            return Err(too_big());
        }
        let mut data = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
            if data.len() + chunk.len() > MAX_BLOCK_SIZE {
                return Err(too_big());
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }

    /// Downloads one block (`block/get`) and verifies it against `cid`.
    pub async fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, StorageError> {
        let data = self.get_raw(cid).await?;
        verify_block(cid, &data)?;
        Ok(data)
    }

    /// Packages a file or directory locally (kubo-compatible CIDs) and uploads
    /// its blocks with `block/put`. Returns the root CID.
    pub async fn publish_path(&self, path: &Path) -> Result<Cid, StorageError> {
        let path = path.to_owned();
        // Blocks go to a temporary store on disk, not memory: results can be large.
        let staged = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            let tmp = tempfile::tempdir().map_err(StorageError::io(std::env::temp_dir()))?;
            // Thrown away after the upload: the server makes the blocks durable.
            let store = ContentStore::open(tmp.path())?.without_fsync();
            let mut rec = Recording { store: &store, cids: Vec::new() };
            let root = add_path_to(&path, &mut rec)?;
            let cids = rec.cids;
            Ok((tmp, store, root.cid, cids))
        })
        .await
        .map_err(|e| StorageError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })??;
        let (_tmp, store, root, cids) = staged;
        stream::iter(cids)
            .map(|cid| {
                let store = &store;
                async move {
                    let data = store.get(&cid)?.ok_or(StorageError::NotFound { cid })?;
                    self.put_block(&cid, data).await
                }
            })
            .buffer_unordered(self.opts.upload_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(root)
    }

    /// Publishes a directory tree; see [`publish_path`](Self::publish_path).
    pub async fn publish_dir(&self, path: &Path) -> Result<Cid, StorageError> {
        let meta = fs::symlink_metadata(path).map_err(StorageError::io(path))?;
        if !meta.is_dir() {
            return Err(StorageError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        self.publish_path(path).await
    }

    /// Publishes one file; see [`publish_path`](Self::publish_path).
    pub async fn publish_file(&self, path: &Path) -> Result<Cid, StorageError> {
        let meta = fs::symlink_metadata(path).map_err(StorageError::io(path))?;
        if !meta.is_file() {
            return Err(StorageError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::IsADirectory, "not a regular file"),
            });
        }
        self.publish_path(path).await
    }

    /// Downloads the file or directory `cid` to `dest` (which must not exist).
    ///
    /// Every block is verified against its CID before it is used; the tree
    /// must follow the [tree rules](super::rules) (what publishing checks) with
    /// the limits of the options; basic and HAMT-sharded directories are read. The
    /// tree is written into a temporary directory beside `dest` and renamed to
    /// `dest` only once the whole DAG verified: on any error `dest` does not
    /// appear and the temporary directory is removed.
    pub async fn fetch(&self, cid: &Cid, dest: &Path) -> Result<FetchSummary, StorageError> {
        if fs::symlink_metadata(dest).is_ok() {
            return Err(StorageError::DestinationExists { path: dest.to_owned() });
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".lilypad-fetch-")
            .tempdir_in(parent)
            .map_err(StorageError::io(parent))?;
        let target = tmp.path().join("content");
        let written = walk::write_tree(self, cid, &target, &self.opts.limits).await?;
        if fs::symlink_metadata(dest).is_ok() {
            return Err(StorageError::DestinationExists { path: dest.to_owned() });
        }
        fs::rename(&target, dest).map_err(StorageError::io(dest))?;
        Ok(FetchSummary { bytes: written.bytes, entries: written.entries })
    }

    /// The content of the file `cid`, every block verified.
    pub async fn cat(&self, cid: &Cid) -> Result<Vec<u8>, StorageError> {
        let root = walk::get_node(self, cid).await?;
        if root.is_directory() {
            return Err(StorageError::BadNode {
                cid: *cid,
                reason: "a directory, not a file".into(),
            });
        }
        let mut out = Vec::new();
        let mut check = TreeCheck::new(&self.opts.limits);
        let collect = |chunk: &[u8]| {
            out.extend_from_slice(chunk);
            Ok(())
        };
        walk::read_file(self, root, cid, "", &mut check, collect).await?;
        Ok(out)
    }
}

impl BlockSource for StorageClient {
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Vec<u8>, StorageError>> + Send {
        self.get_raw(cid)
    }
}
