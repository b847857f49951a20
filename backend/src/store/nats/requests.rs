//! Evolution requests between nodes over core NATS request/reply. A node with
//! a live handler for an action holds a queue subscription on the action's
//! subject (one queue group for all nodes, so each request reaches exactly one
//! node); a node with none asks that subject and waits for the one reply. No
//! subscriber at all is NATS's "no responders", which is `no_handler`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use axum::body::Bytes;
use bridge_core::protocol::{ErrorCode, Json};
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, ready};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::health::NatsHealth;
use crate::store::requests::{Answer, RemoteRequest, RequestBus};
use crate::sync::lock;

/// The queue group every node's handler subscriptions join.
const QUEUE: &str = "handlers";
/// Requests from other nodes waiting to be routed here; more are answered `no_handler` at once.
const INCOMING_QUEUE: usize = 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Asked {
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<Json>,
    timeout_ms: u64,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct NatsBus {
    client: async_nats::Client,
    prefix: String,
    health: Arc<NatsHealth>,
    /// One subscription task per action this node handles.
    serving: Mutex<HashMap<String, JoinHandle<()>>>,
    to_domain: mpsc::Sender<RemoteRequest>,
    from_nodes: Mutex<Option<mpsc::Receiver<RemoteRequest>>>,
}

impl NatsBus {
    pub(super) fn new(client: async_nats::Client, prefix: &str, health: Arc<NatsHealth>) -> Self {
        let (to_domain, from_nodes) = mpsc::channel(INCOMING_QUEUE);
        Self {
            client,
            prefix: prefix.to_owned(),
            health,
            serving: Mutex::new(HashMap::new()),
            to_domain,
            from_nodes: Mutex::new(Some(from_nodes)),
        }
    }

    /// The subject of `action` (hex, so any action name is a valid single token).
    fn subject(&self, action: &str) -> String {
        let hex: String = action.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}.requests.{hex}", self.prefix)
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        for (_, task) in lock(&self.serving).drain() {
            task.abort();
        }
    }
}

/// Serves one action's subscription: each request goes to the domain, its answer back to the asker.
async fn serve(
    mut subscription: async_nats::Subscriber,
    to_domain: mpsc::Sender<RemoteRequest>,
    client: async_nats::Client,
) {
    while let Some(message) = subscription.next().await {
        let Some(reply_to) = message.reply.clone() else { continue };
        let answer = match serde_json::from_slice::<Asked>(&message.payload) {
            Err(e) => {
                let message = format!("a request from another node could not be read: {e}");
                ready(Answer::Failed { code: ErrorCode::Internal, message }).boxed()
            }
            Ok(asked) => {
                let (reply, answered) = oneshot::channel();
                let action = asked.action.clone();
                let req = RemoteRequest {
                    action: asked.action,
                    params: asked.params,
                    timeout: Duration::from_millis(asked.timeout_ms),
                    reply,
                };
                match to_domain.try_send(req) {
                    Ok(()) => async move {
                        answered.await.unwrap_or_else(|_| Answer::Failed {
                            code: ErrorCode::NoHandler,
                            message: format!("the handler of \"{action}\" left before answering"),
                        })
                    }
                    .boxed(),
                    Err(_) => {
                        let message = format!("the node serving \"{action}\" has too many requests waiting");
                        ready(Answer::Failed { code: ErrorCode::NoHandler, message }).boxed()
                    }
                }
            }
        };
        let client = client.clone();
        tokio::spawn(async move {
            let answer = answer.await;
            let body = Bytes::from(serde_json::to_vec(&answer).expect("answers serialize"));
            if let Err(e) = client.publish(reply_to, body).await {
                tracing::debug!(error = %e, "could not send an answer to another node");
            }
        });
    }
}

impl RequestBus for NatsBus {
    fn reaches_other_nodes(&self) -> bool {
        true
    }

    fn advertise(&self, action: &str) -> BoxFuture<'static, ()> {
        let (client, subject, to_domain) = (self.client.clone(), self.subject(action), self.to_domain.clone());
        let action = action.to_owned();
        let (started, subscribed) = oneshot::channel();
        let task = tokio::spawn(async move {
            let subscription = match client.queue_subscribe(subject, QUEUE.to_owned()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take requests from other nodes");
                    let _ = started.send(());
                    return;
                }
            };
            // Make sure the server has the subscription before the handler is told it handles:
            // it takes a connection's commands in order, so once a message of ours comes back
            // through it, the subscription above is in place. (A flush only empties our buffer.)
            let inbox = client.new_inbox();
            if let Ok(mut echo) = client.subscribe(inbox.clone()).await
                && client.publish(inbox, Bytes::new()).await.is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(5), echo.next()).await;
            }
            let _ = started.send(());
            serve(subscription, to_domain, client).await;
        });
        if let Some(old) = lock(&self.serving).insert(action, task) {
            old.abort();
        }
        async move {
            let _ = subscribed.await;
        }
        .boxed()
    }

    fn withdraw(&self, action: &str) {
        if let Some(task) = lock(&self.serving).remove(action) {
            task.abort();
        }
    }

    fn forward(&self, action: &str, params: Option<&Json>, timeout: Duration) -> BoxFuture<'static, Answer> {
        if let Some(why) = self.health.unreachable() {
            return ready(Answer::Failed { code: ErrorCode::Unavailable, message: why }).boxed();
        }
        let asked = Asked {
            action: action.to_owned(),
            params: params.cloned(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let body = Bytes::from(serde_json::to_vec(&asked).expect("requests serialize"));
        let (client, subject, action) = (self.client.clone(), self.subject(action), action.to_owned());
        async move {
            let request = async_nats::Request::new().payload(body).timeout(Some(timeout));
            match client.send_request(subject, request).await {
                Ok(reply) => serde_json::from_slice(&reply.payload).unwrap_or_else(|e| Answer::Failed {
                    code: ErrorCode::Internal,
                    message: format!("the answer from another node could not be read: {e}"),
                }),
                Err(e) => match e.kind() {
                    RequestErrorKind::NoResponders => Answer::Failed {
                        code: ErrorCode::NoHandler,
                        message: format!("no live handler for action \"{action}\" on any node"),
                    },
                    RequestErrorKind::TimedOut => Answer::Failed {
                        code: ErrorCode::Timeout,
                        message: "the handler did not answer in time; it may still act on the request".into(),
                    },
                    _ => Answer::Failed {
                        code: ErrorCode::Unavailable,
                        message: format!("the request could not be sent to other nodes: {e}"),
                    },
                },
            }
        }
        .boxed()
    }

    fn incoming(&self) -> Option<mpsc::Receiver<RemoteRequest>> {
        lock(&self.from_nodes).take()
    }
}
