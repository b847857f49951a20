//! `GET /api/dashboard/stream`: the dashboard's live data, as Server-Sent Events.
//!
//! - `snapshot` (first, and again whenever this client fell behind): every bridge's
//!   latest report and its history, and the backend's status;
//! - `report`: a bridge reported (`{bridge, point}`);
//! - `gone`: a bridge was forgotten (`{bridgeId}`);
//! - `status`: the backend's `/status`, every second.
//!
//! A dashboard that disconnects reconnects by itself (EventSource does) and gets a
//! fresh snapshot: it catches up without asking. Everything is bounded: the
//! history per bridge, the number of bridges, and the change buffer (a client too
//! far behind is sent a snapshot instead of the backlog).

use std::convert::Infallible;
use std::time::Duration;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::reports::Change;

async fn snapshot(state: &AppState) -> Event {
    let reports = &state.inner.reports;
    let bridges = reports.list().await.unwrap_or_default();
    let histories = reports.histories().await.unwrap_or_default();
    let history: serde_json::Map<String, serde_json::Value> =
        histories.into_iter().map(|(id, points)| (id, json!(points))).collect();
    let body = json!({
        "bridges": bridges,
        "history": history,
        "staleAfterMs": state.config().reports.stale_after_ms,
        "status": super::status::snapshot(state).await,
    });
    Event::default().event("snapshot").data(body.to_string())
}

async fn status(state: &AppState) -> Event {
    Event::default().event("status").data(super::status::snapshot(state).await.to_string())
}

enum Next {
    Change(Result<Change, RecvError>),
    Tick,
}

/// The stream handler. At most `limits.max_dashboard_streams` at once: each holds a permit until it ends.
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Ok(permit) = Arc::clone(&state.inner.dashboard_permits).try_acquire_owned() else {
        state.inner.metrics.http_rejected("overloaded");
        let max = state.config().limits.max_dashboard_streams;
        let message = format!("{max} dashboard streams are open, the most this server serves; retry later");
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_streams", message).retry_after(5));
    };
    let changes = state.inner.reports.watch();
    let first = snapshot(&state).await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = state.inner.shutdown.subscribe();
    let init = (state, changes, tick, Some(first));
    let events = futures_util::stream::unfold(init, move |(state, mut changes, mut tick, pending)| {
        let stop = shutdown.clone();
        async move {
            if let Some(e) = pending {
                return Some((Ok(e), (state, changes, tick, None)));
            }
            let mut stop = stop;
            let next = tokio::select! {
                c = changes.recv() => Next::Change(c),
                _ = tick.tick() => Next::Tick,
                () = crate::shutdown::signalled(&mut stop) => return None,
            };
            let event = match next {
                Next::Tick => {
                    // An open dashboard is someone watching: it keeps the idle timeout away.
                    state.touch();
                    status(&state).await
                }
                Next::Change(Ok(Change::Report(bridge, point))) => {
                    Event::default().event("report").data(json!({"bridge": bridge, "point": point}).to_string())
                }
                Next::Change(Ok(Change::Gone(id))) => {
                    Event::default().event("gone").data(json!({"bridgeId": id}).to_string())
                }
                // Fell behind: start over from a snapshot rather than replaying the backlog.
                Next::Change(Err(RecvError::Lagged(_))) => snapshot(&state).await,
                Next::Change(Err(RecvError::Closed)) => return None,
            };
            Some((Ok(event), (state, changes, tick, None)))
        }
    });
    // The stream owns the permit: it is given back when the dashboard goes away.
    let events = events.map(move |e| {
        let _held = &permit;
        e
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
