//! The session against hand-made scenarios, then against a reference model
//! under random drops, reconnects, duplicates, resets, cancellations, a full
//! outbox, and the bridge stopping and starting again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::protocol::{ClientFrame, decode_client};
use crate::text;

type S = Session<String>;

fn identity() -> Identity {
    Identity { client: "page-1".into(), token: None, instance: "i".into() }
}

fn session(kind: Kind, limit: u32) -> S {
    Session::new(kind, identity(), limit)
}

fn drain(s: &mut S) -> Vec<Output<String>> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// The frames written now (what the page gets is dropped).
fn sent(s: &mut S) -> Vec<ClientFrame> {
    drain(s);
    std::iter::from_fn(|| s.poll_transmit())
        .map(|t| decode_client(&t).expect("the session writes valid frames"))
        .collect()
}

fn connect(s: &mut S, now: u64) -> Vec<ClientFrame> {
    s.connecting();
    let hello = s.opened();
    assert!(matches!(decode_client(&hello), Ok(ClientFrame::Hello(_))));
    s.frame(Millis(now), Inbound::Welcome { heartbeat_ms: 1_000 });
    sent(s)
}

fn drop_connection(s: &mut S, now: u64) -> Option<Duration> {
    let why = Failure::SocketClosed { code: 1006, reason: String::new() };
    s.closed(Millis(now), &why, (1..).map(Duration::from_secs))
}

