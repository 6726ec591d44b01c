//! The API over stand-in backends (no network): keys, limits, error shapes, the
//! embeddings answer, and the chat stream's SSE encoding.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;

/// Answers every job with `output` (or `failure`) after `delay`, counting the jobs.
struct StandIn {
    output: Value,
    failure: Option<JobFailure>,
    delay: Duration,
    jobs: AtomicUsize,
    inputs: Mutex<Vec<BTreeMap<String, String>>>,
}

impl StandIn {
    fn answering(output: Value) -> Arc<Self> {
        Arc::new(Self {
            output,
            failure: None,
            delay: Duration::ZERO,
            jobs: AtomicUsize::new(0),
            inputs: Mutex::default(),
        })
    }
}

impl Backend for StandIn {
    fn run(
        &self,
        spec: JobSpec,
        status: JobHandle,
    ) -> BoxFuture<'static, Result<Value, JobFailure>> {
        self.jobs.fetch_add(1, Ordering::SeqCst);
        self.inputs.lock().unwrap().push(spec.inputs);
        let (output, failure, delay) = (self.output.clone(), self.failure.clone(), self.delay);
        Box::pin(async move {
            status.update(|s| s.deal_id = Some("0xdea1".into()));
            status.step("deal_agreed");
            tokio::time::sleep(delay).await;
            match failure {
                Some(f) => Err(f),
                None => Ok(output),
            }
        })
    }
}

fn embeddings_output(n: usize, tokens: u64) -> Value {
    let data: Vec<Value> = (0..n)
        .map(|i| json!({ "object": "embedding", "index": i, "embedding": [0.5, -1.25, i as f64] }))
        .collect();
    json!({
        "object": "list",
        "model": "all-MiniLM-L6-v2",
        "data": data,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    })
}

struct Gw {
    app: Arc<App>,
    keys: Arc<KeyStore>,
    _dir: tempfile::TempDir,
}

fn gateway(backend: Arc<dyn Backend>, limits: Limits) -> Gw {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(KeyStore::open(&dir.path().join("keys.db")).unwrap());
    let models = vec![
        parse_model("mini=./examples/modules/embeddings").unwrap(),
        parse_model("chatty=./examples/modules/chat,kind=chat").unwrap(),
    ];
    Gw { app: Arc::new(App::new(models, keys.clone(), backend, limits)), keys, _dir: dir }
}

async fn call(
    gw: &Gw,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, HeaderMap, String) {
    let mut req =
        Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let res = router(gw.app.clone())
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Asserts an OpenAI error body with `code` (and the four fields, always present).
fn assert_error(
    status: StatusCode,
    body: &str,
    want_status: u16,
    want_code: Option<&str>,
) -> Value {
    assert_eq!(status.as_u16(), want_status, "{body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let err = v["error"].as_object().unwrap_or_else(|| panic!("no error object: {body}"));
    for field in ["message", "type", "param", "code"] {
        assert!(err.contains_key(field), "no {field} in {body}");
    }
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(err["type"].is_string(), "{body}");
    assert_eq!(err["code"].as_str(), want_code, "{body}");
    v
}

const EMBED: &str = r#"{"model":"mini","input":["a","b"]}"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn models_parse_with_a_kind() {
    assert_eq!(parse_model("m=cowsay:v0.0.4").unwrap().kind, Kind::Embeddings);
    let chat = parse_model("llm=github.com/o/r:v1,kind=chat").unwrap();
    assert_eq!((chat.module.as_str(), chat.kind), ("github.com/o/r:v1", Kind::Chat));
    assert!(parse_model("m=x,kind=vision").is_err());
    assert!(parse_model("nomodule").is_err());
    assert!(parse_model("=x").is_err());
}

#[test]
fn keys_missing_wrong_or_revoked_get_401_invalid_api_key() {
    rt().block_on(async {
        let backend = StandIn::answering(embeddings_output(2, 4));
        let gw = gateway(backend.clone(), Limits::default());
        let key = gw.keys.create("alice", None, None).unwrap();
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", None, EMBED).await;
        assert_error(s, &b, 401, Some("invalid_api_key"));
        let (s, _, b) =
            call(&gw, "POST", "/v1/embeddings", Some("lp-0000000000000000000"), EMBED).await;
        assert_error(s, &b, 401, Some("invalid_api_key"));
        let (s, _, b) = call(&gw, "GET", "/v1/models", Some("nonsense"), "").await;
        assert_error(s, &b, 401, Some("invalid_api_key"));
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&key), EMBED).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        gw.keys.revoke("alice").unwrap();
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&key), EMBED).await;
        assert_error(s, &b, 401, Some("invalid_api_key"));
        assert_eq!(backend.jobs.load(Ordering::SeqCst), 1, "refused requests run no job");
    });
}

