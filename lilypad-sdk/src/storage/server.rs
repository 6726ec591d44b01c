//! The content store over HTTP: a subset of the Kubo RPC API.
//!
//! | route | as kubo | notes |
//! |---|---|---|
//! | `POST /api/v0/block/put` | multipart, one part | `cid-codec` (`raw` default, `dag-pb`), legacy `format=v0`; sha2-256 only; answers `{"Key","Size"}` |
//! | `POST /api/v0/block/get?arg=CID` | raw bytes | 404 when absent (kubo: 500) |
//! | `POST /api/v0/cat?arg=CID` | file content, streamed | verified block by block |
//! | `POST /api/v0/add` | multipart files, `application/x-directory` and `application/symlink` parts | kubo defaults only; `only-hash`, `wrap-with-directory`; NDJSON answer, root last |
//! | `POST /api/v0/version` | `{"Version"}` | |
//! | `GET /healthz` | | `ok` |
//!
//! Errors use kubo's shape `{"Message","Code":0,"Type":"error"}`: 400 for bad
//! CIDs and parameters (with the reason), 413 for bodies over the limits.

use std::{collections::BTreeMap, future::Future, net::SocketAddr, path::Path, sync::Arc};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Multipart, Query, State, multipart::MultipartError},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use cid::Cid;
use serde::Serialize;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use super::{
    ContentStore, DAG_PB, Limits, MAX_BLOCK_SIZE, RAW, StorageError, parse_cid,
    rules::{self, Kind, TreeCheck, TreeView},
    sha256_multihash,
    unixfs::{Added, BlockSink, DirectoryBuilder, HashOnly, add_reader, add_symlink},
    walk::{self, BlockSource, FileReader, Node},
};

/// Limits of a [`serve`]d store.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest block `block/put` accepts (kubo: 1 MiB).
    pub max_block_bytes: usize,
    /// Largest request body of `add` (files are held in memory while packaged).
    pub max_add_bytes: usize,
}

impl Default for ServerOptions {
    /// 1 MiB blocks, 64 MiB per `add`.
    fn default() -> Self {
        Self { max_block_bytes: MAX_BLOCK_SIZE, max_add_bytes: 64 << 20 }
    }
}

/// A running server; [`shutdown`](Self::shutdown) stops it gracefully.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL for a [`StorageClient`](super::StorageClient).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets requests in flight finish, and waits.
    pub async fn shutdown(mut self) -> Result<(), StorageError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let io = |e| StorageError::Io { path: "<server>".into(), source: e };
        (&mut self.task).await.map_err(|e| io(std::io::Error::other(e)))?.map_err(io)
    }
}

struct AppState {
    store: ContentStore,
    opts: ServerOptions,
}

/// Serves `store` on `listener` with default [`ServerOptions`].
pub async fn serve(
    store: ContentStore,
    listener: TcpListener,
) -> Result<ServerHandle, StorageError> {
    serve_with(store, listener, ServerOptions::default()).await
}

/// Serves `store` on `listener` (bind `127.0.0.1:0` for tests).
pub async fn serve_with(
    store: ContentStore,
    listener: TcpListener,
    opts: ServerOptions,
) -> Result<ServerHandle, StorageError> {
    let addr = listener.local_addr().map_err(StorageError::io("<listener>"))?;
    // Multipart framing adds a few hundred bytes around a block.
    let block_body = opts.max_block_bytes + 64 * 1024;
    let add_body = opts.max_add_bytes;
    let state = Arc::new(AppState { store, opts });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v0/version", post(version))
        .route("/api/v0/block/put", post(block_put).layer(DefaultBodyLimit::max(block_body)))
        .route("/api/v0/block/get", post(block_get))
        .route("/api/v0/cat", post(cat))
        .route("/api/v0/add", post(add).layer(DefaultBodyLimit::max(add_body)))
        .with_state(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(ServerHandle { addr, stop: Some(stop), task })
}

/// An error answer in kubo's JSON shape.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let status = match &e {
            StorageError::InvalidCid { .. }
            | StorageError::UnsupportedCid { .. }
            | StorageError::UnsafeName { .. }
            | StorageError::Symlink { .. }
            | StorageError::BadNode { .. } => StatusCode::BAD_REQUEST,
            StorageError::NotFound { .. } => StatusCode::NOT_FOUND,
            StorageError::LimitExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        // 413 when the body limit was hit, 400 for malformed multipart.
        Self::new(e.status(), e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "Message")]
            message: &'a str,
            #[serde(rename = "Code")]
            code: u8,
            #[serde(rename = "Type")]
            kind: &'a str,
        }
        let body = Body { message: &self.message, code: 0, kind: "error" };
        (self.status, Json(body)).into_response()
    }
}

