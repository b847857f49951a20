//! The hand-written JSON of every type the browser module writes is
//! serde_json's text for the same value, byte for byte (floats printed by
//! serde_json's own printer here, so that they compare too).
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use bridge_core::backoff::Jitter;
use bridge_core::breaker::{
    BreakerConfig, BreakerSnapshot, BreakerState, BreakerTotals, CircuitBreaker, FailureRateTrigger, TimeInStates,
    Transition, TransitionReason,
};
use bridge_core::health::{CheckResult, ComponentHealth, HealthChange, HealthModel, HealthStatus};
use bridge_core::json::{ToJson, to_text};
use bridge_core::metrics::{LatencySummary, RetryMetrics};
use bridge_core::nodes::{NODE_BREAKER, Nodes};
use bridge_core::protocol::{self, ClientFrame, Id, Json, Priority};
use bridge_core::report::{BridgeReport, SocketSnapshot, SocketState, TabsSnapshot, WebMcpProvider, WebMcpSnapshot};
use bridge_core::retry::driver::RunSummary;
use bridge_core::retry::{Failure, Outcome, PolicyOverride, PolicySet, RetryPolicy};
use bridge_core::time::Millis;
use bridge_core::vecmap::VecMap;
use proptest::prelude::*;
use serde::Serialize;

fn serde_floats(x: f64, out: &mut String) {
    out.push_str(&serde_json::to_string(&x).unwrap());
}

fn same<T: ToJson + Serialize>(v: &T) {
    assert_eq!(to_text(v, serde_floats), serde_json::to_string(v).unwrap());
}

/// Every control character, quotes, backslash, `/`, DEL, non-ASCII.
const NASTY: &str = "\"\\/\n\r\t\u{8}\u{c}\u{0}\u{1}\u{1f}\u{7f}é€😀";

fn failures(s: &str) -> Vec<Failure> {
    vec![
        Failure::Network { message: s.into() },
        Failure::Timeout { after_ms: u64::MAX },
        Failure::Http { status: 503, retry_after_ms: None },
        Failure::Http { status: 429, retry_after_ms: Some(1500) },
        Failure::SocketClosed { code: 1006, reason: String::new() },
        Failure::Server { code: "rate_limited".into(), message: s.into(), retryable: true, retry_after_ms: None },
        Failure::Server { code: s.into(), message: String::new(), retryable: false, retry_after_ms: Some(0) },
        Failure::Auth { message: s.into() },
        Failure::Protocol { message: s.into() },
        Failure::Validation { message: s.into() },
        Failure::Other { message: s.into(), retryable: true },
    ]
}

#[test]
fn failures_of_every_kind() {
    for f in failures(NASTY).iter().chain(&failures("")) {
        same(f);
    }
}

#[test]
fn health_changes_and_snapshots() {
    let empty = HealthModel::new(2);
    same(&empty.snapshot());
    let mut m = HealthModel::bridge_default();
    same(&m.snapshot());
    let changes = [
        m.record("backend", CheckResult::Pass, Some(12.5), Millis(10)),
        m.record("backend", CheckResult::Warn(NASTY.into()), None, Millis(20)),
        m.record("llm", CheckResult::Fail("down".into()), Some(f64::NAN), Millis(30)),
        m.record("llm", CheckResult::Fail("down".into()), Some(1e21), Millis(40)),
        m.record("mine", CheckResult::Pass, Some(0.1), Millis(50)),
    ];
    for c in changes.into_iter().flatten().flatten() {
        same(&c);
    }
    same(&m.snapshot());
    for status in [HealthStatus::Unknown, HealthStatus::Healthy, HealthStatus::Degraded, HealthStatus::Unhealthy] {
        same(&status);
        same(&HealthChange {
            component: String::new(),
            from: status,
            to: status,
            aggregate_from: status,
            aggregate_to: status,
            at: Millis(0),
            detail: Some(String::new()),
        });
    }
    same(&ComponentHealth {
        status: HealthStatus::Degraded,
        critical: true,
        last_check: None,
        last_success: Some(Millis(u64::MAX)),
        consecutive_failures: u32::MAX,
        detail: None,
        latency_ms: Some(-0.0),
    });
}

