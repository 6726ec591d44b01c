//! The gateway's HTTP API: OpenAI's routes over jobs on the network.
//!
//! Every inference request is one job (one deal) that a [`Backend`] runs; the
//! network's backend is in `super::network`, the tests use stand-ins. Nothing here
//! holds a lock across a job: requests run concurrently, each in its own task.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, Sse},
    },
    routing::{get, post},
};
use base64::Engine as _;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use super::keys::{AuthError, KeyInfo, KeyStore};

/// The response header naming the job a request ran as (see `GET /v1/jobs/{id}`).
pub(crate) const JOB_HEADER: &str = "lilypad-job-id";

/// What a model's module does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// Input `Texts` (a JSON array of strings), output `/outputs/embeddings.json`.
    Embeddings,
    /// Input `Messages` (JSON), `MaxTokens`, `Seed`; output `/outputs/completion.json`.
    Chat,
}

impl Kind {
    /// The file under the results' `outputs/` that holds the answer.
    pub(crate) fn output_file(self) -> &'static str {
        match self {
            Self::Embeddings => "embeddings.json",
            Self::Chat => "completion.json",
        }
    }
}

/// A model the gateway serves: `--model NAME=MODULE[,kind=embeddings|chat]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Model {
    /// The name clients ask for.
    pub name: String,
    /// The module reference jobs run.
    pub module: String,
    /// What it does.
    pub kind: Kind,
}

/// Parses `NAME=MODULE[,kind=embeddings|chat]` (embeddings when no kind is given).
pub(crate) fn parse_model(s: &str) -> Result<Model, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write NAME=MODULE[,kind=embeddings|chat]"))?;
    let (module, kind) = match rest.rsplit_once(",kind=") {
        Some((module, "embeddings")) => (module, Kind::Embeddings),
        Some((module, "chat")) => (module, Kind::Chat),
        Some((_, other)) => return Err(format!("unknown kind {other:?}: embeddings or chat")),
        None => (rest, Kind::Embeddings),
    };
    if name.is_empty() || module.is_empty() {
        return Err(format!("{s:?}: the name and the module may not be empty"));
    }
    Ok(Model { name: name.to_owned(), module: module.to_owned(), kind })
}

/// One job a request asks the network for.
#[derive(Debug)]
pub(crate) struct JobSpec {
    /// The module reference.
    pub module: String,
    /// Its template inputs.
    pub inputs: BTreeMap<String, String>,
    /// The file under `outputs/` to answer with (parsed as JSON).
    pub output_file: &'static str,
    /// Cancelled when the request gave up (the offer is withdrawn while no deal exists).
    pub cancel: CancellationToken,
}

/// Why a job gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JobFailure {
    /// The request cannot be run as asked (inputs too large, ...): 400.
    BadRequest(String),
    /// No provider took the job in time: 504.
    NoProvider(String),
    /// The network, the job or its output failed: 502.
    Failed(String),
}

impl JobFailure {
    /// What went wrong, in words.
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::BadRequest(m) | Self::NoProvider(m) | Self::Failed(m) => m,
        }
    }
}

/// Runs jobs: the network, or a stand-in in tests.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Runs `spec` to its output file's JSON, reporting progress to `status`.
    fn run(
        &self,
        spec: JobSpec,
        status: JobHandle,
    ) -> BoxFuture<'static, Result<Value, JobFailure>>;
}

/// Limits of the API.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most texts in one embeddings request.
    pub max_inputs: usize,
    /// How long a request waits for its job.
    pub job_timeout: Duration,
    /// Jobs `GET /v1/jobs/{id}` remembers (the oldest are forgotten first).
    pub remembered_jobs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_inputs: 256,
            job_timeout: Duration::from_secs(300),
            remembered_jobs: 10_000,
        }
    }
}

