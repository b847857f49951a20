//! What the HTTP bodies must look like, checked without a server: the publish
//! body and the bridge report. Public so fuzzers (and other tools) can throw
//! anything at the very checks the routes use.

use bridge_core::protocol::{Json, rules};
use bridge_core::report::BridgeReport;
use serde::Deserialize;
use serde_json::Value;

/// A checked `POST /api/evolution/publish` body.
#[derive(Debug)]
pub struct PublishBody {
    /// A valid topic name.
    pub topic: String,
    /// Any JSON.
    pub data: Json,
}

#[derive(Deserialize)]
struct RawPublish {
    topic: String,
    data: Json,
}

/// Checks a publish body: UTF-8 JSON `{"topic", "data"}` with a valid topic. Err says what is wrong.
pub fn publish_body(body: &[u8]) -> Result<PublishBody, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body must be UTF-8 JSON".to_owned())?;
    let raw: RawPublish = serde_json::from_str(text)
        .map_err(|e| format!("the body must be {{\"topic\": string, \"data\": any JSON}}: {e}"))?;
    rules::check_topic(&raw.topic)?;
    Ok(PublishBody { topic: raw.topic, data: raw.data })
}

/// Checks the report `body` of bridge `id`; returns it typed, and as the JSON value that is stored.
pub fn report(id: &str, body: &[u8]) -> Result<(BridgeReport, Value), String> {
    rules::check_agent(id).map_err(|m| m.replace("agent name", "bridge id"))?;
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the report is not valid JSON: {e}"))?;
    let report: BridgeReport = serde_json::from_value(value.clone())
        .map_err(|e| format!("the report does not match the report format: {e}"))?;
    if report.bridge_id != id {
        return Err(format!("the report's bridgeId \"{}\" does not match the URL's \"{id}\"", report.bridge_id));
    }
    if report.instance.is_empty() || report.instance.len() > rules::MAX_ID_BYTES {
        return Err(format!("instance must be 1 to {} bytes", rules::MAX_ID_BYTES));
    }
    Ok((report, value))
}
