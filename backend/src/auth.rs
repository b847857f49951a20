//! Who may connect and what they may do: the Origin allowlist (checked
//! before the WebSocket upgrade) and tokens with roles.

use std::collections::HashMap;
use std::net::SocketAddr;

use bridge_core::protocol::{ClientFrame, ErrorCode, FrameError};

use crate::config::{Auth, Role};

/// A caller's identity and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The token's name, or `anonymous` when tokens are off.
    pub(crate) name: String,
    roles: Option<Vec<Role>>,
}

impl Grant {
    /// Everything allowed: tokens are not configured.
    pub(crate) fn open() -> Self {
        Self { name: "anonymous".into(), roles: None }
    }

    pub(crate) fn allows(&self, role: Role) -> bool {
        self.roles.as_ref().is_none_or(|r| r.contains(&role))
    }
}

/// Checks tokens and origins.
#[derive(Debug)]
pub(crate) struct Gate {
    tokens: HashMap<String, Grant>,
    origins: Vec<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    Missing,
    Wrong,
}

impl Gate {
    /// From the config; `own` is the server's own address (its origin is always allowed).
    pub(crate) fn new(auth: &Auth, own: SocketAddr) -> Self {
        let tokens = auth
            .tokens
            .iter()
            .map(|t| (t.token.clone(), Grant { name: t.name.clone(), roles: Some(t.roles.clone()) }))
            .collect();
        let mut origins = auth.allowed_origins.clone();
        origins.push(format!("http://{own}"));
        Self { tokens, origins }
    }

    /// True when tokens are configured.
    pub(crate) fn tokens_required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The grant for `token`.
    pub(crate) fn check_token(&self, token: Option<&str>) -> Result<Grant, TokenError> {
        if self.tokens.is_empty() {
            return Ok(Grant::open());
        }
        let token = token.ok_or(TokenError::Missing)?;
        // Compare every token in full so the time taken does not reveal a matching prefix.
        let mut found = None;
        for (candidate, grant) in &self.tokens {
            if constant_time_eq(candidate.as_bytes(), token.as_bytes()) {
                found = Some(grant.clone());
            }
        }
        found.ok_or(TokenError::Wrong)
    }

    /// Whether a browser page from `origin` may connect. No Origin header: a non-browser client, allowed.
    pub(crate) fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        self.origins.iter().any(|pattern| origin_matches(pattern, origin))
    }
}

/// The `forbidden` error for a frame whose token lacks `role`.
pub(crate) fn forbidden(frame: &ClientFrame, role: Role) -> FrameError {
    FrameError {
        code: ErrorCode::Forbidden,
        message: format!("\"{}\" needs a token with the \"{}\" role", frame.kind(), role.as_str()),
        id: frame.id().cloned(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `http://localhost:*` matches `http://localhost:3000`; otherwise exact (case-insensitive) match.
fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.strip_suffix(":*") {
        Some(prefix) => origin
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            .then(|| &origin[prefix.len()..])
            .is_some_and(|rest| {
                rest.is_empty() || rest.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
            }),
        None => pattern.eq_ignore_ascii_case(origin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Token;

    fn gate(tokens: Vec<Token>) -> Gate {
        Gate::new(&Auth { tokens, ..Auth::default() }, "127.0.0.1:8765".parse().unwrap())
    }

    #[test]
    fn origins() {
        let g = gate(vec![]);
        assert!(g.origin_allowed(None));
        assert!(g.origin_allowed(Some("http://127.0.0.1:8765")));
        assert!(g.origin_allowed(Some("http://localhost:3000")));
        assert!(g.origin_allowed(Some("http://localhost")));
        assert!(!g.origin_allowed(Some("http://localhost.evil.com")));
        assert!(!g.origin_allowed(Some("http://localhost:3000.evil.com")));
        assert!(!g.origin_allowed(Some("https://evil.example")));
        assert!(!g.origin_allowed(Some("null")));
    }

    #[test]
    fn tokens_and_roles() {
        let g = gate(vec![Token { name: "pub".into(), token: "p".repeat(16), roles: vec![Role::Publish] }]);
        assert_eq!(g.check_token(None), Err(TokenError::Missing));
        assert_eq!(g.check_token(Some("nope")), Err(TokenError::Wrong));
        let grant = g.check_token(Some(&"p".repeat(16))).unwrap();
        assert_eq!(grant.name, "pub");
        assert!(grant.allows(Role::Publish));
        assert!(!grant.allows(Role::Subscribe));
        assert!(gate(vec![]).check_token(None).unwrap().allows(Role::Agent));
    }
}