fn request_frame(id: &Id) -> String {
    format!(r#"{{"type":"request","id":{},"action":"evolve"}}"#, serde_json::to_string(id).unwrap())
}

fn request(s: &mut S) -> (Id, u64) {
    let id = s.new_id();
    let key = s.request(id.clone(), request_frame(&id)).expect("room in the outbox");
    (id, key)
}

fn pos(seq: u64) -> Position {
    Position { epoch: "e1".into(), seq }
}

fn event(seq: u64, topic: &str) -> Inbound<String> {
    Inbound::Event { position: pos(seq), topic: topic.into(), payload: format!("{topic}#{seq}") }
}

#[test]
fn a_request_waits_offline_goes_out_after_welcome_and_again_after_a_drop() {
    let mut s = session(Kind::Evolution, 8);
    let (id, key) = request(&mut s);
    assert!(sent(&mut s).is_empty(), "nothing is written before a connection");
    let first = connect(&mut s, 0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id(), Some(&id));
    assert_eq!(drop_connection(&mut s, 10_000), Some(Duration::ZERO), "a long session reconnects at once");
    let again = connect(&mut s, 20_000);
    assert_eq!(again.iter().map(|f| f.id()).collect::<Vec<_>>(), vec![Some(&id)], "the same id again");
    s.frame(Millis(20_001), Inbound::Answer { id: id.clone(), position: None, payload: "ok".into() });
    assert_eq!(drain(&mut s), vec![Output::Answer { key, reply: Ok("ok".into()) }]);
    // The server answers a re-sent request again: nobody waits for it any more.
    s.frame(Millis(20_002), Inbound::Answer { id, position: None, payload: "ok".into() });
    assert!(drain(&mut s).is_empty() && sent(&mut s).is_empty());
    drop_connection(&mut s, 30_000);
    assert!(connect(&mut s, 40_000).is_empty(), "an answered request is not sent again");
}

#[test]
fn an_error_answer_reaches_its_request_and_a_stray_one_is_reported() {
    let mut s = session(Kind::Agents, 8);
    connect(&mut s, 0);
    let (id, key) = request(&mut s);
    drain(&mut s);
    let failure =
        Failure::Server { code: "no_handler".into(), message: "none".into(), retryable: true, retry_after_ms: None };
    s.frame(Millis(1), Inbound::Error { id: Some(id), failure: failure.clone() });
    assert_eq!(drain(&mut s), vec![Output::Answer { key, reply: Err(failure.clone()) }]);
    s.frame(Millis(2), Inbound::Error { id: None, failure: failure.clone() });
    assert_eq!(drain(&mut s), vec![Output::ServerError(failure)]);
}

#[test]
fn a_full_outbox_refuses_and_a_cancelled_request_frees_its_place() {
    let mut s = session(Kind::Evolution, 2);
    let (_, a) = request(&mut s);
    request(&mut s);
    let id = s.new_id();
    assert_eq!(s.request(id.clone(), request_frame(&id)), Err(Refusal::OutboxFull { limit: 2 }));
    s.cancel(a);
    assert!(s.request(id.clone(), request_frame(&id)).is_ok());
    assert_eq!(s.snapshot(String::new()).outbox, 2);
    let out = connect(&mut s, 0);
    assert_eq!(out.len(), 2, "the cancelled request is not sent");
}

#[test]
fn a_reconnect_subscribes_each_pattern_once_since_the_last_event_ahead_of_requests() {
    let mut s = session(Kind::Evolution, 8);
    let (a, _) = s.subscribe(vec!["x".into(), "y".into()]);
    s.subscribe(vec!["y".into()]);
    let out = connect(&mut s, 0);
    let ClientFrame::Subscribe(first) = &out[0] else { panic!("resume first: {out:?}") };
    assert_eq!((first.topics.clone(), first.since.clone()), (vec!["x".to_string(), "y".to_string()], None));
    s.frame(Millis(1), event(7, "x"));
    drain(&mut s);
    drop_connection(&mut s, 2);
    request(&mut s);
    s.unsubscribe(a);
    let out = connect(&mut s, 3);
    let ClientFrame::Subscribe(resume) = &out[0] else { panic!("resume first: {out:?}") };
    assert_eq!((resume.topics.clone(), resume.since.clone()), (vec!["y".to_string()], Some(pos(7))));
    assert!(matches!(out[1], ClientFrame::Request(_)));
}

#[test]
fn subscriptions_change_on_an_open_connection_by_pattern_count() {
    let mut s = session(Kind::Evolution, 8);
    connect(&mut s, 0);
    let (a, grew) = s.subscribe(vec!["x".into()]);
    assert!(grew);
    let (b, grew) = s.subscribe(vec!["x".into()]);
    assert!(!grew);
    let out = sent(&mut s);
    assert!(matches!(&out[..], [ClientFrame::Subscribe(f)] if f.topics == ["x"] && f.since.is_none()));
    assert_eq!(s.unsubscribe(a), Some(false));
    assert!(sent(&mut s).is_empty(), "another subscription still wants x");
    assert_eq!(s.unsubscribe(b), Some(true));
    assert!(matches!(&sent(&mut s)[..], [ClientFrame::Unsubscribe(f)] if f.topics == ["x"]));
    assert_eq!(s.unsubscribe(b), None);
}

#[test]
fn patterns_another_tab_wants_stay_subscribed() {
    let mut s = session(Kind::Evolution, 8);
    connect(&mut s, 0);
    s.set_remote_patterns(vec!["x".into()]);
    assert!(matches!(&sent(&mut s)[..], [ClientFrame::Subscribe(f)] if f.topics == ["x"]));
    let (a, _) = s.subscribe(vec!["x".into()]);
    assert!(sent(&mut s).is_empty(), "already subscribed for the other tab");
    s.unsubscribe(a);
    assert!(sent(&mut s).is_empty(), "the other tab still wants it");
    s.set_remote_patterns(vec![]);
    assert!(matches!(&sent(&mut s)[..], [ClientFrame::Unsubscribe(f)] if f.topics == ["x"]));
}

#[test]
fn events_reach_matching_subscriptions_once_and_a_reset_moves_the_position() {
    let mut s = session(Kind::Evolution, 8);
    let (x, _) = s.subscribe(vec!["x".into()]);
    let (all, _) = s.subscribe(vec!["*".into()]);
    connect(&mut s, 0);
    for f in [event(1, "x"), event(2, "y"), event(2, "y"), event(1, "x")] {
        s.frame(Millis(1), f);
    }
    let events: Vec<_> = drain(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            Output::Event { subs, payload } => Some((subs, payload)),
            _ => None,
        })
        .collect();
    assert_eq!(events, vec![(vec![x, all], "x#1".to_string()), (vec![all], "y#2".to_string())]);
    assert_eq!(s.duplicates_dropped(), 2);
    s.frame(Millis(2), Inbound::Reset { position: Position { epoch: "e2".into(), seq: 0 }, payload: "r".into() });
    assert!(drain(&mut s).contains(&Output::Reset("r".into())));
    s.frame(
        Millis(3),
        Inbound::Event { position: Position { epoch: "e2".into(), seq: 1 }, topic: "x".into(), payload: "n".into() },
    );
    assert!(matches!(&drain(&mut s)[..], [Output::Event { payload, .. }] if payload == "n"), "a new epoch starts over");
    assert_eq!(s.snapshot(String::new()).resets, 1);
}