type Params = Query<Vec<(String, String)>>;

fn param<'a>(q: &'a Params, name: &str) -> Option<&'a str> {
    q.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn flag(q: &Params, name: &str) -> Result<bool, ApiError> {
    match param(q, name) {
        None | Some("false") => Ok(false),
        Some("" | "true") => Ok(true),
        Some(v) => Err(ApiError::bad(format!("{name}: expected true or false, got {v:?}"))),
    }
}

fn arg_cid(q: &Params) -> Result<Cid, ApiError> {
    let arg =
        param(q, "arg").ok_or_else(|| ApiError::bad("argument \"arg\" (a CID) is required"))?;
    Ok(parse_cid(arg)?)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "Version": concat!("lilypad-store/", env!("CARGO_PKG_VERSION")) }))
}

async fn block_put(
    State(st): State<Arc<AppState>>,
    q: Params,
    mut form: Multipart,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mhtype = param(&q, "mhtype").unwrap_or("sha2-256");
    if mhtype != "sha2-256" {
        return Err(ApiError::bad(format!("mhtype {mhtype:?} is not supported (only sha2-256)")));
    }
    if !matches!(param(&q, "mhlen"), None | Some("-1" | "32")) {
        return Err(ApiError::bad("mhlen must be 32 for sha2-256"));
    }
    let v0 = matches!(param(&q, "format"), Some("v0" | "protobuf"));
    let codec = match (v0, param(&q, "cid-codec")) {
        (true, _) | (false, Some("dag-pb" | "protobuf")) => DAG_PB,
        (false, None | Some("raw")) => RAW,
        (false, Some(c)) => {
            return Err(ApiError::bad(format!("cid-codec {c:?} is not supported (raw, dag-pb)")));
        }
    };
    let field =
        form.next_field().await?.ok_or_else(|| ApiError::bad("no file part in the request"))?;
    let data = field.bytes().await?;
    if data.len() > st.opts.max_block_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "block of {} bytes is over the limit of {}",
                data.len(),
                st.opts.max_block_bytes
            ),
        ));
    }
    let mh = sha256_multihash(&data);
    let cid = if v0 { Cid::new_v0(mh) } else { Ok(Cid::new_v1(codec, mh)) }
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let size = data.len();
    let store = st.store.clone();
    blocking(move || store.put(&cid, &data)).await?;
    Ok(Json(serde_json::json!({ "Key": cid.to_string(), "Size": size })))
}

async fn block_get(State(st): State<Arc<AppState>>, q: Params) -> Result<Response, ApiError> {
    let cid = arg_cid(&q)?;
    let store = st.store.clone();
    let data = blocking(move || store.get(&cid)).await?.ok_or(StorageError::NotFound { cid })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

/// The store as a block source for the DAG walk (which verifies every block).
struct StoreSource(ContentStore);

impl BlockSource for StoreSource {
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Vec<u8>, StorageError>> + Send {
        let (store, cid) = (self.0.clone(), *cid);
        async move {
            tokio::task::spawn_blocking(move || store.get(&cid))
                .await
                .map_err(|e| StorageError::Io {
                    path: "<store>".into(),
                    source: std::io::Error::other(e),
                })??
                .ok_or(StorageError::NotFound { cid })
        }
    }
}

async fn cat(State(st): State<Arc<AppState>>, q: Params) -> Result<Response, ApiError> {
    let cid = arg_cid(&q)?;
    let src = StoreSource(st.store.clone());
    let root = walk::get_node(&src, &cid).await?;
    if !matches!(root, Node::File { .. }) {
        return Err(ApiError::bad(format!("{cid} is a directory or a link, not a file")));
    }
    let state = (src, FileReader::new(root, cid));
    let body = futures::stream::try_unfold(state, move |(src, mut reader)| async move {
        let chunk = reader.next_chunk(&src).await?;
        Ok::<_, StorageError>(chunk.map(|c| (Bytes::from(c), (src, reader))))
    });
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(body))
        .into_response())
}

