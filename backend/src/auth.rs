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

/// Checks tokens, origins and host names.
#[derive(Debug)]
pub(crate) struct Gate {
    tokens: HashMap<String, Grant>,
    origins: Vec<String>,
    hosts: Hosts,
}

/// Which `Host` names requests may carry (see `auth.allowed_hosts`).
#[derive(Debug)]
enum Hosts {
    /// Loopback names and addresses only (a loopback bind without a list).
    Loopback,
    /// Every name (a reachable bind without a list).
    Any,
    /// These names (lowercase), and loopback ones.
    Listed(Vec<String>),
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
        let hosts = match (&auth.allowed_hosts[..], own.ip().is_loopback()) {
            ([], true) => Hosts::Loopback,
            ([], false) => Hosts::Any,
            (list, _) => Hosts::Listed(list.iter().map(|h| h.to_ascii_lowercase()).collect()),
        };
        Self { tokens, origins, hosts }
    }

    /// Whether a request addressed to `host` (the `Host` header, port included) is for
    /// us. A page on another site that re-points its own name at our address (DNS
    /// rebinding) sends its own name, and is refused. No `Host`: not a browser, allowed.
    pub(crate) fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        }
        .to_ascii_lowercase();
        let loopback = name == "localhost"
            || name.ends_with(".localhost")
            || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match &self.hosts {
            Hosts::Any => true,
            Hosts::Loopback => loopback,
            Hosts::Listed(list) => loopback || list.contains(&name),
        }
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
    fn host_names() {
        let g = gate(vec![]);
        for ok in [
            None,
            Some("127.0.0.1:8765"),
            Some("localhost:8765"),
            Some("LOCALHOST"),
            Some("[::1]:8765"),
            Some("app.localhost:3000"),
        ] {
            assert!(g.host_allowed(ok), "{ok:?}");
        }
        for bad in ["evil.example:8765", "evil.example", "127.0.0.1.evil.example", "10.0.0.5:8765", "[::2]:1"] {
            assert!(!g.host_allowed(Some(bad)), "{bad}");
        }
        let listed = Gate::new(
            &Auth { allowed_hosts: vec!["Bridge.Example".into()], ..Auth::default() },
            "0.0.0.0:8765".parse().unwrap(),
        );
        assert!(listed.host_allowed(Some("bridge.example:8765")));
        assert!(!listed.host_allowed(Some("evil.example")));
        let open = Gate::new(&Auth::default(), "0.0.0.0:8765".parse().unwrap());
        assert!(open.host_allowed(Some("anything.example")), "a reachable bind without a list takes any name");
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
