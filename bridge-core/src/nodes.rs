//! The backend nodes a bridge may talk to, and which one it talks to now.
//!
//! A page names one URL (a single node, or a load balancer) or several (the
//! nodes of a cluster). Every node has a breaker of its own: a connection to a
//! node that fails or dies opens it, so the bridge moves on to the next node
//! whose breaker admits calls, in the page's order, wrapping around; when
//! every breaker is open it picks the one that half-opens first. Its sockets,
//! health checks, reports, and fetch and LLM calls to the backend all follow
//! the current node. Sans-I/O: the caller says what happened and when.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::{BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker};
use crate::text;
use crate::time::Millis;

/// How a node's breaker behaves unless the page configures `breakers.node`:
/// one failure opens it (a dead node fails every attempt; there is no point in
/// five), and it half-opens after 5 s so a node that came back is used again.
pub const NODE_BREAKER: BreakerConfig = BreakerConfig {
    failure_threshold: 1,
    reset_timeout: Duration::from_secs(5),
    half_open_max_calls: 1,
    success_threshold: 1,
    failure_rate: None,
};

/// The name of the breaker settings for nodes (`config.breakers.node`).
pub const NODE_BREAKER_NAME: &str = "node";

/// One node as `state()` and reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSnapshot {
    /// `http(s)://host:port`, as the page listed it.
    pub url: String,
    /// The bridge talks to this node now.
    pub current: bool,
    /// Its breaker (`node:<url>`).
    pub breaker: BreakerSnapshot,
}

/// A move from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    /// The node left.
    pub from: String,
    /// The node talked to from now on.
    pub to: String,
}

crate::json_object!(NodeSnapshot, |s| "url": s.url, "current": s.current, "breaker": s.breaker);

crate::json_object!(Moved, |s| "from": s.from, "to": s.to);

#[derive(Debug, Clone)]
struct Node {
    url: String,
    breaker: CircuitBreaker,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Nodes {
    nodes: Vec<Node>,
    current: usize,
    moves: u64,
}

impl Nodes {
    /// `urls` in the page's order (at least one; the first is used first).
    pub fn new(urls: &[String], breaker: BreakerConfig, now: Millis) -> Self {
        let nodes = urls
            .iter()
            .map(|url| Node { url: url.clone(), breaker: CircuitBreaker::new(text!("node:", url), breaker, now) })
            .collect();
        Self { nodes, current: 0, moves: 0 }
    }

    /// The node to talk to now.
    pub fn current(&self) -> &str {
        self.nodes.get(self.current).map_or("", |n| n.url.as_str())
    }

    /// Every node's URL, in the page's order.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.url.as_str())
    }

    /// How many times the bridge moved to another node.
    pub fn moves(&self) -> u64 {
        self.moves
    }