/// A breaker that tripped on failures, on its failure rate, half-opened, closed and was isolated.
fn busy_breaker() -> CircuitBreaker {
    let config = BreakerConfig {
        failure_rate: Some(FailureRateTrigger { window: 10, min_calls: 2, threshold: 0.5 }),
        ..BreakerConfig::DEFAULT
    };
    let mut b = CircuitBreaker::new(NASTY, config, Millis(0));
    for t in 0..6 {
        if let Ok(p) = b.try_acquire(Millis(t)) {
            b.on_failure(p, Millis(t));
        }
    }
    let later = Millis(31_000);
    for t in 0..3 {
        if let Ok(p) = b.try_acquire(later) {
            b.on_success(p, later + Duration::from_millis(t));
        }
    }
    b.isolate(Millis(40_000));
    b.reset(Millis(40_001));
    b
}

#[test]
fn breakers_their_transitions_and_configs() {
    let mut fresh = CircuitBreaker::new("fetch", BreakerConfig::DEFAULT, Millis(0));
    same(&fresh.snapshot(Millis(0), 10));
    let mut busy = busy_breaker();
    same(&busy.snapshot(Millis(50_000), 100));
    same(&busy.snapshot(Millis(50_000), 0));
    let mut open = CircuitBreaker::new("x", BreakerConfig::DEFAULT, Millis(0));
    open.isolate(Millis(1));
    same(&open.snapshot(Millis(2), 5));
    let states = [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen, BreakerState::ForcedOpen];
    let reasons = [
        TransitionReason::ConsecutiveFailures,
        TransitionReason::FailureRate,
        TransitionReason::ResetTimeout,
        TransitionReason::TrialsSucceeded,
        TransitionReason::TrialFailed,
        TransitionReason::ManualReset,
        TransitionReason::ManualIsolate,
    ];
    let transitions: Vec<Transition> = reasons
        .iter()
        .enumerate()
        .map(|(i, &reason)| Transition {
            seq: i as u64,
            from: states[i % 4],
            to: states[(i + 1) % 4],
            at: Millis(i as u64),
            reason,
            detail: NASTY.into(),
        })
        .collect();
    same(&BreakerSnapshot {
        name: String::new(),
        state: BreakerState::HalfOpen,
        since: Millis(1),
        time_in_state_ms: 2,
        consecutive_failures: 3,
        half_open_in_flight: 4,
        retry_at: Some(Millis(5)),
        totals: BreakerTotals { successes: 6, failures: 7, rejections: 8, open_count: 9, trips: 10 },
        last_open_duration_ms: Some(11),
        time_in_states_ms: TimeInStates { closed: 12, open: 13, half_open: 14, forced_open: 15 },
        rate_window: Some((16, 17)),
        config: BreakerConfig { failure_rate: None, ..NODE_BREAKER },
        transitions,
    });
}

#[test]
fn retry_metrics() {
    let mut m = RetryMetrics::default();
    same(&m.snapshot());
    for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
        let run = RunSummary {
            attempts: i as u32 + 1,
            retries: i as u32,
            total_delay: Duration::from_millis(i as u64 * 100),
            latency_us: 1234 * i as u64,
            outcome,
        };
        let error = (outcome != Outcome::Succeeded).then_some(NASTY);
        m.record(if i % 2 == 0 { "fetch" } else { "sendLLMPrompt" }, &run, error);
    }
    m.record_first_tries("fetch", 3, &[10, 20, 30]);
    m.record_first_tries("none", 0, &[]);
    same(&m.snapshot());
    same(&LatencySummary { count: 1, p50_ms: 0.1, p90_ms: 1.0, p99_ms: f64::INFINITY, mean_ms: 1e-7, max_ms: -1.5 });
}

fn socket(state: SocketState, all: bool) -> SocketSnapshot {
    SocketSnapshot {
        state,
        url: NASTY.into(),
        connected_since: all.then_some(Millis(3)),
        reconnects: 1,
        outbox: 2,
        outbox_limit: 256,
        last_error: all.then(|| NASTY.into()),
        position: all.then(|| "e:4".into()),
        resets: 0,
    }
}

