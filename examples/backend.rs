//! A dApp backend that runs Lilypad jobs for its users and streams their progress.
//!
//! ```text
//! WEB3_PRIVATE_KEY=0x... cargo run -p lilypad-examples --bin backend -- \
//!     --network ~/.lilypad/devnet/network.toml --listen 127.0.0.1:3000
//! curl -s -XPOST localhost:3000/jobs -H 'content-type: application/json' \
//!     -d '{"module": "cowsay:v0.0.4", "inputs": {"Message": "moo"}}'      # {"id":1}
//! curl -sN localhost:3000/jobs/1/events   # server-sent events, one per step
//! curl -s localhost:3000/jobs/1           # state, events, the job's stdout
//! ```
//!
//! The backend's account pays for every job; a real service would authenticate its
//! users and charge them. Jobs run concurrently, each in its own task.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{
        IntoResponse,
        sse::{Event, Sse},
    },
    routing::{get, post},
};
use clap::Parser;
use futures::{Stream, StreamExt};
use lilypad_sdk::{Lilypad, chain::PrivateKeySigner, job::JobEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// A network file or a built-in network's name.
    #[arg(long, env = "LILYPAD_NETWORK")]
    network: String,
    /// The paying account's private key (hex).
    #[arg(long, env = "WEB3_PRIVATE_KEY", hide_env_values = true)]
    key: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

/// What a user asks for.
#[derive(Deserialize)]
struct NewJob {
    module: String,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

/// A job as the backend tracks it.
#[derive(Clone, Default, Serialize)]
struct JobView {
    /// `running`, `done` or `failed`.
    state: &'static str,
    events: Vec<JobEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Whether submitting the same job again may succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    retryable: Option<bool>,
}

#[derive(Clone)]
struct App {
    lilypad: Lilypad,
    next_id: Arc<AtomicU64>,
    jobs: Arc<Mutex<HashMap<u64, watch::Receiver<JobView>>>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Parsed here, not by clap, so that a bad key is never echoed in an error.
    let key: PrivateKeySigner =
        args.key.trim().parse().map_err(|_| anyhow::anyhow!("the key is not a 32-byte hex key"))?;
    let lilypad = Lilypad::connect(args.network.as_str(), key).await?;
    let app = App { lilypad, next_id: Arc::default(), jobs: Arc::default() };
    let router = Router::new()
        .route("/jobs", post(create))
        .route("/jobs/{id}", get(show))
        .route("/jobs/{id}/events", get(events))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

/// `POST /jobs`: starts the job, answers its id at once.
async fn create(State(app): State<App>, Json(job): Json<NewJob>) -> impl IntoResponse {
    let id = app.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, rx) = watch::channel(JobView { state: "running", ..JobView::default() });
    app.jobs.lock().expect("jobs lock").insert(id, rx);
    tokio::spawn(async move {
        let request = app.lilypad.request(&job.module, job.inputs);
        let on_event = |event: JobEvent| {
            tx.send_modify(|view| {
                if let JobEvent::DealAgreed { deal_id, .. } = &event {
                    view.deal_id = Some(deal_id.to_string());
                }
                view.events.push(event);
            });
        };
        let result = app.lilypad.run_request(&request, &CancellationToken::new(), on_event).await;
        tx.send_modify(|view| match result {
            Ok(outcome) => {
                view.state = "done";
                view.stdout = std::fs::read_to_string(outcome.results_dir.join("stdout")).ok();
            }
            Err(e) => {
                view.state = "failed";
                view.retryable = Some(e.is_retryable());
                view.error = Some(format!("{:#}", anyhow::Error::from(e)));
            }
        });
    });
    (StatusCode::ACCEPTED, Json(serde_json::json!({ "id": id })))
}

fn job(app: &App, id: u64) -> Result<watch::Receiver<JobView>, (StatusCode, String)> {
    let jobs = app.jobs.lock().expect("jobs lock");
    jobs.get(&id).cloned().ok_or((StatusCode::NOT_FOUND, format!("no job {id}")))
}

/// `GET /jobs/{id}`: where the job is.
async fn show(
    State(app): State<App>,
    Path(id): Path<u64>,
) -> Result<Json<JobView>, (StatusCode, String)> {
    Ok(Json(job(&app, id)?.borrow().clone()))
}

/// `GET /jobs/{id}/events`: every step so far, then each new one as it happens; the
/// last event is `done` or `failed` with the whole view, and the stream ends.
async fn events(
    State(app): State<App>,
    Path(id): Path<u64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, (StatusCode, String)> {
    let rx = job(&app, id)?;
    let stream = futures::stream::unfold((rx, 0usize, false), |(mut rx, sent, over)| async move {
        if over {
            return None;
        }
        loop {
            let view = rx.borrow_and_update().clone();
            let mut batch: Vec<Event> = view.events[sent..]
                .iter()
                .map(|e| Event::default().event("step").json_data(e).expect("events serialize"))
                .collect();
            let sent = view.events.len();
            let done = view.state != "running";
            if done {
                batch.push(Event::default().event(view.state).json_data(&view).expect("serialize"));
            }
            if !batch.is_empty() {
                return Some((futures::stream::iter(batch.into_iter().map(Ok)), (rx, sent, done)));
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    })
    .flatten();
    Ok(Sse::new(stream))
}