/// A job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobStatus {
    pub id: String,
    pub object: &'static str,
    pub model: String,
    pub kind: Kind,
    /// `running`, `offer_posted`, `deal_agreed`, `results_submitted`, `results_verified`,
    /// `done` or `failed`.
    pub state: &'static str,
    pub created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results_cid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds from the request to each step.
    pub timings_ms: BTreeMap<&'static str, u64>,
    #[serde(skip)]
    key: String,
    #[serde(skip)]
    started: Instant,
}

/// A job's status, shared between the request and its job.
#[derive(Debug, Clone)]
pub(crate) struct JobHandle(Arc<Mutex<JobStatus>>);

impl JobHandle {
    /// Changes the status.
    pub(crate) fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Moves to `state`, noting when.
    pub(crate) fn step(&self, state: &'static str) {
        self.update(|s| {
            s.state = state;
            let ms = s.started.elapsed().as_millis() as u64;
            s.timings_ms.insert(state, ms);
        });
    }

    fn snapshot(&self) -> JobStatus {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self { status, message: message.into(), kind, param: None, code }
    }

    fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", None, message)
    }

    fn invalid_key(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            message,
        )
    }

    fn body(&self) -> Value {
        json!({ "error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<JobFailure> for ApiError {
    fn from(f: JobFailure) -> Self {
        match f {
            JobFailure::BadRequest(m) => Self::bad_request(m),
            JobFailure::NoProvider(m) => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "server_error", Some("no_provider"), m)
            }
            JobFailure::Failed(m) => {
                Self::new(StatusCode::BAD_GATEWAY, "server_error", Some("job_failed"), m)
            }
        }
    }
}

/// The gateway's state.
pub(crate) struct App {
    models: Vec<Model>,
    keys: Arc<KeyStore>,
    backend: Arc<dyn Backend>,
    limits: Limits,
    /// Request times of each key in the last minute.
    rates: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Jobs by id, with their ids oldest first.
    jobs: Mutex<(HashMap<String, JobHandle>, VecDeque<String>)>,
}

impl App {
    pub(crate) fn new(
        models: Vec<Model>,
        keys: Arc<KeyStore>,
        backend: Arc<dyn Backend>,
        limits: Limits,
    ) -> Self {
        Self { models, keys, backend, limits, rates: Mutex::default(), jobs: Mutex::default() }
    }
}

/// The routes, with the body size limit and an overall timeout.
pub(crate) fn router(app: Arc<App>) -> Router {
    let limits = app.limits.clone();
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/models", get(models))
        .route("/v1/models/{model}", get(model))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/jobs/{id}", get(job))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("unknown_url"),
                "no such route",
            )
        })
        .with_state(app)
        // The jobs answer 504 themselves at the job timeout; this only bounds a request
        // that hangs anywhere else.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            limits.job_timeout + Duration::from_secs(30),
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The key of the request's `Authorization: Bearer ...`, checked.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<KeyInfo, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::invalid_key(
            "You didn't provide an API key: send `Authorization: Bearer lp-...` (keys come from \
             `lilypad-cli gateway keys create`)",
        ));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| ApiError::invalid_key("the Authorization header is not `Bearer KEY`"))?;
    match app.keys.authenticate(key) {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(AuthError::Unknown)) => Err(ApiError::invalid_key("Incorrect API key provided.")),
        Ok(Err(AuthError::Revoked)) => Err(ApiError::invalid_key("This API key was revoked.")),
        Err(e) => {
            tracing::error!("key database: {e:#}");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                "the key database failed",
            ))
        }
    }
}

/// Authenticates and checks the key's spend and rate limits for a request that runs a job.
fn admit(app: &App, headers: &HeaderMap) -> Result<KeyInfo, ApiError> {
    let key = authenticate(app, headers)?;
    if key.exhausted() {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            Some("insufficient_quota"),
            format!(
                "You exceeded your current quota: key {:?} spent {} of its {} tokens.",
                key.name,
                key.spent,
                key.spend_limit.unwrap_or_default()
            ),
        ));
    }
    if let Some(limit) = key.rate_limit {
        let mut rates = app.rates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let times = rates.entry(key.name.clone()).or_default();
        let now = Instant::now();
        while times.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                Some("rate_limit_exceeded"),
                format!(
                    "Rate limit reached: key {:?} may send {limit} requests per minute.",
                    key.name
                ),
            ));
        }
        times.push_back(now);
    }
    Ok(key)
}

