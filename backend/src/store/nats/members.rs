//! The cluster's nodes in a JetStream key-value bucket: each node puts its
//! summary under its id every [`ANNOUNCE_EVERY`], and watches the bucket into a
//! local map (entries age out of the bucket after a minute; a node silent for
//! [`DOWN_AFTER`] is shown down, and forgotten after ten minutes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::context::Context;
use async_nats::jetstream::kv;
use axum::body::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::config::Config;
use crate::store::members::{DOWN_AFTER, Member, Members, Seen};
use crate::sync::lock;

const FORGET_AFTER: Duration = Duration::from_secs(600);

/// See the module docs.
#[derive(Debug)]
pub(super) struct NatsMembers {
    bucket: kv::Store,
    me: String,
    incarnation: String,
    known: Arc<Mutex<HashMap<String, (Member, Instant)>>>,
}

/// Opens (or creates) bucket `name` with `config`; another node may create it first.
pub(super) async fn bucket(js: &Context, config: kv::Config) -> Result<kv::Store, String> {
    let name = config.bucket.clone();
    match js.get_key_value(&name).await {
        Ok(b) => Ok(b),
        Err(_) => match js.create_key_value(config).await {
            Ok(b) => Ok(b),
            Err(e) => js.get_key_value(&name).await.map_err(|_| format!("the bucket {name} cannot be opened: {e}")),
        },
    }
}

/// Waits (2 s at most) until a mirror of `bucket` holds what it held at start.
pub(super) async fn loaded(bucket: &kv::Store, held: impl Fn() -> usize) {
    let initial = bucket.status().await.map_or(0, |s| s.values()) as usize;
    let deadline = Instant::now() + Duration::from_secs(2);
    while held() < initial && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl NatsMembers {
    pub(super) async fn start(js: &Context, config: &Config, me: &str, incarnation: &str) -> Result<Self, String> {
        let bucket = bucket(
            js,
            kv::Config {
                bucket: format!("{}_NODES", config.nats.stream),
                description: "bridge-backend: the nodes of the cluster".into(),
                history: 1,
                max_age: Duration::from_secs(60),
                num_replicas: config.nats.replicas,
                ..Default::default()
            },
        )
        .await?;
        let known: Arc<Mutex<HashMap<String, (Member, Instant)>>> = Arc::default();
        let (watching, mirror) = (bucket.clone(), Arc::clone(&known));
        tokio::spawn(async move {
            loop {
                if let Ok(mut entries) = watching.watch_with_history(">").await {
                    while let Some(Ok(entry)) = entries.next().await {
                        if entry.operation != kv::Operation::Put {
                            lock(&mirror).remove(&entry.key);
                        } else if let Ok(m) = serde_json::from_slice::<Member>(&entry.value) {
                            // Heard now, but said when it says: an old announcement does not look fresh.
                            let age = Duration::from_millis(crate::clock::unix_ms().saturating_sub(m.unix_ms));
                            let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                            lock(&mirror).insert(entry.key, (m, at));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        // Know the other nodes before taking names for agents.
        loaded(&bucket, || lock(&known).len()).await;
        Ok(Self { bucket, me: me.to_owned(), incarnation: incarnation.to_owned(), known })
    }
}

impl Members for NatsMembers {
    fn announce(&self, me: Member) {
        let value = Bytes::from(serde_json::to_vec(&me).expect("members serialize"));
        // Seen here at once, whatever NATS does.
        lock(&self.known).insert(me.id.clone(), (me, Instant::now()));
        let (bucket, key) = (self.bucket.clone(), self.me.clone());
        tokio::spawn(async move {
            if let Err(e) = bucket.put(key, value).await {
                tracing::debug!(error = %e, "could not announce this node");
            }
        });
    }

    fn list(&self) -> Vec<Seen> {
        let mut known = lock(&self.known);
        known.retain(|_, (_, at)| at.elapsed() < FORGET_AFTER);
        let mut v: Vec<Seen> = known
            .values()
            .map(|(m, at)| Seen {
                member: m.clone(),
                up: m.id == self.me || at.elapsed() < DOWN_AFTER,
                last_heard_ms_ago: at.elapsed().as_millis() as u64,
            })
            .collect();
        v.sort_by(|a, b| a.member.id.cmp(&b.member.id));
        v
    }

    fn is_up(&self, id: &str, incarnation: &str) -> bool {
        if id == self.me {
            return incarnation == self.incarnation;
        }
        lock(&self.known).get(id).is_some_and(|(m, at)| m.incarnation == incarnation && at.elapsed() < DOWN_AFTER)
    }
}
