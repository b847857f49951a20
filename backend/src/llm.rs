//! The LLM proxy: `POST /api/llm/chat/completions` (OpenAI-compatible)
//! forwarded to the configured upstream under a retry policy and a circuit
//! breaker from bridge-core, with a server-side timeout. When the upstream is
//! down or open-circuited the caller gets 503 with `Retry-After` and a JSON
//! error at once, never a hang; when it is too slow, 504. Streaming answers
//! (`"stream": true`) are passed through once complete.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use bridge_core::breaker::{CircuitBreaker, Permit, Rejected};
use bridge_core::retry::driver::{Clock, Env, Guard, Verdict, apply_verdict, retry};
use bridge_core::retry::{Failure, RetryError, RetryPolicy};
use bridge_core::time::Millis;
use tokio::time::Instant;

use crate::clock::{TokioClock, TokioSleeper};
use crate::sync::lock;

/// The upstream client and its breaker.
#[derive(Debug)]
pub(crate) struct LlmProxy {
    client: reqwest::Client,
    breaker: Arc<Mutex<CircuitBreaker>>,
    policy: RetryPolicy,
    origin: Instant,
    config: crate::config::Llm,
}

impl LlmProxy {
    pub(crate) fn new(config: &crate::config::Llm) -> Self {
        let origin = Instant::now();
        Self {
            client: reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap_or_default(),
            breaker: Arc::new(Mutex::new(CircuitBreaker::new("llm-upstream", config.breaker, Millis(0)))),
            policy: RetryPolicy::default().overridden(&config.policy).unwrap_or_default(),
            origin,
            config: config.clone(),
        }
    }

    pub(crate) fn config(&self) -> &crate::config::Llm {
        &self.config
    }

    /// The breaker's state, for status and health.
    pub(crate) fn breaker_state(&self) -> bridge_core::breaker::BreakerState {
        let now = TokioClock(self.origin).now();
        lock(&self.breaker).state(now)
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
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) body: Bytes,
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
        return Err(Failure::http(status.as_u16(), retry_after.as_deref(), crate::clock::unix_ms()));
    }
    let body = resp.bytes().await.map_err(|e| Failure::Network { message: e.to_string() })?;
    Ok(Upstream {
        status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        content_type,
        body,
    })
}

impl LlmProxy {
    /// Sends a chat completions request `body` (a JSON object) upstream under the
    /// retry policy and the breaker.
    pub(crate) async fn complete(&self, body: Bytes) -> Result<Upstream, RetryError<Failure>> {
        let mut guard = BreakerGuard(Arc::clone(&self.breaker));
        let clock = TokioClock(self.origin);
        let env = Env { clock: &clock, sleeper: &TokioSleeper };
        let rng = bridge_core::random::SeededRandom::new(clock.now_micros());
        let (url, key) = (self.config.upstream.as_str(), self.config.api_key.as_deref());
        let (result, _) = retry(&self.policy, env, &mut guard, rng, std::future::pending(), |info| {
            attempt(&self.client, url, key, body.clone(), info.timeout)
        })
        .await;
        result
    }

    /// Whether the upstream answers (`/models` next to its chat URL): (pass, what it said).
    pub(crate) async fn probe(&self) -> (bool, String) {
        let upstream = &self.config.upstream;
        let base = upstream.rsplit_once("/chat/completions").map_or(upstream.as_str(), |(b, _)| b);
        let probe = self.client.get(format!("{base}/models")).timeout(Duration::from_secs(3)).send().await;
        match probe {
            Ok(r) if r.status().is_success() || r.status().is_client_error() => {
                (true, format!("upstream answered HTTP {}", r.status()))
            }
            Ok(r) => (false, format!("upstream answered HTTP {}", r.status())),
            Err(e) => (false, format!("upstream unreachable: {e}")),
        }
    }
}
