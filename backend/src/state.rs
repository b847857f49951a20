//! One backend node, composed: the store, the transport, and the domains
//! built on them. The HTTP routes reach everything from here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::activity::Activity;
use crate::agents::Agents;
use crate::auth::Gate;
use crate::config::Config;
use crate::demo::Faults;
use crate::evolution::Evolution;
use crate::llm::LlmProxy;
use crate::metrics::Metrics;
use crate::process::CpuMeter;
use crate::reports::Reports;
use crate::shutdown::Shutdown;
use crate::store::StoreHealth;
use crate::store::members::{ANNOUNCE_EVERY, Member, Members};
use crate::ws::{Connections, Transport};

/// Shared state of one running node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Node>,
}

/// The node's parts.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) config: Config,
    /// This node's name in the cluster (configured, or generated at start).
    pub(crate) node_id: String,
    pub(crate) gate: Arc<Gate>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutdown: Shutdown,
    pub(crate) activity: Arc<Activity>,
    pub(crate) transport: Transport,
    pub(crate) evolution: Arc<Evolution>,
    pub(crate) agents: Arc<Agents>,
    pub(crate) reports: Reports,
    pub(crate) llm: LlmProxy,
    pub(crate) faults: Arc<Faults>,
    pub(crate) store: Arc<dyn StoreHealth>,
    pub(crate) members: Arc<dyn Members>,
    /// This run of the node (random, new at every start).
    pub(crate) incarnation: String,
    /// Where this node listens.
    pub(crate) addr: SocketAddr,
    pub(crate) started_unix_ms: u64,
    pub(crate) cpu: Mutex<CpuMeter>,
    /// One per HTTP request in progress (`limits.max_http_requests`).
    pub(crate) http_permits: Arc<Semaphore>,
    /// One per open dashboard stream (`limits.max_dashboard_streams`).
    pub(crate) dashboard_permits: Arc<Semaphore>,
}

impl AppState {
    /// Opens the configured store and builds a node listening on `local` (its own
    /// origin is always allowed). Err says why the store could not be opened.
    pub async fn open(config: Config, local: SocketAddr) -> Result<Self, String> {
        let node_id = match config.node_id.as_str() {
            "" => format!("node-{}", &crate::clock::random_hex()[..8]),
            id => id.to_owned(),
        };
        let incarnation = crate::clock::random_hex();
        let stores = crate::store::open(&config, &node_id, &incarnation).await?;
        let metrics = Arc::new(Metrics::new());
        let activity = Arc::new(Activity::new());
        let shutdown = Shutdown::new();
        let gate = Arc::new(Gate::new(&config.auth, local));
        let connections =
            Arc::new(Connections::new(config.limits.max_connections, Arc::clone(&metrics), Arc::clone(&activity)));
        let transport = Transport::new(
            config.limits.clone(),
            config.heartbeat.clone(),
            Arc::clone(&gate),
            Arc::clone(&metrics),
            shutdown.clone(),
            connections,
        );
        let faults = Arc::new(Faults::default());
        let demo_faults = config.demo.then(|| Arc::clone(&faults));
        let evolution = Evolution::new(
            stores.events,
            stores.requests,
            Arc::clone(&metrics),
            demo_faults.clone(),
            &config.evolution,
        );
        let node = Node {
            node_id,
            gate,
            shutdown,
            activity,
            transport,
            evolution,
            agents: Arc::new(Agents::new(stores.agents, demo_faults)),
            reports: Reports::new(stores.reports, Arc::clone(&metrics), &config.reports),
            llm: LlmProxy::new(&config.llm),
            faults,
            store: stores.health,
            members: stores.members,
            incarnation,
            addr: local,
            started_unix_ms: crate::clock::unix_ms(),
            cpu: Mutex::new(CpuMeter::new()),
            http_permits: Arc::new(Semaphore::new(config.limits.max_http_requests)),
            dashboard_permits: Arc::new(Semaphore::new(config.limits.max_dashboard_streams)),
            metrics,
            config,
        };
        Ok(Self { inner: Arc::new(node) })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Time since the node started.
    pub fn uptime(&self) -> Duration {
        self.inner.activity.uptime()
    }

    /// Records activity (an HTTP request, an open dashboard).
    pub(crate) fn touch(&self) {
        self.inner.activity.touch();
    }

    /// What this node says of itself to the cluster.
    pub(crate) async fn member(&self) -> Member {
        let node = &self.inner;
        let store = node.store.status();
        let bridges = node.reports.list().await.map_or(0, |l| l.iter().filter(|b| b.node == node.node_id).count());
        Member {
            id: node.node_id.clone(),
            incarnation: node.incarnation.clone(),
            version: bridge_core::VERSION.into(),
            store: store.kind.into(),
            addr: node.addr.to_string(),
            started_unix_ms: node.started_unix_ms,
            unix_ms: crate::clock::unix_ms(),
            ready: store.problem.is_none() && !node.shutdown.is_triggered(),
            problem: store.problem,
            evolution_connections: u64::try_from(node.metrics.open_connections("evolution")).unwrap_or(0),
            agents_connections: u64::try_from(node.metrics.open_connections("agents")).unwrap_or(0),
            bridges: bridges as u64,
        }
    }

    /// Announces this node to the cluster now and every [`ANNOUNCE_EVERY`], until shutdown.
    pub(crate) fn announce_forever(&self) {
        let state = self.clone();
        let mut stop = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(ANNOUNCE_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => state.inner.members.announce(state.member().await),
                    () = crate::shutdown::signalled(&mut stop) => {
                        // Say "not ready" at once, rather than going quiet until shown down.
                        state.inner.members.announce(state.member().await);
                        return;
                    }
                }
            }
        });
    }

    /// Time since the last activity, or zero while any connection is open.
    pub(crate) fn idle_for(&self) -> Duration {
        if self.inner.transport.connections().open() > 0 {
            return Duration::ZERO;
        }
        self.inner.activity.since_last()
    }
}