#[test]
fn embeddings_answer_the_modules_body_with_the_requested_model_and_charge_its_tokens() {
    rt().block_on(async {
        let backend = StandIn::answering(embeddings_output(2, 7));
        let gw = gateway(backend.clone(), Limits::default());
        let key = gw.keys.create("alice", None, None).unwrap();
        let (s, h, b) = call(&gw, "POST", "/v1/embeddings", Some(&key), EMBED).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["model"], "mini");
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["data"][1]["embedding"], json!([0.5, -1.25, 1.0]));
        assert_eq!(v["usage"]["total_tokens"], 7);
        // The module got the texts as one JSON array in `Texts`.
        let inputs = backend.inputs.lock().unwrap()[0].clone();
        assert_eq!(inputs, BTreeMap::from([("Texts".to_owned(), r#"["a","b"]"#.to_owned())]));
        assert_eq!(gw.keys.get("alice").unwrap().unwrap().spent, 7);

        // The job is there to follow, for its own key only.
        let id = h.get(JOB_HEADER).expect("job header").to_str().unwrap().to_owned();
        let (s, _, b) = call(&gw, "GET", &format!("/v1/jobs/{id}"), Some(&key), "").await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let job: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(
            (job["state"].as_str(), job["deal_id"].as_str()),
            (Some("done"), Some("0xdea1")),
            "{job}"
        );
        assert!(
            job["timings_ms"]["deal_agreed"].is_u64() && job["timings_ms"]["done"].is_u64(),
            "{job}"
        );
        let other = gw.keys.create("bob", None, None).unwrap();
        let (s, _, b) = call(&gw, "GET", &format!("/v1/jobs/{id}"), Some(&other), "").await;
        assert_error(s, &b, 404, Some("job_not_found"));

        // One string is one text; base64 is little-endian f32s, as OpenAI sends them.
        let body = r#"{"model":"mini","input":"a","encoding_format":"base64"}"#;
        let backend1 = StandIn::answering(embeddings_output(1, 1));
        let gw1 = gateway(backend1, Limits::default());
        let key1 = gw1.keys.create("x", None, None).unwrap();
        let (s, _, b) = call(&gw1, "POST", "/v1/embeddings", Some(&key1), body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let floats: Vec<f32> =
            raw.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(floats, vec![0.5, -1.25, 0.0]);
    });
}

#[test]
fn bad_bodies_get_400_and_unknown_models_404() {
    rt().block_on(async {
        let backend = StandIn::answering(embeddings_output(2, 4));
        let limits = Limits { max_body_bytes: 4096, max_inputs: 3, ..Limits::default() };
        let gw = gateway(backend.clone(), limits);
        let key = gw.keys.create("alice", None, None).unwrap();
        let k = Some(key.as_str());
        for body in [
            "not json",
            "[1,2]",
            r#"{"input":["a"]}"#,
            r#"{"model":"mini"}"#,
            r#"{"model":"mini","input":[]}"#,
            r#"{"model":"mini","input":[1,2,3]}"#,
            r#"{"model":"mini","input":["a","b","c","d"]}"#,
            r#"{"model":"mini","input":"a","encoding_format":"int8"}"#,
            r#"{"model":"chatty","input":"a"}"#,
        ] {
            let (s, _, b) = call(&gw, "POST", "/v1/embeddings", k, body).await;
            let v = assert_error(s, &b, 400, None);
            assert_eq!(v["error"]["type"], "invalid_request_error", "{body}: {b}");
        }
        let (s, _, b) =
            call(&gw, "POST", "/v1/embeddings", k, r#"{"model":"gpt-4","input":"a"}"#).await;
        let v = assert_error(s, &b, 404, Some("model_not_found"));
        assert_eq!(v["error"]["param"], "model");
        for body in [
            r#"{"model":"chatty","messages":[]}"#,
            r#"{"model":"chatty","messages":[{"content":"hi"}]}"#,
            r#"{"model":"chatty","messages":[{"role":"user","content":"hi"}],"stream":"yes"}"#,
            r#"{"model":"mini","messages":[{"role":"user","content":"hi"}]}"#,
        ] {
            let (s, _, b) = call(&gw, "POST", "/v1/chat/completions", k, body).await;
            assert_error(s, &b, 400, None);
        }
        let big = format!(r#"{{"model":"mini","input":"{}"}}"#, "x".repeat(5000));
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", k, &big).await;
        assert_error(s, &b, 413, None);
        assert_eq!(backend.jobs.load(Ordering::SeqCst), 0, "no bad request ran a job");
        let (s, _, b) = call(&gw, "GET", "/v1/models", k, "").await;
        assert_eq!(s, StatusCode::OK);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["object"], "list");
        let ids: Vec<&str> =
            v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["mini", "chatty"]);
        assert_eq!(v["data"][0]["object"], "model");
    });
}

#[test]
fn an_exhausted_spend_limit_gets_429_insufficient_quota_and_the_rate_limit_429() {
    rt().block_on(async {
        let backend = StandIn::answering(embeddings_output(2, 8));
        let gw = gateway(backend.clone(), Limits::default());
        let capped = gw.keys.create("capped", Some(10), None).unwrap();
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&capped), EMBED).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        // 8 of 10 spent: one more request runs (a request is not cut short)...
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&capped), EMBED).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        // ... and 16 >= 10 refuses the next.
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&capped), EMBED).await;
        let v = assert_error(s, &b, 429, Some("insufficient_quota"));
        assert_eq!(v["error"]["type"], "insufficient_quota");
        assert_eq!(backend.jobs.load(Ordering::SeqCst), 2);

        let slow = gw.keys.create("slow", None, Some(2)).unwrap();
        for _ in 0..2 {
            let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&slow), EMBED).await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&slow), EMBED).await;
        assert_error(s, &b, 429, Some("rate_limit_exceeded"));
        // Another key is not slowed down by this one.
        let free = gw.keys.create("free", None, None).unwrap();
        let (s, _, _) = call(&gw, "POST", "/v1/embeddings", Some(&free), EMBED).await;
        assert_eq!(s, StatusCode::OK);
    });
}