#[test]
fn a_redelivered_message_is_acked_again_but_handed_over_once() {
    let mut s = session(Kind::Agents, 8);
    s.set_agent("alice".into(), vec!["chat".into()]);
    let out = connect(&mut s, 0);
    assert!(matches!(&out[..], [ClientFrame::Register(r)] if r.agent == "alice" && r.takeover));
    let message =
        |n: &str| Inbound::Message { id: Id::Num(5), from: "bob".into(), broadcast: false, payload: n.into() };
    s.frame(Millis(1), message("first"));
    let out = drain(&mut s);
    let [Output::Message { payload, ack: Some(ack) }] = &out[..] else { panic!("{out:?}") };
    assert_eq!(payload, "first");
    // The page has not handled it yet when the connection drops: no ack went out.
    drop_connection(&mut s, 2);
    s.push(ack.clone());
    connect(&mut s, 3);
    s.frame(Millis(4), message("again"));
    let out = sent(&mut s);
    assert!(matches!(&out[..], [ClientFrame::Ack(a)] if a.id == Id::Num(5) && a.from == "bob"), "{out:?}");
    s.frame(Millis(5), Inbound::Message { id: Id::Num(6), from: "bob".into(), broadcast: true, payload: "all".into() });
    assert_eq!(drain(&mut s), vec![Output::Message { payload: "all".into(), ack: None }]);
}

#[test]
fn the_heartbeat_pings_in_silence_and_gives_up_on_an_unanswered_ping() {
    let mut s = session(Kind::Evolution, 8);
    connect(&mut s, 0);
    assert_eq!(s.heartbeat_interval(), Some(Duration::from_secs(1)));
    assert_eq!(s.tick(Millis(1_000)), Ok(()));
    assert!(matches!(&sent(&mut s)[..], [ClientFrame::Ping(_)]));
    s.frame(Millis(1_100), Inbound::Other);
    assert_eq!(s.tick(Millis(2_100)), Ok(()), "the pong answered");
    drain(&mut s);
    assert_eq!(s.tick(Millis(3_100)), Err(Failure::Timeout { after_ms: 1_000 }));
}

#[test]
fn a_handshake_refusal_explains_the_close() {
    let mut s = session(Kind::Evolution, 8);
    s.connecting();
    s.opened();
    let refusal = Failure::Auth { message: "bad token".into() };
    s.frame(Millis(0), Inbound::Error { id: None, failure: refusal.clone() });
    assert!(drain(&mut s).iter().all(|o| matches!(o, Output::Changed)));
    assert_eq!(s.handshake_failed(Failure::SocketClosed { code: 1008, reason: String::new() }), refusal);
    s.opened();
    let closed = Failure::SocketClosed { code: 1006, reason: String::new() };
    assert_eq!(s.handshake_failed(closed.clone()), closed, "the next attempt starts without it");
    assert!(!s.is_open());
}