/// The body as JSON, or a 400 (413 when too large) in OpenAI's shape.
fn parse_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|e| {
        let mut err = ApiError::bad_request(format!("cannot read the request body: {e}"));
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            err.status = StatusCode::PAYLOAD_TOO_LARGE;
        }
        err
    })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    Ok(value)
}

fn find_model<'a>(app: &'a App, body: &Value, kind: Kind) -> Result<&'a Model, ApiError> {
    let name = body.get("model").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("`model` is missing or not a string").param("model")
    })?;
    let model = app.models.iter().find(|m| m.name == name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            format!("The model `{name}` does not exist on this gateway (see GET /v1/models)."),
        )
        .param("model")
    })?;
    if model.kind != kind {
        let what = match model.kind {
            Kind::Embeddings => "an embeddings model",
            Kind::Chat => "a chat model",
        };
        return Err(ApiError::bad_request(format!("`{name}` is {what}")).param("model"));
    }
    Ok(model)
}

/// Runs one job for `key` and waits for its output (at most the job timeout; the job
/// itself goes on and `GET /v1/jobs/{id}` follows it).
async fn run_job(
    app: &Arc<App>,
    key: &KeyInfo,
    model: &Model,
    inputs: BTreeMap<String, String>,
) -> Result<(String, Value), ApiError> {
    let mut raw = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    let id = format!("job-{}", alloy::hex::encode(raw));
    let handle = JobHandle(Arc::new(Mutex::new(JobStatus {
        id: id.clone(),
        object: "lilypad.job",
        model: model.name.clone(),
        kind: model.kind,
        state: "running",
        created: unix_now(),
        offer_id: None,
        deal_id: None,
        provider: None,
        results_cid: None,
        error: None,
        timings_ms: BTreeMap::new(),
        key: key.name.clone(),
        started: Instant::now(),
    })));
    {
        let mut jobs = app.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_id, order) = &mut *jobs;
        by_id.insert(id.clone(), handle.clone());
        order.push_back(id.clone());
        while order.len() > app.limits.remembered_jobs {
            if let Some(old) = order.pop_front() {
                by_id.remove(&old);
            }
        }
    }
    let cancel = CancellationToken::new();
    let spec = JobSpec {
        module: model.module.clone(),
        inputs,
        output_file: model.kind.output_file(),
        cancel: cancel.clone(),
    };
    let job = app.backend.run(spec, handle.clone());
    let status = handle.clone();
    // Its own task: a client that hangs up or a timeout does not stop a deal midway.
    let task = tokio::spawn(async move {
        let result = job.await;
        match &result {
            Ok(_) => status.step("done"),
            Err(e) => {
                status.update(|s| s.error = Some(e.message().to_owned()));
                status.step("failed");
            }
        }
        result
    });
    tracing::info!(job = %id, key = %key.name, model = %model.name, "job started");
    match tokio::time::timeout(app.limits.job_timeout, task).await {
        Ok(Ok(Ok(output))) => Ok((id, output)),
        Ok(Ok(Err(failure))) => {
            tracing::warn!(job = %id, "job failed: {failure:?}");
            Err(failure.into())
        }
        Ok(Err(panicked)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            None,
            format!("the job's task failed: {panicked}"),
        )),
        Err(_) => {
            // Before a deal this withdraws the offer; after one, the deal runs on.
            cancel.cancel();
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                Some("timeout"),
                format!(
                    "the job did not finish in {}s; follow it at GET /v1/jobs/{id}",
                    app.limits.job_timeout.as_secs()
                ),
            ))
        }
    }
}

fn usage_tokens(output: &Value) -> u64 {
    output.pointer("/usage/total_tokens").and_then(Value::as_u64).unwrap_or(0)
}

