//! The state layer as the driver uses it, natively: runs, the fast lane, the
//! settings' errors, the failures handed across, and a socket's session as the
//! driver feeds it (its JS values are handles here).

use serde_json::Value;

use super::{Core, Out, OutKind};

fn core() -> Core {
    Core::new(7.0)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn report(c: &mut Core, now: f64) -> Value {
    parse(&c.report("b".into(), "i".into(), 1.0, 0.0, None, 0.0, true, now))
}

fn http(c: &mut Core, status: u16) {
    c.failure("http", f64::from(status), "", "", false, None);
}

/// Policy `name`: `retries` retries, 100 ms doubling to 1 s without jitter, a 500 ms attempt timeout.
fn plain_policy(c: &mut Core, name: &str, retries: u32) {
    let wrong =
        c.set_policy(name, Some(retries), Some(100.0), Some(1000.0), Some("none".into()), None, None, Some(500.0));
    assert_eq!(wrong, None);
}

/// Breaker `name` opens on its first failure and half-opens after 5 s.
fn fragile_breaker(c: &mut Core, name: &str) {
    let wrong = c.set_breaker(Some(name.into()), Some(1), Some(5000.0), None, None, None, None, None, false);
    assert_eq!(wrong, None);
}

fn breaker(report: &Value, name: &str) -> Value {
    let all = report["breakers"].as_array().expect("breakers");
    all.iter().find(|b| b["name"] == name).unwrap_or_else(|| panic!("no breaker {name} in {all:?}")).clone()
}

const ENDED: f64 = -2.0;

#[test]
fn a_run_retries_transient_failures_on_its_policy_and_ends_exhausted() {
    let mut c = core();
    plain_policy(&mut c, "t", 2);
    let id = c.begin("t".into(), "t".into(), "t".into(), 0.0) as u32;
    let mut waits = Vec::new();
    let mut now = 0.0;
    loop {
        assert_eq!(c.attempt(id, now), 500.0, "each attempt gets the policy's timeout");
        http(&mut c, 503);
        match c.failed(id, now + 10.0, true) {
            ENDED => break,
            wait => waits.push(wait),
        }
        now += 10.0 + waits.last().unwrap();
    }
    assert_eq!(waits, [100.0, 200.0], "two retries, doubling, no jitter");
    let ended = parse(&c.end(id, now + 10.0));
    assert_eq!(ended["code"], "retries_exhausted");
    assert_eq!(ended["attempts"], 3);
    assert_eq!(ended["last"]["code"], "http");
    assert_eq!(ended["last"]["status"], 503);
    assert_eq!(ended["last"]["transient"], true);
    assert!(ended["message"].as_str().unwrap().contains("503"), "{ended}");
    let r = report(&mut c, now + 20.0);
    let t = &r["retry"]["operations"]["t"];
    assert_eq!((t["calls"].as_u64(), t["attempts"].as_u64()), (Some(1), Some(3)), "{t}");
    assert_eq!(t["outcomes"]["retries_exhausted"], 1, "{t}");
    assert_eq!(breaker(&r, "t")["consecutiveFailures"], 3);
}

#[test]
fn a_permanent_failure_ends_the_run_at_once_and_spares_the_breaker() {
    let mut c = core();
    let id = c.begin("t".into(), "t".into(), "t".into(), 0.0) as u32;
    assert!(c.attempt(id, 0.0) > 0.0);
    http(&mut c, 404);
    assert_eq!(c.failed(id, 5.0, true), ENDED);
    let ended = parse(&c.end(id, 5.0));
    assert_eq!(ended["code"], "permanent");
    assert_eq!(ended["attempts"], 1);
    assert_eq!(ended["last"]["transient"], false);
    assert_eq!(
        breaker(&report(&mut c, 6.0), "t")["consecutiveFailures"],
        0,
        "a 404 is the caller's, not the dependency's"
    );
}

#[test]
fn an_open_breaker_ends_a_run_before_its_attempt_and_says_when_to_come_back() {
    let mut c = core();
    plain_policy(&mut c, "t", 3);
    fragile_breaker(&mut c, "t");
    let id = c.begin("t".into(), "t".into(), "t".into(), 0.0) as u32;
    c.attempt(id, 0.0);
    http(&mut c, 503);
    let wait = c.failed(id, 10.0, true);
    assert_eq!(wait, 100.0);
    assert_eq!(c.attempt(id, 110.0), ENDED, "the breaker opened on the first failure");
    let ended = parse(&c.end(id, 110.0));
    assert_eq!(ended["code"], "circuit_open");
    assert_eq!(ended["moved"], true);
    assert_eq!(ended["attempts"], 1);
    assert_eq!(ended["retryInMs"], 4900, "5 s after it opened at 10 ms");
    // After the reset timeout a new run gets its trial attempt.
    let id = c.begin("t".into(), "t".into(), "t".into(), 5010.0) as u32;
    assert_eq!(c.attempt(id, 5010.0), 500.0);
    c.succeeded(id, 5020.0);
    let ended = parse(&c.end(id, 5020.0));
    assert_eq!(ended.get("code"), None, "{ended}");
    assert_eq!(breaker(&report(&mut c, 5030.0), "t")["state"], "half_open");
}

#[test]
fn a_failure_while_offline_is_not_held_against_the_breaker() {
    let mut c = core();
    fragile_breaker(&mut c, "t");
    let id = c.begin("t".into(), "t".into(), "t".into(), 0.0) as u32;
    c.attempt(id, 0.0);
    c.failure("network", 0.0, "", "Failed to fetch", false, None);
    assert!(c.failed(id, 10.0, false) >= 0.0, "still retried");
    assert!(c.attempt(id, 500.0) > 0.0, "and admitted: the breaker stayed closed");
    c.cancelled(id, 600.0);
    let ended = parse(&c.end(id, 600.0));
    assert_eq!(ended["code"], "cancelled");
    assert_eq!(breaker(&report(&mut c, 700.0), "t")["state"], "closed");
}

#[test]
fn runs_in_flight_are_bounded_and_an_ended_one_frees_its_place() {
    let mut c = core();
    let ids: Vec<i32> = (0..4096).map(|_| c.begin("t".into(), "t".into(), "t".into(), 0.0)).collect();
    assert!(ids.iter().all(|id| *id >= 0));
    assert_eq!(c.begin("t".into(), "t".into(), "t".into(), 0.0), -1, "the 4097th waits for a place");
    parse(&c.end(17, 1.0));
    assert_eq!(c.begin("t".into(), "t".into(), "t".into(), 1.0), 17);
    // A run the driver no longer has answers as ended.
    assert_eq!(c.end(9999, 1.0), "{\"moved\":false,\"attempts\":0}");
    assert_eq!(c.attempt(9999, 1.0), ENDED);
    assert_eq!(c.failed(9999, 1.0, true), ENDED);
}

#[test]
fn the_fast_lane_counts_batched_successes_and_a_failed_first_try_resumes_a_full_run() {
    let mut c = core();
    plain_policy(&mut c, "t", 3);
    fragile_breaker(&mut c, "t");
    let tool = c.tool_id("t".into()) as u32;
    let permit = c.lane(tool, 0.0);
    assert!(permit >= 0.0, "a closed breaker gives a lane");
    c.landed(tool, permit, 3, &[1.5, 2.5], 10.0);
    let r = report(&mut c, 11.0);
    let t = &r["retry"]["operations"]["t"];
    assert_eq!((t["calls"].as_u64(), t["successes"].as_u64()), (Some(3), Some(3)), "{t}");
    assert_eq!(t["latency"]["count"], 2, "two of them were timed: {t}");
    assert_eq!(breaker(&r, "t")["successes"], 3);

    let run = c.resume(tool, permit, 20.0, 30.0);
    assert!(run >= 0);
    http(&mut c, 503);
    assert_eq!(c.failed(run as u32, 30.0, true), 100.0, "the run counts the first try as attempt 1");
    assert_eq!(c.lane(tool, 31.0), -1.0, "the first failure opened the breaker: no lane");
    assert_eq!(c.attempt(run as u32, 130.0), ENDED);
    let ended = parse(&c.end(run as u32, 130.0));
    assert_eq!(ended["moved"], true, "the lanes hear of it");
    assert_eq!(ended["code"], "circuit_open");
    assert_eq!(ended["attempts"], 1);
    let r = report(&mut c, 140.0);
    let b = breaker(&r, "t");
    assert_eq!((b["failures"].as_u64(), b["state"].as_str()), (Some(1), Some("open")), "told once: {b}");
    assert_eq!(r["retry"]["operations"]["t"]["calls"], 4);
}

#[test]
fn calls_tools_are_bounded_and_keep_their_ids() {
    let mut c = core();
    assert_eq!(c.tool_id("a".into()), 0);
    assert_eq!(c.tool_id("b".into()), 1);
    assert_eq!(c.tool_id("a".into()), 0);
    for i in 2..256 {
        assert_eq!(c.tool_id(format!("t{i}")), i);
    }
    assert_eq!(c.tool_id("one too many".into()), -1, "it takes the full path");
    assert_eq!(c.tool_id("b".into()), 1);
    assert_eq!(c.lane(999, 0.0), -1.0);
    assert_eq!(c.resume(999, 0.0, 0.0, 0.0), -1);
}

#[test]
fn wrong_settings_come_back_as_a_sentence_and_change_nothing() {
    let mut c = core();
    let before = c.policy_json("t");
    let wrong = c.set_policy("t", None, Some(500.0), Some(100.0), None, None, None, None);
    assert!(wrong.as_deref().is_some_and(|w| w.contains("delay")), "{wrong:?}");
    let wrong = c.set_policy("t", None, None, None, Some("proportional".into()), Some(1.5), None, None);
    assert!(wrong.as_deref().is_some_and(|w| w.contains("1.5")), "{wrong:?}");
    assert_eq!(c.policy_json("t"), before);
    assert!(!c.has_policy("t"));

    let wrong = c.set_breaker(Some("t".into()), Some(0), None, None, None, None, None, None, false);
    assert!(wrong.as_deref().is_some_and(|w| w.contains("failureThreshold")), "{wrong:?}");
    let wrong = c.set_breaker(None, None, None, None, None, Some(10), Some(20), Some(0.5), true);
    assert!(wrong.is_some(), "more calls than the window holds");

    let wrong = c.set_budget(None, Some(-1.0), None);
    assert!(wrong.as_deref().is_some_and(|w| w.contains("-1")), "{wrong:?}");
    assert_eq!(c.set_budget(Some(10_000.0), Some(0.5), Some(2)), None);

    assert_eq!(c.set_policy("t", Some(1), None, None, Some("full".into()), None, None, None), None);
    assert!(c.has_policy("t"));
    assert_eq!(parse(&c.policy_json("t"))["maxRetries"], 1);
}

#[test]
fn a_follower_tab_gets_the_code_a_program_switches_on() {
    let mut c = core();
    c.failure("server", 0.0, "overloaded", "try later", true, Some(2000.0));
    assert_eq!(parse(&c.shared(None)), serde_json::json!(["overloaded", "try later", true]));
    c.failure("http", 404.0, "", "", false, None);
    let [code, message, retryable] = serde_json::from_str::<[Value; 3]>(&c.shared(None)).unwrap();
    assert_eq!((code, retryable), ("http".into(), false.into()));
    assert!(message.as_str().unwrap().contains("404"));
    let refused = parse(&c.shared(Some("outbox_full".into())));
    assert_eq!(refused[0], "outbox_full");
}

#[test]
fn only_a_node_that_did_not_answer_moves_the_bridge_on() {
    let mut c = core();
    c.set_nodes(vec!["http://a:1".into(), "http://b:2".into()], 0.0);
    assert_eq!(c.node(), "http://a:1");
    c.failure("http", 500.0, "", "", false, None);
    assert_eq!(c.node_failed("http://a:1", 1.0), None, "it answered: it is alive");
    c.failure("network", 0.0, "", "refused", false, None);
    let moved = parse(&c.node_failed("http://a:1", 2.0).expect("a move"));
    assert_eq!((moved["from"].as_str(), moved["to"].as_str()), (Some("http://a:1"), Some("http://b:2")), "{moved}");
    assert_eq!(c.node(), "http://b:2");
}

#[test]
fn tools_under_one_policy_share_its_retry_budget() {
    let mut c = core();
    plain_policy(&mut c, "shared", 3);
    // One retry per window, whatever the traffic.
    assert_eq!(c.set_budget(Some(10_000.0), Some(0.0), Some(1)), None);
    let retried = |c: &mut Core, tool: &str| {
        let id = c.begin(tool.into(), tool.into(), "shared".into(), 0.0) as u32;
        c.attempt(id, 0.0);
        http(c, 503);
        let wait = c.failed(id, 1.0, true);
        let ended = parse(&c.end(id, 2.0));
        (wait, ended)
    };
    let (wait, _) = retried(&mut c, "a");
    assert_eq!(wait, 100.0, "the policy's one retry");
    let (wait, ended) = retried(&mut c, "b");
    assert_eq!(wait, ENDED, "b draws on the same budget: {ended}");
    assert_eq!(ended["code"], "retry_budget_exhausted");
}

/// Frame `kind` from the server on socket 0, its fields as the driver reads them, carrying value `handle`.
fn heard(c: &mut Core, kind: &str, sid: Option<&str>, a: Option<&str>, n: Option<f64>, handle: u32) -> i32 {
    c.frame(0, 5.0, kind.into(), sid.map(Into::into), None, a.map(Into::into), None, n, false, super::Value(handle))
}

/// The next output that is not only news of the socket's state.
fn next(c: &mut Core) -> Option<Out> {
    std::iter::from_fn(|| c.output(0)).find(|o| o.kind != OutKind::Changed)
}

#[test]
fn a_socket_answers_requests_with_the_frame_they_got_and_refuses_past_its_outbox() {
    let mut c = core();
    c.add_socket(0, "page".into(), None, "tab1".into(), 2);
    c.life(0, "connecting");
    let hello = parse(&c.opened(0));
    assert_eq!(hello["type"], "hello");
    assert_eq!(heard(&mut c, "welcome", None, None, Some(1000.0), 1), 0);
    assert!(c.is_open(0));
    assert_eq!(c.heartbeat_ms(0), 1000.0);
    assert_eq!(c.output(0).map(|o| o.kind), Some(OutKind::Changed));

    let id = c.new_id(0);
    assert!(id.starts_with("tab1-"), "{id}");
    let key = c.request(0, id.clone(), format!("{{\"id\":\"{id}\"}}")).expect("queued");
    assert_eq!(c.transmit(0), Some(format!("{{\"id\":\"{id}\"}}")));
    assert_eq!(c.transmit(0), None);
    assert!(next(&mut c).is_none());

    // Its answer: the handle of the frame the driver parsed comes back with its key.
    assert_eq!(heard(&mut c, "response", Some(&id), None, None, 7), 0);
    let answer = next(&mut c).expect("the answer");
    assert_eq!((answer.kind, answer.key, answer.value.map(|v| v.0)), (OutKind::Answer, key as f64, Some(7)));
    // An answer nobody waits for any more is dropped, and so is a frame that lacks a field.
    assert_eq!(heard(&mut c, "response", Some(&id), None, None, 8), 0);
    assert!(next(&mut c).is_none());
    assert_eq!(heard(&mut c, "event", None, None, None, 9), -1, "an event without its position");

    // Shared with the other tabs: an event, which the subscriptions whose pattern matches get.
    let sub = c.subscribe(0, vec!["a.*".into()]).expect("a session");
    assert!(sub.1, "this tab's patterns grew");
    let _ = c.transmit(0);
    assert_eq!(
        c.frame(
            0,
            6.0,
            "event".into(),
            None,
            None,
            Some("e1".into()),
            Some("a.b".into()),
            Some(1.0),
            false,
            super::Value(10)
        ),
        1
    );
    let event = next(&mut c).expect("the event");
    assert_eq!((event.kind, event.subs, event.value.map(|v| v.0)), (OutKind::Event, vec![sub.0], Some(10)));

    // Disconnected, requests wait in the outbox up to its limit; past it they are refused.
    c.failure("network", 0.0, "", "gone", false, None);
    assert!(c.dropped(0, 7.0, true) >= 0.0);
    for _ in 0..2 {
        let id = c.new_id(0);
        assert!(c.request(0, id, "{}".into()).is_ok());
    }
    let id = c.new_id(0);
    let refused = c.request(0, id, "{}".into()).expect_err("the outbox is full");
    assert_eq!(refused.kind, OutKind::OutboxFull);
    assert_eq!(refused.text.as_deref(), Some("2 requests are already waiting on the evolution socket"));

    // Stopping refuses whatever waits, each with its key.
    c.life(0, "stop");
    let mut stopped = 0;
    while let Some(o) = next(&mut c) {
        assert_eq!(o.kind, OutKind::Stopped);
        stopped += 1;
    }
    assert_eq!(stopped, 2);
}