#[test]
fn a_taken_agent_name_refuses_waiting_requests_and_stops_until_restart() {
    let mut s = session(Kind::Agents, 8);
    connect(&mut s, 0);
    let (_, key) = request(&mut s);
    drain(&mut s);
    let replaced = Failure::SocketClosed { code: crate::protocol::close::REPLACED, reason: String::new() };
    assert_eq!(s.closed(Millis(1), &replaced, std::iter::empty()), None);
    assert!(drain(&mut s).contains(&Output::Refused { key, refusal: Refusal::Replaced }));
    assert_eq!(s.state(), SocketState::Stopped);
    let id = s.new_id();
    assert_eq!(s.request(id.clone(), request_frame(&id)), Err(Refusal::Replaced));
    s.restart();
    assert!(s.request(id.clone(), request_frame(&id)).is_ok());
}

#[test]
fn connections_that_keep_dropping_back_off_and_a_long_one_resets_that() {
    let mut s = session(Kind::Evolution, 8);
    let mut pauses = Vec::new();
    for start in [0, 1_000, 2_000] {
        connect(&mut s, start);
        pauses.push(drop_connection(&mut s, start + 500));
    }
    connect(&mut s, 3_000);
    pauses.push(drop_connection(&mut s, 60_000));
    let secs = |n| Some(Duration::from_secs(n));
    assert_eq!(pauses, vec![secs(1), secs(2), secs(3), secs(0)]);
}

#[test]
fn stop_and_hand_over_refuse_what_waits_and_the_state_says_so() {
    let mut s = session(Kind::Evolution, 8);
    let (_, a) = request(&mut s);
    s.hand_over();
    assert_eq!(drain(&mut s), vec![Output::Refused { key: a, refusal: Refusal::LeaderChanged }]);
    let (_, b) = request(&mut s);
    connect(&mut s, 0);
    s.stop();
    let out = drain(&mut s);
    assert!(out.contains(&Output::Refused { key: b, refusal: Refusal::Stopped }));
    assert_eq!(s.state(), SocketState::Stopped);
    assert!(!s.is_open());
}

// ---- against a reference model ----

/// What the test does next.
#[derive(Debug, Clone)]
enum Step {
    /// The page makes a request.
    Request,
    /// The page gives up on its n-th waiting request.
    Cancel(usize),
    /// The page subscribes to some of three topics (a bit set).
    Subscribe(u8),
    /// The page ends its n-th subscription.
    Unsubscribe(usize),
    /// The page has handled every message it was given: acks go out.
    HandleMessages,
    /// Connect (open + welcome), or drop the connection.
    Toggle,
    /// The server answers the n-th request it received on this connection.
    Answer(usize),
    /// The server publishes a new event on topic n.
    Publish(u8),
    /// The server sends the event at n back from its newest again.
    Duplicate(u8),
    /// The server sends agent message n (new, or again when it was sent before).
    Message(u8),
    /// Time passes by n seconds (heartbeats).
    Wait(u8),
    /// The server lost its history (it restarted): a `reset`, then a new epoch.
    Reset,
    /// The bridge stops (waiting requests are refused) and starts again.
    StopStart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Request),
        1 => (0..4usize).prop_map(Step::Cancel),
        1 => (1..8u8).prop_map(Step::Subscribe),
        1 => (0..4usize).prop_map(Step::Unsubscribe),
        1 => Just(Step::HandleMessages),
        2 => Just(Step::Toggle),
        3 => (0..4usize).prop_map(Step::Answer),
        3 => (0..3u8).prop_map(Step::Publish),
        2 => (0..4u8).prop_map(Step::Duplicate),
        2 => (0..6u8).prop_map(Step::Message),
        1 => (0..3u8).prop_map(Step::Wait),
        1 => Just(Step::Reset),
        1 => Just(Step::StopStart),
    ]
}

const TOPICS: [&str; 3] = ["a", "b", "c"];
const LIMIT: u32 = 4;