/// A tree received by `add`, held in memory (bounded by the body limit).
enum MemNode {
    File(Bytes),
    Symlink(String),
    Dir(BTreeMap<String, Self>),
}

/// Decodes a multipart file name as kubo does (`url.QueryUnescape`: `+` is a space).
fn part_path(raw: &str) -> Result<Vec<String>, ApiError> {
    let plus = raw.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .map_err(|_| ApiError::bad(format!("file name {raw:?} is not UTF-8")))?;
    let mut parts = Vec::new();
    for (i, name) in decoded.split('/').enumerate() {
        let dir = parts.join("/");
        if name.is_empty() && i > 0 {
            continue; // a trailing slash
        }
        parts.push(rules::check_name(&dir, name.as_bytes())?.to_owned());
    }
    Ok(parts)
}

fn insert(
    root: &mut BTreeMap<String, MemNode>,
    path: &[String],
    node: MemNode,
) -> Result<(), ApiError> {
    let Some((last, dirs)) = path.split_last() else {
        return Err(ApiError::bad("empty file name"));
    };
    let mut dir = root;
    for name in dirs {
        let entry = dir.entry(name.clone()).or_insert_with(|| MemNode::Dir(BTreeMap::new()));
        dir = match entry {
            MemNode::Dir(d) => d,
            MemNode::File(_) | MemNode::Symlink(_) => {
                return Err(ApiError::bad(format!("{name:?} is both a file and a directory")));
            }
        };
    }
    match (dir.get(last), &node) {
        (None, _) => {
            dir.insert(last.clone(), node);
        }
        // A directory part after files inside it were seen (or twice) is harmless.
        (Some(MemNode::Dir(_)), MemNode::Dir(_)) => {}
        _ => return Err(ApiError::bad(format!("{:?} appears twice", path.join("/")))),
    }
    Ok(())
}

/// A tree received by `add`, seen by the link resolver of the tree rules.
struct MemView<'a>(&'a MemNode);

impl TreeView for MemView<'_> {
    fn kind(&self, path: &[&str]) -> Result<Kind, StorageError> {
        let mut node = self.0;
        for name in path {
            let MemNode::Dir(children) = node else { return Ok(Kind::Missing) };
            let Some(child) = children.get(*name) else { return Ok(Kind::Missing) };
            node = child;
        }
        Ok(match node {
            MemNode::File(_) => Kind::File,
            MemNode::Dir(_) => Kind::Dir,
            MemNode::Symlink(target) => Kind::Link(target.as_bytes().to_vec()),
        })
    }
}

/// Applies the tree rules (default limits) to a tree received by `add`, as
/// packaging a directory on disk does: `add` publishes only what a fetch accepts.
fn check_mem_tree(root: &MemNode) -> Result<(), StorageError> {
    fn visit(
        node: &MemNode,
        rel: &str,
        depth: u32,
        check: &mut TreeCheck<'_>,
    ) -> Result<(), StorageError> {
        match node {
            MemNode::File(bytes) => check.add_bytes(rel, bytes.len() as u64),
            MemNode::Symlink(target) => check.link(rel, target.as_bytes()).map(drop),
            MemNode::Dir(children) => {
                let entries = children.iter().map(|(n, c)| (n.as_bytes().to_vec(), c)).collect();
                // Depth is checked before descending: the recursion is bounded.
                for (_, child_rel, child) in check.directory(rel, depth, entries)? {
                    visit(child, &child_rel, depth + 1, check)?;
                }
                Ok(())
            }
        }
    }
    let limits = Limits::default();
    let mut check = TreeCheck::new(&limits);
    visit(root, "", 0, &mut check)?;
    check.resolve_links(&MemView(root))
}