fn charge(app: &App, key: &KeyInfo, tokens: u64) {
    if let Err(e) = app.keys.record_usage(&key.name, tokens) {
        tracing::error!(key = %key.name, "recording {tokens} tokens: {e:#}");
    }
}

fn with_job_header(mut response: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert(JOB_HEADER, v);
    }
    response
}

fn model_json(m: &Model) -> Value {
    json!({ "id": m.name, "object": "model", "created": 0, "owned_by": "lilypad" })
}

/// `GET /v1/models`.
async fn models(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &headers)?;
    let data: Vec<Value> = app.models.iter().map(model_json).collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

/// `GET /v1/models/{model}`.
async fn model(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &headers)?;
    let body = json!({ "model": name });
    let m = find_model(&app, &body, Kind::Embeddings)
        .or_else(|_| find_model(&app, &body, Kind::Chat))?;
    Ok(Json(model_json(m)))
}

/// `GET /v1/jobs/{id}`: a job of this key.
async fn job(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<JobStatus>, ApiError> {
    let key = authenticate(&app, &headers)?;
    let handle =
        app.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).0.get(&id).cloned();
    match handle.map(|h| h.snapshot()) {
        Some(status) if status.key == key.name => Ok(Json(status)),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("job_not_found"),
            format!("no job {id} of this key"),
        )),
    }
}

/// `POST /v1/embeddings`.
async fn embeddings(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = admit(&app, &headers)?;
    let body = parse_body(body)?;
    let model = find_model(&app, &body, Kind::Embeddings)?;
    let texts: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::bad_request("`input` must be a string or an array of strings (token arrays are not supported)")
                    .param("input")
            })?,
        Some(Value::Array(_)) => return Err(ApiError::bad_request("`input` is empty").param("input")),
        _ => {
            return Err(ApiError::bad_request("`input` must be a string or an array of strings").param("input"));
        }
    };
    if texts.len() > app.limits.max_inputs {
        return Err(ApiError::bad_request(format!(
            "`input` has {} texts; this gateway takes at most {} per request",
            texts.len(),
            app.limits.max_inputs
        ))
        .param("input"));
    }
    let base64 = match body.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => {
            return Err(ApiError::bad_request("`encoding_format` is `float` or `base64`")
                .param("encoding_format"));
        }
    };
    if body.get("dimensions").is_some_and(|d| !d.is_null()) {
        return Err(ApiError::bad_request("`dimensions` is not supported by this gateway")
            .param("dimensions"));
    }
    let inputs = BTreeMap::from([(
        "Texts".to_owned(),
        serde_json::to_string(&texts).expect("strings serialize"),
    )]);
    let (id, mut output) = run_job(&app, &key, model, inputs).await?;
    let invalid = |why: &str| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("invalid_module_output"),
            format!("the module's embeddings.json {why} (job {id})"),
        )
    };
    let data = output
        .get_mut("data")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| invalid("has no `data` array"))?;
    if data.len() != texts.len() {
        return Err(invalid(&format!("has {} embeddings for {} texts", data.len(), texts.len())));
    }
    if base64 {
        for item in data.iter_mut() {
            let vector = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("has an item without an `embedding` array"))?;
            let mut bytes = Vec::with_capacity(vector.len() * 4);
            for x in vector {
                let x =
                    x.as_f64().ok_or_else(|| invalid("has a vector that is not all numbers"))?;
                bytes.extend_from_slice(&(x as f32).to_le_bytes());
            }
            item["embedding"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    output["model"] = Value::String(model.name.clone());
    output["object"] = Value::String("list".into());
    charge(&app, &key, usage_tokens(&output));
    Ok(with_job_header(Json(output).into_response(), &id))
}

/// A message's content: a string, or text parts.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str))
                {
                    (Some("text"), Some(t)) => Some(t.to_owned()),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()
            .map(|t| t.join("")),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// `POST /v1/chat/completions`.
async fn chat(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = admit(&app, &headers)?;
    let body = parse_body(body)?;
    let model = find_model(&app, &body, Kind::Chat)?;
    let messages =
        body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(
            || ApiError::bad_request("`messages` must be a non-empty array").param("messages"),
        )?;
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str)?;
            let content = content_text(m.get("content").unwrap_or(&Value::Null))?;
            Some(json!({ "role": role, "content": content }))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ApiError::bad_request("each message needs a `role` and a text `content`")
                .param("messages")
        })?;
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("only `n: 1` is supported").param("n"));
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("`stream` must be a boolean").param("stream")),
    };
    let include_usage =
        body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let mut inputs = BTreeMap::from([(
        "Messages".to_owned(),
        serde_json::to_string(&messages).expect("messages serialize"),
    )]);
    let max_tokens = body.get("max_completion_tokens").or_else(|| body.get("max_tokens"));
    match max_tokens {
        None | Some(Value::Null) => {}
        Some(v) => {
            let n = v.as_u64().ok_or_else(|| {
                ApiError::bad_request("`max_tokens` must be a positive integer").param("max_tokens")
            })?;
            inputs.insert("MaxTokens".into(), n.to_string());
        }
    }
    match body.get("seed") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("`seed` must be an integer").param("seed"))?;
            inputs.insert("Seed".into(), n.to_string());
        }
    }
    let (id, output) = run_job(&app, &key, model, inputs).await?;
    let text = output.get("text").and_then(Value::as_str).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("invalid_module_output"),
            format!("the module's completion.json has no `text` (job {id})"),
        )
    })?;
    let usage = output.get("usage").cloned().unwrap_or_else(
        || json!({ "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 }),
    );
    charge(&app, &key, usage_tokens(&output));
    let completion = Completion {
        id: format!("chatcmpl-{id}"),
        created: unix_now(),
        model: model.name.clone(),
        text: text.to_owned(),
        usage,
    };
    let response = if stream {
        let events: Vec<Result<Event, Infallible>> = completion
            .chunks(include_usage)
            .into_iter()
            .map(|d| Ok(Event::default().data(d)))
            .collect();
        Sse::new(futures::stream::iter(events)).into_response()
    } else {
        Json(completion.whole()).into_response()
    };
    Ok(with_job_header(response, &id))
}

/// A finished chat completion.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub text: String,
    pub usage: Value,
}