/// The server and the page as the model sees them.
#[derive(Debug, Default)]
struct Model {
    now: u64,
    open: bool,
    /// The page: requests waiting (key -> id), and those that ended.
    waiting: BTreeMap<u64, Id>,
    done: BTreeSet<u64>,
    /// The page: subscription id -> topics.
    subs: Vec<(u32, Vec<&'static str>)>,
    /// The page: events delivered in this epoch (seq), and per subscription.
    delivered: Vec<u64>,
    /// The page: the last position it was told of in this epoch (an event's, or a reset's).
    position: Option<u64>,
    /// The server: its epoch (`e1`, `e2`, ... after each reset), and resets sent.
    epoch: u32,
    resets: u64,
    /// The page: messages handed over, and acks it owes.
    handed: Vec<u8>,
    owed: Vec<(u8, String)>,
    /// The server: events published in this epoch (seq -> topic).
    published: Vec<&'static str>,
    /// The server, this connection: requests received in order, topics subscribed, acks.
    received: Vec<Id>,
    subscribed: BTreeSet<String>,
    acked: BTreeSet<u8>,
    /// The next frame written is the first on a new connection.
    resuming: bool,
    /// Between the welcome and the server's replays and redeliveries.
    settling: bool,
    /// The server: agent messages sent at least once.
    sent_messages: BTreeSet<u8>,
    /// Events the server sends again after a resume.
    replay: Vec<u64>,
}

impl Model {
    /// Checks a frame the session wrote against what the server expects.
    fn written(&mut self, text: String) -> Result<(), TestCaseError> {
        prop_assert!(self.open, "a frame written with no connection");
        let resume_expected = self.resuming;
        match decode_client(&text).expect("valid frame") {
            ClientFrame::Request(r) => {
                prop_assert!(!self.received.contains(&r.id), "request sent twice on one connection");
                prop_assert!(self.waiting.values().any(|id| *id == r.id), "sent a request nobody waits for");
                self.received.push(r.id);
            }
            ClientFrame::Subscribe(f) => {
                if std::mem::take(&mut self.resuming) {
                    // The resume: from the last position the page was told of, and the server replays what followed.
                    prop_assert_eq!(f.since.clone(), self.position.map(|seq| self.pos(seq)));
                    let since = f.since.map_or(u64::MAX, |p| p.seq);
                    for (i, topic) in self.published.iter().enumerate() {
                        if i as u64 + 1 > since && f.topics.iter().any(|t| t == topic) {
                            self.replay.push(i as u64 + 1);
                        }
                    }
                }
                for t in f.topics {
                    prop_assert!(self.subscribed.insert(t), "subscribed twice");
                }
            }
            ClientFrame::Unsubscribe(f) => {
                for t in f.topics {
                    prop_assert!(self.subscribed.remove(&t), "unsubscribed a topic not subscribed");
                }
            }
            ClientFrame::Ack(a) => {
                let Id::Num(n) = a.id else { panic!() };
                self.acked.insert(n as u8);
            }
            ClientFrame::Ping(_) => {}
            other => prop_assert!(false, "unexpected frame {:?}", other),
        }
        // Only a first frame that is a subscribe is a resume.
        if resume_expected {
            self.resuming = false;
        }
        Ok(())
    }