#[derive(Serialize)]
struct AddedEntry {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Hash")]
    hash: String,
    #[serde(rename = "Size")]
    size: String,
}

/// Packages a tree bottom-up, reporting every entry after its children (kubo's order: root last).
fn package(
    node: &MemNode,
    path: &str,
    sink: &mut dyn BlockSink,
    out: &mut Vec<AddedEntry>,
) -> Result<Added, StorageError> {
    let added = match node {
        MemNode::File(bytes) => add_reader(&bytes[..], Path::new(path), sink)?,
        // The store only hashes a link's target; `fetch` checks it before creating it.
        MemNode::Symlink(target) => add_symlink(target, sink)?,
        MemNode::Dir(children) => {
            let mut dir = DirectoryBuilder::new();
            for (name, child) in children {
                let child_path =
                    if path.is_empty() { name.clone() } else { format!("{path}/{name}") };
                dir.add(name.clone(), package(child, &child_path, sink, out)?);
            }
            dir.finish(sink)?
        }
    };
    out.push(AddedEntry {
        name: path.to_owned(),
        hash: added.cid.to_string(),
        size: added.tsize.to_string(),
    });
    Ok(added)
}

async fn add(
    State(st): State<Arc<AppState>>,
    q: Params,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    // Only kubo's defaults make CIDs this layer is built for: refuse the rest.
    if !matches!(param(&q, "cid-version"), None | Some("0")) {
        return Err(ApiError::bad("only cid-version=0 (kubo's default) is supported"));
    }
    if flag(&q, "raw-leaves")? {
        return Err(ApiError::bad("raw-leaves is not supported"));
    }
    if !matches!(param(&q, "chunker"), None | Some("size-262144")) {
        return Err(ApiError::bad("only the default chunker size-262144 is supported"));
    }
    if !matches!(param(&q, "hash"), None | Some("sha2-256")) {
        return Err(ApiError::bad("only sha2-256 is supported"));
    }
    let only_hash = flag(&q, "only-hash")?;
    let wrap = flag(&q, "wrap-with-directory")?;

    let mut top = BTreeMap::new();
    while let Some(field) = form.next_field().await? {
        let name = field.file_name().or(field.name()).unwrap_or_default().to_owned();
        let content_type = field.content_type().unwrap_or_default().to_owned();
        let path = part_path(&name)?;
        let node = match content_type.as_str() {
            "application/x-directory" => MemNode::Dir(BTreeMap::new()),
            "application/symlink" => {
                let target = String::from_utf8(field.bytes().await?.to_vec())
                    .map_err(|_| ApiError::bad(format!("link {name:?}: target is not UTF-8")))?;
                MemNode::Symlink(target)
            }
            _ => MemNode::File(field.bytes().await?),
        };
        insert(&mut top, &path, node)?;
    }
    if top.is_empty() {
        return Err(ApiError::bad("no file parts in the request"));
    }
    let store = st.store.clone();
    let entries = blocking(move || {
        let mut out = Vec::new();
        let mut sink: Box<dyn BlockSink> =
            if only_hash { Box::new(HashOnly) } else { Box::new(store) };
        if wrap {
            let root = MemNode::Dir(top);
            check_mem_tree(&root)?;
            package(&root, "", &mut *sink, &mut out)?;
        } else {
            for node in top.values() {
                check_mem_tree(node)?;
            }
            for (name, node) in &top {
                package(node, name, &mut *sink, &mut out)?;
            }
        }
        Ok(out)
    })
    .await?;
    let mut body = String::new();
    for e in &entries {
        body.push_str(&serde_json::to_string(e).map_err(|e| ApiError::bad(e.to_string()))?);
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