#[test]
fn network_failures_get_502_no_provider_and_timeouts_504() {
    rt().block_on(async {
        for (failure, status, code) in [
            (JobFailure::Failed("the solver is down".into()), 502, "job_failed"),
            (JobFailure::NoProvider("no match".into()), 504, "no_provider"),
        ] {
            let backend = Arc::new(StandIn {
                failure: Some(failure),
                ..Arc::into_inner(StandIn::answering(Value::Null)).unwrap()
            });
            let gw = gateway(backend, Limits::default());
            let key = gw.keys.create("a", None, None).unwrap();
            let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&key), EMBED).await;
            assert_error(s, &b, status, Some(code));
            assert_eq!(gw.keys.get("a").unwrap().unwrap().spent, 0, "a failed job costs no tokens");
        }
        let backend = Arc::new(StandIn {
            delay: Duration::from_secs(5),
            ..Arc::into_inner(StandIn::answering(embeddings_output(2, 1))).unwrap()
        });
        let limits = Limits { job_timeout: Duration::from_millis(300), ..Limits::default() };
        let gw = gateway(backend, limits);
        let key = gw.keys.create("a", None, None).unwrap();
        let started = Instant::now();
        let (s, _, b) = call(&gw, "POST", "/v1/embeddings", Some(&key), EMBED).await;
        assert_error(s, &b, 504, Some("timeout"));
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn requests_run_their_jobs_concurrently() {
    rt().block_on(async {
        let backend = Arc::new(StandIn {
            delay: Duration::from_millis(700),
            ..Arc::into_inner(StandIn::answering(embeddings_output(2, 1))).unwrap()
        });
        let gw = gateway(backend, Limits::default());
        let key = gw.keys.create("a", None, None).unwrap();
        let started = Instant::now();
        let calls: Vec<_> =
            (0..6).map(|_| call(&gw, "POST", "/v1/embeddings", Some(&key), EMBED)).collect();
        for (s, _, b) in futures::future::join_all(calls).await {
            assert_eq!(s, StatusCode::OK, "{b}");
        }
        assert!(started.elapsed() < Duration::from_millis(2000), "{:?}", started.elapsed());
    });
}

#[test]
fn chat_sse_encoding_over_a_stand_in_completion() {
    rt().block_on(async {
        let text = "Hello there, this is a stand-in completion\nwith two lines.";
        let backend = StandIn::answering(json!({
            "text": text,
            "usage": { "prompt_tokens": 5, "completion_tokens": 11, "total_tokens": 16 },
        }));
        let gw = gateway(backend.clone(), Limits::default());
        let key = gw.keys.create("a", None, None).unwrap();
        let body = r#"{"model":"chatty","stream":true,"stream_options":{"include_usage":true},
            "max_tokens":32,"seed":7,
            "messages":[{"role":"system","content":"be brief"},
                        {"role":"user","content":[{"type":"text","text":"hi"}]}]}"#;
        let (s, h, b) = call(&gw, "POST", "/v1/chat/completions", Some(&key), body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(h.get("content-type").unwrap(), "text/event-stream");
        let inputs = backend.inputs.lock().unwrap()[0].clone();
        assert_eq!(
            inputs["Messages"],
            r#"[{"content":"be brief","role":"system"},{"content":"hi","role":"user"}]"#
        );
        assert_eq!((inputs["MaxTokens"].as_str(), inputs["Seed"].as_str()), ("32", "7"));

        // Every event is one `data:` line and a blank line; the last is [DONE].
        let events: Vec<&str> = b.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert!(events.iter().all(|e| e.starts_with("data: ") && !e.contains('\n')), "{b}");
        let payloads: Vec<&str> = events.iter().map(|e| &e["data: ".len()..]).collect();
        assert_eq!(payloads.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = payloads[..payloads.len() - 1]
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect();
        assert!(chunks.len() > 4, "{b}");
        assert!(
            chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "chatty")
        );
        let id = &chunks[0]["id"];
        assert!(
            id.as_str().unwrap().starts_with("chatcmpl-") && chunks.iter().all(|c| &c["id"] == id)
        );
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let joined: String =
            chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(joined, text, "the pieces concatenate to the completion");
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 16);
        assert_eq!(gw.keys.get("a").unwrap().unwrap().spent, 16);

        // Not streamed: one chat.completion.
        let body = r#"{"model":"chatty","messages":[{"role":"user","content":"hi"}]}"#;
        let (s, _, b) = call(&gw, "POST", "/v1/chat/completions", Some(&key), body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], text);
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["usage"]["completion_tokens"], 11);
    });
}

#[test]
fn pieces_keep_every_character() {
    for text in ["", "one", "  lead and trail  ", "a b c d e f g h i", "ünï cödé 🐄 x\ty\nz"]
    {
        assert_eq!(pieces(text, 2).concat(), text);
    }
    assert_eq!(pieces("a b c d e", 2), ["a b ", "c d ", "e"]);
}