    /// Applies what the session wrote and handed over, checking each against the model.
    fn absorb(&mut self, s: &mut S) -> Result<(), TestCaseError> {
        loop {
            let out = match s.poll_output() {
                Some(out) => out,
                None => match s.poll_transmit() {
                    Some(text) => {
                        self.written(text)?;
                        continue;
                    }
                    None => break,
                },
            };
            match out {
                Output::Answer { key, reply } => {
                    let id = self.waiting.remove(&key);
                    prop_assert!(id.is_some(), "an answer for a request not waiting");
                    prop_assert_eq!(reply, Ok(format!("{}", id.unwrap())), "the answer of another request");
                    prop_assert!(self.done.insert(key));
                }
                Output::Refused { key, .. } => {
                    prop_assert!(self.waiting.remove(&key).is_some());
                    prop_assert!(self.done.insert(key));
                }
                Output::Event { subs, payload } => {
                    let seq: u64 = payload.parse().unwrap();
                    prop_assert!(self.delivered.last().is_none_or(|l| seq > *l), "event out of order or twice");
                    self.delivered.push(seq);
                    self.position = Some(seq);
                    let topic = self.published[seq as usize - 1];
                    let wanted: Vec<u32> =
                        self.subs.iter().filter(|(_, ts)| ts.contains(&topic)).map(|(id, _)| *id).collect();
                    prop_assert_eq!(subs, wanted);
                }
                Output::Message { payload, ack } => {
                    let n: u8 = payload.parse().unwrap();
                    prop_assert!(!self.handed.contains(&n), "message handed over twice");
                    self.handed.push(n);
                    self.owed.push((n, ack.expect("not a broadcast")));
                }
                Output::Reset(payload) => prop_assert_eq!(payload, format!("reset e{}", self.epoch)),
                Output::Presence(_) | Output::ServerError(_) | Output::Changed => {}
            }
        }
        // While open, the server holds exactly the page's topics and every waiting
        // request, and has the ack of every message the page finished with.
        if self.open && !self.settling {
            for n in &self.handed {
                let owed = self.owed.iter().any(|(o, _)| o == n);
                prop_assert!(owed || self.acked.contains(n), "message {} handled but not acknowledged", n);
            }
            let topics: BTreeSet<String> =
                self.subs.iter().flat_map(|(_, ts)| ts.iter().map(|t| t.to_string())).collect();
            prop_assert_eq!(&self.subscribed, &topics);
            for id in self.waiting.values() {
                prop_assert!(self.received.contains(id), "a waiting request not sent after welcome");
            }
        }
        prop_assert!(self.waiting.len() <= LIMIT as usize);
        let snapshot = s.snapshot(String::new());
        prop_assert_eq!(snapshot.outbox as usize, self.waiting.len());
        prop_assert_eq!(snapshot.resets, self.resets);
        Ok(())
    }

