//! The LLM proxy: `POST /api/llm/chat/completions` (OpenAI-compatible)
//! forwarded to the configured upstream under a retry policy and a circuit
//! breaker from bridge-core, with a server-side timeout. When the upstream is
//! down or open-circuited the caller gets 503 with `Retry-After` and a JSON
//! error at once, never a hang; when it is too slow, 504. Streaming answers
//! (`"stream": true`) are passed through once complete.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bridge_core::breaker::{CircuitBreaker, Permit, Rejected};
use bridge_core::retry::driver::{Clock, Env, Guard, Sleeper, Verdict, apply_verdict, retry};
use bridge_core::retry::{Failure, RetryError, RetryPolicy};
use bridge_core::time::Millis;
use serde_json::json;
use tokio::time::Instant;

use crate::AppState;
use crate::config::Role;
use crate::http::{ApiError, authorize, body_within};
use crate::sync::lock;

/// The upstream client and its breaker.
#[derive(Debug)]
pub(crate) struct LlmProxy {
    client: reqwest::Client,
    breaker: Arc<Mutex<CircuitBreaker>>,
    policy: RetryPolicy,
    origin: Instant,
}

impl LlmProxy {
    pub(crate) fn new(config: &crate::config::Llm) -> Self {
        let origin = Instant::now();
        Self {
            client: reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap_or_default(),
            breaker: Arc::new(Mutex::new(CircuitBreaker::new("llm-upstream", config.breaker, Millis(0)))),
            policy: RetryPolicy::default().overridden(&config.policy).unwrap_or_default(),
            origin,
        }
    }

    /// The breaker's state, for status and health.
    pub(crate) fn breaker_state(&self) -> bridge_core::breaker::BreakerState {
        let now = TokioClock(self.origin).now();
        lock(&self.breaker).state(now)
    }
}

/// Tokio time for the retry driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock(pub(crate) Instant);

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        Millis(self.0.elapsed().as_millis() as u64)
    }
    fn now_micros(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// Tokio timers for the retry driver.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(d)
    }
}

struct BreakerGuard(Arc<Mutex<CircuitBreaker>>);

impl Guard for BreakerGuard {
    type Permit = Permit;
    fn name(&self) -> &str {
        "llm-upstream"
    }
    fn admit(&mut self, now: Millis) -> Result<Permit, Rejected> {
        lock(&self.0).try_acquire(now)
    }
    fn record(&mut self, permit: Permit, verdict: Verdict, now: Millis) {
        apply_verdict(&mut lock(&self.0), permit, verdict, now);
    }
}

/// An upstream answer worth passing on.
struct Upstream {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

async fn attempt(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: Bytes,
    timeout: Option<Duration>,
) -> Result<Upstream, Failure> {
    let mut req = client.post(url).header(header::CONTENT_TYPE, "application/json").body(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(t) = timeout {
        req = req.timeout(t);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            Failure::Timeout { after_ms: timeout.map_or(0, |t| t.as_millis() as u64) }
        } else {
            Failure::Network { message: e.to_string() }
        }
    })?;
    let status = resp.status();
    let retry_after = resp.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    if bridge_core::retry::is_transient_status(status.as_u16()) {
        return Err(Failure::http(status.as_u16(), retry_after.as_deref(), crate::evolution::unix_ms()));
    }
    let body = resp.bytes().await.map_err(|e| Failure::Network { message: e.to_string() })?;
    Ok(Upstream {
        status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        content_type,
        body,
    })
}

/// `POST /api/llm/chat/completions`.
pub(crate) async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = authorize(&state, &headers, Role::Llm) {
        return e.into_response();
    }
    let cfg = &state.config().llm;
    let body = match body_within(body, cfg.max_body_bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).is_err() {
        return ApiError::bad_request("the body must be a JSON object (an OpenAI chat completions request)")
            .into_response();
    }
    let proxy = &state.inner.llm;
    let mut guard = BreakerGuard(Arc::clone(&proxy.breaker));
    let clock = TokioClock(proxy.origin);
    let env = Env { clock: &clock, sleeper: &TokioSleeper };
    let rng = bridge_core::random::SeededRandom::new(clock.now_micros());
    let (url, key) = (cfg.upstream.as_str(), cfg.api_key.as_deref());
    let (result, _) = retry(&proxy.policy, env, &mut guard, rng, std::future::pending(), |info| {
        attempt(&proxy.client, url, key, body.clone(), info.timeout)
    })
    .await;
    match result {
        Ok(up) => {
            let mut resp = (up.status, up.body).into_response();
            if let Some(ct) = up.content_type {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp
        }
        Err(e) => unavailable(&e),
    }
}

fn unavailable(e: &RetryError<Failure>) -> Response {
    let (status, code, retry_after) = match e {
        RetryError::CircuitOpen { retry_in, .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "llm_unavailable", retry_in.map_or(5, |d| d.as_secs().max(1)))
        }
        RetryError::DeadlineExceeded { .. } => (StatusCode::GATEWAY_TIMEOUT, "llm_timeout", 5),
        RetryError::Exhausted { last: Failure::Timeout { .. }, .. } => (StatusCode::GATEWAY_TIMEOUT, "llm_timeout", 5),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "llm_unavailable", 5),
    };
    let message = format!("the LLM upstream is not available: {}", e.clone().map_err(|f| f.describe()));
    ApiError::new(status, code, message).retry_after(retry_after).into_response()
}

/// `GET /api/llm/health`: whether the upstream answers (health+json; 503 when not).
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let cfg = &state.config().llm;
    let base = cfg.upstream.rsplit_once("/chat/completions").map_or(cfg.upstream.as_str(), |(b, _)| b);
    let probe = state.inner.llm.client.get(format!("{base}/models")).timeout(Duration::from_secs(3)).send().await;
    let breaker = state.inner.llm.breaker_state();
    let (status, output) = match probe {
        Ok(r) if r.status().is_success() || r.status().is_client_error() => {
            ("pass", format!("upstream answered HTTP {}", r.status()))
        }
        Ok(r) => ("fail", format!("upstream answered HTTP {}", r.status())),
        Err(e) => ("fail", format!("upstream unreachable: {e}")),
    };
    let code = if status == "pass" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"status": status, "output": output, "upstream": cfg.upstream, "breaker": breaker});
    (code, [(header::CONTENT_TYPE, "application/health+json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response()
}