/// Splits `text` into pieces of about `words` words, each keeping its whitespace, so
/// that the pieces concatenate to `text`.
fn pieces(text: &str, words: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut count, mut in_word) = (0, 0, false);
    for (i, c) in text.char_indices() {
        let word = !c.is_whitespace();
        if word && !in_word {
            if count == words {
                out.push(&text[start..i]);
                start = i;
                count = 0;
            }
            count += 1;
        }
        in_word = word;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

impl Completion {
    /// The `chat.completion` object.
    pub(crate) fn whole(&self) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": self.text, "refusal": null },
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": self.usage,
        })
    }

    /// The `data:` payloads of the stream: a role chunk, the text in pieces of a few
    /// words, a chunk with the finish reason, the usage chunk when asked, `[DONE]`.
    pub(crate) fn chunks(&self, include_usage: bool) -> Vec<String> {
        let chunk = |delta: Value, finish: Value, usage: Option<&Value>| {
            let choices = if usage.is_some() {
                json!([])
            } else {
                json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }])
            };
            let mut c = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
            });
            if let Some(u) = usage {
                c["usage"] = u.clone();
            }
            c.to_string()
        };
        let mut out = vec![chunk(json!({ "role": "assistant", "content": "" }), Value::Null, None)];
        for piece in pieces(&self.text, 4) {
            out.push(chunk(json!({ "content": piece }), Value::Null, None));
        }
        out.push(chunk(json!({}), json!("stop"), None));
        if include_usage {
            out.push(chunk(Value::Null, Value::Null, Some(&self.usage)));
        }
        out.push("[DONE]".to_owned());
        out
    }
}

#[cfg(test)]
mod tests;
