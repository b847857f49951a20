//! Wire-level limits and name rules of contract v1: fixed by the protocol,
//! the same on every server. Per-connection counts are server settings.

use crate::text;

/// Longest string id, bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest topic or action name, bytes.
pub const MAX_TOPIC_BYTES: usize = 128;
/// Most topics in one `subscribe`/`unsubscribe`, or actions in one `handle`.
pub const MAX_NAMES_PER_FRAME: usize = 64;
/// Longest agent name, bytes.
pub const MAX_AGENT_BYTES: usize = 64;
/// Most capabilities per agent.
pub const MAX_CAPABILITIES: usize = 32;
/// Longest `message_type` or capability, bytes.
pub const MAX_LABEL_BYTES: usize = 64;
/// Longest `client` in hello, bytes.
pub const MAX_CLIENT_BYTES: usize = 128;
/// Longest token, bytes.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Deepest nesting of arrays and objects in a frame, the frame itself included.
pub const MAX_DEPTH: usize = 64;
/// Longest epoch, bytes.
pub const MAX_EPOCH_BYTES: usize = 64;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/')
}

/// A topic or action name: 1..=128 bytes of `A-Z a-z 0-9 . _ - : /`.
pub fn check_topic(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_TOPIC_BYTES || !name.chars().all(is_name_char) {
        return Err(text!(
            "\"",
            clip(name),
            "\" is not a valid name: use 1 to ",
            MAX_TOPIC_BYTES,
            " of A-Z a-z 0-9 . _ - : /"
        ));
    }
    Ok(())
}

/// A subscription pattern: a topic name, `*` (everything) or `prefix.*`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => check_topic(prefix),
        None => check_topic(pattern),
    }
}

/// Whether `topic` matches subscription `pattern`.
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        // "prefix.*" matches "prefix.anything" (the dot is kept in the prefix).
        Some(prefix) => topic.len() > prefix.len() && topic.starts_with(prefix),
        None => pattern == topic,
    }
}

/// An agent name: 1..=64 bytes of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_agent(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_AGENT_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(text!(
            "\"",
            clip(name),
            "\" is not a valid agent name: use 1 to ",
            MAX_AGENT_BYTES,
            " of A-Z a-z 0-9 . _ -, starting with a letter or digit"
        ));
    }
    Ok(())
}

/// A `message_type` or capability: 1..=64 bytes of name characters.
pub fn check_label(what: &str, label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > MAX_LABEL_BYTES || !label.chars().all(is_name_char) {
        return Err(text!(what, " \"", clip(label), "\" must be 1 to ", MAX_LABEL_BYTES, " of A-Z a-z 0-9 . _ - : /"));
    }
    Ok(())
}

/// Shortens `s` for an error message.
pub(crate) fn clip(s: &str) -> String {
    crate::metrics::truncate(s, 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_patterns() {
        assert!(check_topic("bridge.health").is_ok());
        assert!(check_topic("a/b:c-d_e").is_ok());
        for bad in ["", "has space", "é", "*", &"x".repeat(129)] {
            assert!(check_topic(bad).is_err(), "{bad}");
        }
        assert!(check_pattern("*").is_ok());
        assert!(check_pattern("bridge.*").is_ok());
        assert!(check_pattern("bri*").is_err());
        assert!(pattern_matches("*", "x"));
        assert!(pattern_matches("bridge.*", "bridge.health"));
        assert!(!pattern_matches("bridge.*", "bridge."));
        assert!(!pattern_matches("bridge.*", "bridgeX"));
        assert!(pattern_matches("a", "a"));
        assert!(!pattern_matches("a", "ab"));
    }

    #[test]
    fn agent_names() {
        assert!(check_agent("planner-1").is_ok());
        for bad in ["", "-lead", "a b", "a/b", &"a".repeat(65)] {
            assert!(check_agent(bad).is_err(), "{bad}");
        }
    }
}
