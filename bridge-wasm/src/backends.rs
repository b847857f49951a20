//! The backend node the bridge talks to now, shared by the sockets, the
//! health checks, the reporter, the LLM proxy and `fetch` (see
//! `bridge_core::nodes`). A move to another node is told to the page as a
//! `node` event.

use std::cell::RefCell;
use std::rc::Rc;

use bridge_core::nodes::{NODE_BREAKER, NODE_BREAKER_NAME, NodeSnapshot, Nodes};
use bridge_core::retry::Failure;

use crate::config::Config;
use crate::events::Events;
use crate::platform::{self, Signal};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Backends {
    nodes: RefCell<Nodes>,
    events: Rc<Events>,
    changed: Signal,
}

impl Backends {
    pub(crate) fn new(config: &Config, events: Rc<Events>, changed: Signal) -> Rc<Self> {
        let breaker = config.breakers.get(NODE_BREAKER_NAME).copied().unwrap_or(NODE_BREAKER);
        Rc::new(Self {
            nodes: RefCell::new(Nodes::new(&config.backend_urls, breaker, platform::now())),
            events,
            changed,
        })
    }

    /// `http(s)://host:port` of the node to talk to now.
    pub(crate) fn url(&self) -> String {
        self.nodes.borrow().current().to_owned()
    }

    /// A URL on one of the nodes, moved to the current node (others are kept as they are).
    pub(crate) fn follow(&self, url: &str) -> String {
        let nodes = self.nodes.borrow();
        let current = nodes.current();
        for node in nodes.urls() {
            if let Some(rest) = url.strip_prefix(node)
                && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            {
                return format!("{current}{rest}");
            }
        }
        url.to_owned()
    }

    /// A connection to `node` succeeded.
    pub(crate) fn succeeded(&self, node: &str) {
        self.nodes.borrow_mut().succeeded(node, platform::now());
    }

    /// A connection to `node` failed with `failure`: if the node did not answer at
    /// all, it counts against the node, and the bridge may move to another one.
    pub(crate) fn failed(&self, node: &str, failure: &Failure) {
        if !unreachable(failure) {
            return; // The node answered (a refusal, an error): it is alive.
        }
        let moved = self.nodes.borrow_mut().failed(node, platform::now());
        if let Some(moved) = moved {
            self.changed.notify();
            if let Ok(detail) = crate::js::to_js(&moved) {
                self.events.emit("node", &detail);
            }
        }
    }

    pub(crate) fn snapshot(&self, max_transitions: usize) -> Vec<NodeSnapshot> {
        self.nodes.borrow_mut().snapshot(platform::now(), max_transitions)
    }
}

/// Whether `failure` says the node cannot serve us: it did not answer, dropped
/// the connection, is shutting down or is full. (A node that refuses a
/// handshake for now, `too_many_handshakes`, gave a turn to come back at.)
fn unreachable(failure: &Failure) -> bool {
    match failure {
        Failure::Network { .. } | Failure::Timeout { .. } => true,
        Failure::SocketClosed { .. } => failure.is_transient(),
        Failure::Server { code, .. } => code == "shutting_down" || code == "too_many_connections",
        _ => false,
    }
}