    /// A connection to `url` succeeded.
    pub fn succeeded(&mut self, url: &str, now: Millis) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.url == url)
            && let Ok(permit) = n.breaker.try_acquire(now)
        {
            n.breaker.on_success(permit, now);
        }
    }

    /// A connection to `url` failed or died. It counts against that node; if
    /// that is the current node, the bridge moves to the next one that admits
    /// calls. Several sockets may report the same dead node: only the first
    /// report moves (the others find it is no longer current).
    pub fn failed(&mut self, url: &str, now: Millis) -> Option<Moved> {
        let i = self.nodes.iter().position(|n| n.url == url)?;
        let breaker = &mut self.nodes[i].breaker;
        if let Ok(permit) = breaker.try_acquire(now) {
            breaker.on_failure(permit, now);
        }
        if i != self.current || self.nodes.len() == 1 {
            return None;
        }
        let count = self.nodes.len();
        let admits = |n: &mut Node| matches!(n.breaker.state(now), BreakerState::Closed | BreakerState::HalfOpen);
        let next = (1..count)
            .map(|step| (i + step) % count)
            .find(|&j| admits(&mut self.nodes[j]))
            .unwrap_or_else(|| self.soonest_back(i, now));
        if next == i {
            return None;
        }
        self.current = next;
        self.moves += 1;
        Some(Moved { from: url.to_owned(), to: self.nodes[next].url.clone() })
    }

    /// With every breaker open: the node (other than `except`) whose breaker half-opens first.
    fn soonest_back(&mut self, except: usize, now: Millis) -> usize {
        let mut best = (except, u64::MAX);
        for (j, n) in self.nodes.iter_mut().enumerate().filter(|(j, _)| *j != except) {
            let wait = match n.breaker.try_acquire(now) {
                Ok(_) => 0, // (cannot happen: it did not admit a moment ago)
                Err(r) => r.retry_in(now).map_or(u64::MAX - 1, |d| d.as_millis() as u64),
            };
            if wait < best.1 {
                best = (j, wait);
            }
        }
        best.0
    }

    /// Every node, in the page's order.
    pub fn snapshot(&mut self, now: Millis, max_transitions: usize) -> Vec<NodeSnapshot> {
        let current = self.current;
        self.nodes
            .iter_mut()
            .enumerate()
            .map(|(i, n)| NodeSnapshot {
                url: n.url.clone(),
                current: i == current,
                breaker: n.breaker.snapshot(now, max_transitions),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://node{i}")).collect()
    }

    fn at(ms: u64) -> Millis {
        Millis(ms)
    }

    #[test]
    fn a_failed_node_moves_the_bridge_to_the_next_one_in_order() {
        let mut n = Nodes::new(&urls(3), NODE_BREAKER, at(0));
        assert_eq!(n.current(), "http://node0");
        let moved = n.failed("http://node0", at(10)).unwrap();
        assert_eq!((moved.from.as_str(), moved.to.as_str()), ("http://node0", "http://node1"));
        assert_eq!(n.current(), "http://node1");
        assert_eq!(n.moves(), 1);
    }

    #[test]
    fn a_second_report_of_the_same_dead_node_does_not_move_again() {
        let mut n = Nodes::new(&urls(3), NODE_BREAKER, at(0));
        n.failed("http://node0", at(10));
        assert_eq!(n.failed("http://node0", at(11)), None, "the agents socket saw node0 die too");
        assert_eq!(n.current(), "http://node1");
    }

    #[test]
    fn open_breakers_are_skipped_and_a_node_that_came_back_is_used_again() {
        let mut n = Nodes::new(&urls(3), NODE_BREAKER, at(0));
        n.failed("http://node0", at(0)); // -> node1, node0 open until 5 s
        n.failed("http://node1", at(100)); // -> node2 (node0 still open)
        assert_eq!(n.current(), "http://node2");
        n.failed("http://node2", at(6_000)); // node0 half-opened at 5 s: admitted again
        assert_eq!(n.current(), "http://node0");
        n.succeeded("http://node0", at(6_010));
        let snap = n.snapshot(at(6_020), 0);
        assert_eq!(snap[0].breaker.state, BreakerState::Closed);
        assert!(snap[0].current);
    }

    #[test]
    fn with_every_breaker_open_the_node_back_soonest_is_next() {
        let mut n = Nodes::new(&urls(3), NODE_BREAKER, at(0));
        n.failed("http://node0", at(0)); // -> node1; node0 back at 5,000
        n.failed("http://node1", at(1_000)); // -> node2; node1 back at 6,000
        n.failed("http://node2", at(2_000)); // all open: node0 half-opens first
        assert_eq!(n.current(), "http://node0");
    }

    #[test]
    fn one_node_never_moves() {
        let mut n = Nodes::new(&urls(1), NODE_BREAKER, at(0));
        assert_eq!(n.failed("http://node0", at(0)), None);
        assert_eq!(n.current(), "http://node0");
        assert_eq!(n.failed("http://elsewhere", at(0)), None, "an unknown URL changes nothing");
    }
}