fn report(full: bool) -> BridgeReport {
    let mut nodes = Nodes::new(&["http://a".into(), "http://b".into()], NODE_BREAKER, Millis(0));
    nodes.failed("http://a", Millis(5));
    let states = [SocketState::Stopped, SocketState::Connecting, SocketState::Open, SocketState::Reconnecting];
    let sockets: VecMap<String, SocketSnapshot> =
        states.iter().enumerate().map(|(i, &s)| (format!("s{i}"), socket(s, full ^ (i % 2 == 0)))).collect();
    let mut metrics = RetryMetrics::default();
    metrics.record_first_tries("fetch", 2, &[100, 200]);
    BridgeReport {
        bridge_id: "b1".into(),
        instance: NASTY.into(),
        seq: 3,
        ts: 1_700_000_000_000,
        version: bridge_core::VERSION.into(),
        page: full.then(|| "http://127.0.0.1:8765/demo/".into()),
        uptime_ms: 10,
        health: HealthModel::bridge_default().snapshot(),
        breakers: if full { vec![busy_breaker().snapshot(Millis(60_000), 20)] } else { vec![] },
        retry: metrics.snapshot(),
        sockets: if full { sockets } else { VecMap::new() },
        nodes: if full { nodes.snapshot(Millis(6), 10) } else { vec![] },
        webmcp: full.then(|| WebMcpSnapshot {
            available: true,
            provider: Some(WebMcpProvider::Polyfill),
            tools: vec!["a".into(), NASTY.into()],
        }),
        tabs: full.then(|| TabsSnapshot { tab: "t".into(), role: "leader".into(), leader: None, count: 2 }),
    }
}

#[test]
fn reports_and_what_they_hold() {
    same(&report(true));
    same(&report(false));
    for provider in [None, Some(WebMcpProvider::Native), Some(WebMcpProvider::Navigator)] {
        same(&WebMcpSnapshot { available: provider.is_some(), provider, tools: vec![] });
    }
    same(&TabsSnapshot { tab: String::new(), role: "follower".into(), leader: Some("l".into()), count: 0 });
    let mut nodes = Nodes::new(&["http://a".into(), "http://b".into()], NODE_BREAKER, Millis(0));
    same(&nodes.failed("http://a", Millis(1)).expect("moves to b"));
    same(&nodes.snapshot(Millis(2), 1));
}

#[test]
fn policies_and_jitter() {
    let mut set = PolicySet::default();
    same(&set);
    same(set.get("sendLLMPrompt"));
    let jitters = [Jitter::None, Jitter::Proportional { ratio: 0.25 }, Jitter::Full, Jitter::Decorrelated];
    for (i, jitter) in jitters.into_iter().enumerate() {
        same(&jitter);
        let ov = PolicyOverride {
            max_retries: Some(i as u32),
            jitter: Some(jitter),
            deadline_ms: Some(0),
            ..Default::default()
        };
        set.apply_overrides([(NASTY, &ov), ("default", &ov)]).unwrap();
        same(&set);
    }
    let policy = RetryPolicy::builder().deadline(None).attempt_timeout(None).build().unwrap();
    same(&policy);
    // The module's `defaultPoliciesJson`: policies by name, borrowed.
    let by_name: VecMap<&str, &RetryPolicy> = set.named().chain([("default", set.default_policy())]).collect();
    same(&by_name);
    same(&VecMap::<String, u64>::new());
}

#[test]
fn client_frames_of_every_type_are_written_as_serde_json_writes_them() {
    let frames = [
        r#"{"type":"hello","protocol":1,"client":"page \"1\"","token":"t"}"#,
        r#"{"type":"hello","protocol":1,"client":""}"#,
        r#"{"type":"ping","id":"hb-1"}"#,
        r#"{"type":"subscribe","id":"i-1","topics":["a","b.*"],"since":{"epoch":"e","seq":7}}"#,
        r#"{"type":"subscribe","id":0,"topics":["*"]}"#,
        r#"{"type":"unsubscribe","id":2,"topics":["a"]}"#,
        r#"{"type":"publish","id":3,"topic":"t","data":{"nested":[1,2.50,{"x":null}]}}"#,
        r#"{"type":"handle","id":4,"actions":["x","y"]}"#,
        r#"{"type":"request","id":5,"action":"a"}"#,
        r#"{"type":"request","id":5,"action":"a","params":[1],"timeout_ms":10}"#,
        r#"{"type":"response","id":6,"ok":true,"result":"\u0001"}"#,
        r#"{"type":"response","id":6,"ok":false,"error":{"code":"c","message":"m"}}"#,
        r#"{"type":"register","id":7,"agent":"me"}"#,
        r#"{"type":"register","id":7,"agent":"me","capabilities":["c"],"presence":true,"takeover":true}"#,
        r#"{"type":"send","id":"s","to":"bob","message_type":"note","content":"\u0001","priority":"high","expires_in_ms":5}"#,
        r#"{"type":"send","id":"s","to":"bob","message_type":"note","content":{}}"#,
        r#"{"type":"ack","id":"m","from":"bob"}"#,
        r#"{"type":"broadcast","id":8,"message_type":"t","content":[]}"#,
        r#"{"type":"discover","id":9}"#,
        r#"{"type":"discover","id":9,"capability":"c"}"#,
    ];
    for text in frames {
        let frame: ClientFrame = protocol::decode_client(text).expect(text);
        same(&frame);
        assert_eq!(frame.to_json(), serde_json::to_string(&frame).unwrap());
    }
    for p in [Priority::Low, Priority::Normal, Priority::High] {
        same(&p);
    }
    same(&Id::Num(u64::MAX));
    same(&Id::Str(NASTY.into()));
    same(&Json::from_text(" [1, 2.5 , \"x\"] ").unwrap());
}

