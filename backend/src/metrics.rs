//! Prometheus metrics (prometheus-client: one registry per server, no
//! globals, so tests can run many servers in one process).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SocketLabel {
    socket: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrameLabels {
    socket: &'static str,
    frame_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    connections: Family<SocketLabel, Gauge>,
    connections_total: Family<SocketLabel, Counter>,
    frames_in: Family<FrameLabels, Counter>,
    frames_out: Family<FrameLabels, Counter>,
    errors: Family<CodeLabel, Counter>,
    drops: Family<ReasonLabel, Counter>,
    rejected: Family<ReasonLabel, Counter>,
    http_rejected: Family<ReasonLabel, Counter>,
    published: Counter,
    duplicates: Counter,
    deliver_latency: Histogram,
    reports: Counter,
    node: Family<NodeLabels, Gauge>,
    store_up: Gauge,
    totals: [AtomicU64; 3],
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("bridge");
        let m = Self {
            connections: Family::default(),
            connections_total: Family::default(),
            frames_in: Family::default(),
            frames_out: Family::default(),
            errors: Family::default(),
            drops: Family::default(),
            rejected: Family::default(),
            http_rejected: Family::default(),
            published: Counter::default(),
            duplicates: Counter::default(),
            // 0.1 ms .. ~3.3 s
            deliver_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            reports: Counter::default(),
            node: Family::default(),
            store_up: Gauge::default(),
            totals: Default::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Open WebSocket connections", m.connections.clone());
        registry.register("connections_opened", "WebSocket connections accepted", m.connections_total.clone());
        registry.register("frames_received", "Frames received, by socket and type", m.frames_in.clone());
        registry.register("frames_sent", "Frames sent, by socket and type", m.frames_out.clone());
        registry.register("errors", "Error frames sent, by code", m.errors.clone());
        registry.register(
            "queue_drops",
            "Connections closed because they could not keep up, or messages refused because a queue was full",
            m.drops.clone(),
        );
        registry.register("upgrades_rejected", "WebSocket upgrades refused, by reason", m.rejected.clone());
        registry.register(
            "http_rejected",
            "HTTP requests refused before their handler, by reason (host, origin, media_type, overloaded)",
            m.http_rejected.clone(),
        );
        registry.register("events_published", "Events published (duplicates excluded)", m.published.clone());
        registry.register("publish_duplicates", "Publishes recognised as duplicates", m.duplicates.clone());
        registry.register(
            "publish_deliver_latency_seconds",
            "Time from publish to writing the event to a subscriber (oldest event of each written batch)",
            m.deliver_latency.clone(),
        );
        registry.register("reports", "Bridge reports accepted", m.reports.clone());
        registry.register("node", "This node: its id and store (always 1)", m.node.clone());
        registry.register("store_up", "1 while the store (NATS in cluster mode) can be reached", m.store_up.clone());
        Self { registry, ..m }
    }

    pub(crate) fn connection_opened(&self, socket: &'static str) {
        self.connections.get_or_create(&SocketLabel { socket }).inc();
        self.connections_total.get_or_create(&SocketLabel { socket }).inc();
    }

    pub(crate) fn connection_closed(&self, socket: &'static str) {
        self.connections.get_or_create(&SocketLabel { socket }).dec();
    }

    pub(crate) fn open_connections(&self, socket: &'static str) -> i64 {
        self.connections.get_or_create(&SocketLabel { socket }).get()
    }

    pub(crate) fn frame_in(&self, socket: &'static str, frame_type: &'static str) {
        self.frames_in.get_or_create(&FrameLabels { socket, frame_type }).inc();
        self.totals[0].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn frames_out(&self, socket: &'static str, frame_type: &'static str, n: u64) {
        self.frames_out.get_or_create(&FrameLabels { socket, frame_type }).inc_by(n);
        self.totals[1].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, code: &str) {
        self.errors.get_or_create(&CodeLabel { code: code.to_owned() }).inc();
        self.totals[2].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, reason: &'static str) {
        self.drops.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn http_rejected(&self, reason: &'static str) {
        self.http_rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn published(&self, duplicate: bool) {
        if duplicate {
            self.duplicates.inc()
        } else {
            self.published.inc()
        };
    }

    pub(crate) fn delivered(&self, latency_secs: f64) {
        self.deliver_latency.observe(latency_secs);
    }

    /// Names the node and its store (the `bridge_node` labels).
    pub(crate) fn node(&self, node: &str, store: &'static str) {
        self.node.get_or_create(&NodeLabels { node: node.to_owned(), store }).set(1);
    }

    pub(crate) fn store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    pub(crate) fn report(&self) {
        self.reports.inc();
    }

    /// Totals for `/status`: (events published, frames received, frames sent, error frames).
    pub(crate) fn totals(&self) -> (u64, u64, u64, u64) {
        let t = |i: usize| self.totals[i].load(Ordering::Relaxed);
        (self.published.get(), t(0), t(1), t(2))
    }

    /// The Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