    /// Position `seq` in the server's current epoch.
    fn pos(&self, seq: u64) -> Position {
        Position { epoch: text!('e', self.epoch), seq }
    }
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut s = Session::new(Kind::Evolution, identity(), LIMIT);
    let mut m = Model { epoch: 1, ..Model::default() };
    for step in steps {
        match step {
            Step::Request => {
                let id = s.new_id();
                match s.request(id.clone(), request_frame(&id)) {
                    Ok(key) => {
                        m.waiting.insert(key, id);
                    }
                    Err(r) => {
                        prop_assert_eq!(r, Refusal::OutboxFull { limit: LIMIT });
                        prop_assert_eq!(m.waiting.len(), LIMIT as usize);
                    }
                }
            }
            Step::Cancel(n) => {
                if let Some(&key) = m.waiting.keys().nth(n) {
                    s.cancel(key);
                    m.waiting.remove(&key);
                    m.done.insert(key);
                }
            }
            Step::Subscribe(bits) => {
                let topics: Vec<&'static str> =
                    TOPICS.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, t)| *t).collect();
                let (id, _) = s.subscribe(topics.iter().map(|t| t.to_string()).collect());
                m.subs.push((id, topics));
            }
            Step::Unsubscribe(n) if n < m.subs.len() => {
                let (id, _) = m.subs.remove(n);
                prop_assert!(s.unsubscribe(id).is_some());
            }
            Step::HandleMessages => {
                for (_, ack) in std::mem::take(&mut m.owed) {
                    s.push(ack);
                }
            }
            Step::Toggle if m.open => {
                m.now += 10_000;
                drop_connection(&mut s, m.now);
                m.open = false;
            }
            Step::Toggle => {
                m.now += 1;
                s.connecting();
                s.opened();
                (m.received, m.subscribed) = (Vec::new(), BTreeSet::new());
                (m.open, m.resuming, m.settling) = (true, true, true);
                s.frame(Millis(m.now), Inbound::Welcome { heartbeat_ms: 1_000 });
                m.absorb(&mut s)?;
                m.resuming = false;
                for seq in std::mem::take(&mut m.replay) {
                    let topic = m.published[seq as usize - 1].to_string();
                    s.frame(Millis(m.now), Inbound::Event { position: m.pos(seq), topic, payload: seq.to_string() });
                }
                // The server redelivers every message not acknowledged yet.
                let sent: Vec<u8> = m.sent_messages.difference(&m.acked).copied().collect();
                for n in sent {
                    let payload = n.to_string();
                    s.frame(
                        Millis(m.now),
                        Inbound::Message { id: Id::Num(n.into()), from: "bob".into(), broadcast: false, payload },
                    );
                }
                m.settling = false;
                m.absorb(&mut s)?;
                let newest = m.published.len() as u64;
                if !m.subscribed.is_empty() && m.delivered.last().is_some() {
                    let missed = (m.delivered.last().unwrap() + 1..=newest)
                        .filter(|q| m.subscribed.contains(m.published[*q as usize - 1]))
                        .count();
                    prop_assert_eq!(missed, 0, "events published while disconnected were not replayed");
                }
            }
            Step::Answer(n) if m.open => {
                if let Some(id) = m.received.get(n).cloned() {
                    let payload = format!("{id}");
                    s.frame(Millis(m.now), Inbound::Answer { id, position: None, payload });
                }
            }
            Step::Publish(t) => {
                m.published.push(TOPICS[t as usize]);
                let seq = m.published.len() as u64;
                if m.open && m.subscribed.contains(TOPICS[t as usize]) {
                    let topic = TOPICS[t as usize].to_string();
                    s.frame(Millis(m.now), Inbound::Event { position: m.pos(seq), topic, payload: seq.to_string() });
                }
            }
            Step::Duplicate(back) if m.open => {
                let seq = m.published.len().saturating_sub(back as usize);
                if seq > 0 {
                    let topic = m.published[seq - 1].to_string();
                    let payload = seq.to_string();
                    s.frame(Millis(m.now), Inbound::Event { position: m.pos(seq as u64), topic, payload });
                }
            }
            Step::Message(n) if m.open => {
                m.sent_messages.insert(n);
                let payload = n.to_string();
                s.frame(
                    Millis(m.now),
                    Inbound::Message { id: Id::Num(n.into()), from: "bob".into(), broadcast: false, payload },
                );
                let again = m.handed.contains(&n) && !m.owed.iter().any(|(o, _)| *o == n);
                m.absorb(&mut s)?;
                if again {
                    prop_assert!(m.acked.contains(&n), "a redelivery of a handled message not acknowledged");
                }
            }
            Step::Wait(secs) => {
                m.now += u64::from(secs) * 1_000;
                if m.open && s.tick(Millis(m.now)).is_err() {
                    // Dead: the owner closes the socket.
                    let why = Failure::Timeout { after_ms: 0 };
                    s.closed(Millis(m.now), &why, std::iter::empty());
                    m.open = false;
                }
                // The server answers pings at once.
                if m.open {
                    m.absorb(&mut s)?;
                    s.frame(Millis(m.now), Inbound::Other);
                }
            }
            Step::Reset if m.open => {
                m.epoch += 1;
                (m.published, m.delivered, m.position) = (Vec::new(), Vec::new(), Some(0));
                m.resets += 1;
                let reset = Inbound::Reset { position: m.pos(0), payload: text!("reset e", m.epoch) };
                s.frame(Millis(m.now), reset);
            }
            Step::StopStart => {
                s.stop();
                m.absorb(&mut s)?;
                prop_assert!(m.waiting.is_empty(), "every waiting request is refused at a stop");
                prop_assert_eq!(s.state(), SocketState::Stopped);
                s.restart();
                m.open = false;
            }
            _ => {}
        }
        m.absorb(&mut s)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_session_keeps_its_promises_under_drops_duplicates_cancels_resets_and_restarts(steps in prop::collection::vec(step(), 1..80)) {
        run(steps)?;
    }
}