fn any_string() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

fn any_failure() -> impl Strategy<Value = Failure> {
    let opt = || proptest::option::of(any::<u64>());
    prop_oneof![
        any_string().prop_map(|message| Failure::Network { message }),
        any::<u64>().prop_map(|after_ms| Failure::Timeout { after_ms }),
        (any::<u16>(), opt()).prop_map(|(status, retry_after_ms)| Failure::Http { status, retry_after_ms }),
        (any::<u16>(), any_string()).prop_map(|(code, reason)| Failure::SocketClosed { code, reason }),
        (any_string(), any_string(), any::<bool>(), opt()).prop_map(|(code, message, retryable, retry_after_ms)| {
            Failure::Server { code, message, retryable, retry_after_ms }
        }),
        any_string().prop_map(|message| Failure::Auth { message }),
        (any_string(), any::<bool>()).prop_map(|(message, retryable)| Failure::Other { message, retryable }),
    ]
}

/// Floats of every kind: any bits (NaN, infinities, subnormals, -0) and plain ones.
fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![any::<u64>().prop_map(f64::from_bits), -1e6..1e6f64, Just(0.0), Just(-0.0)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn any_failure_is_written_as_serde_json_writes_it(f in any_failure()) {
        prop_assert_eq!(to_text(&f, serde_floats), serde_json::to_string(&f).unwrap());
    }

    #[test]
    fn any_component_is_written_as_serde_json_writes_it(
        detail in proptest::option::of(any_string()),
        latency_ms in proptest::option::of(any_float()),
        last_check in proptest::option::of(any::<u64>()),
        critical in any::<bool>(),
        failures in any::<u32>(),
    ) {
        let c = ComponentHealth {
            status: HealthStatus::Degraded,
            critical,
            last_check: last_check.map(Millis),
            last_success: None,
            consecutive_failures: failures,
            detail,
            latency_ms,
        };
        prop_assert_eq!(to_text(&c, serde_floats), serde_json::to_string(&c).unwrap());
    }

    #[test]
    fn any_latency_summary_is_written_as_serde_json_writes_it(
        count in any::<u64>(), f in prop::array::uniform5(any_float()),
    ) {
        let s = LatencySummary { count, p50_ms: f[0], p90_ms: f[1], p99_ms: f[2], mean_ms: f[3], max_ms: f[4] };
        prop_assert_eq!(to_text(&s, serde_floats), serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn any_socket_map_is_written_as_serde_json_writes_it(
        entries in prop::collection::vec((any_string(), proptest::option::of(any_string()), any::<u64>()), 0..5),
    ) {
        let map: VecMap<String, SocketSnapshot> = entries
            .into_iter()
            .map(|(name, error, n)| {
                let s = SocketSnapshot { last_error: error, reconnects: n, ..socket(SocketState::Open, n % 2 == 0) };
                (name, s)
            })
            .collect();
        prop_assert_eq!(to_text(&map, serde_floats), serde_json::to_string(&map).unwrap());
    }

    #[test]
    fn any_send_frame_is_written_as_serde_json_writes_it(
        id in prop_oneof![any::<u64>().prop_map(Id::Num), any_string().prop_map(Id::Str)],
        to in any_string(),
        content in any_string(),
        priority in proptest::option::of(prop_oneof![Just(Priority::Low), Just(Priority::High)]),
        expires_in_ms in proptest::option::of(any::<u64>()),
    ) {
        let content = Json::from_value(&content);
        let frame = ClientFrame::Send(protocol::Send { id, to, message_type: "m".into(), content, priority, expires_in_ms });
        prop_assert_eq!(frame.to_json(), serde_json::to_string(&frame).unwrap());
    }
}
