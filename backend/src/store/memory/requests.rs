//! One node: no other node to ask, nobody asking.

use std::time::Duration;

use bridge_core::protocol::{ErrorCode, Json};
use futures_util::future::{BoxFuture, FutureExt, ready};
use tokio::sync::mpsc;

use crate::store::requests::{Answer, RemoteRequest, RequestBus};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct OneNode;

impl RequestBus for OneNode {
    fn reaches_other_nodes(&self) -> bool {
        false
    }

    fn advertise(&self, _: &str) -> BoxFuture<'static, ()> {
        ready(()).boxed()
    }

    fn withdraw(&self, _: &str) {}

    fn forward(&self, action: &str, _: Option<&Json>, _: Duration) -> BoxFuture<'static, Answer> {
        let message = format!("no live handler for action \"{action}\"");
        ready(Answer::Failed { code: ErrorCode::NoHandler, message }).boxed()
    }

    fn incoming(&self) -> Option<mpsc::Receiver<RemoteRequest>> {
        None
    }
}
