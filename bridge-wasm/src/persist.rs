//! The outbox kept across reloads (`persistOutbox`, on by default where the page
//! has IndexedDB).
//!
//! Every agent message (`sendA2A`) and evolution request waiting for its answer
//! is also written to IndexedDB, frame and id as sent, and deleted when it is
//! settled (answered, failed, or refused to the page). What a reload or a crash
//! leaves behind is claimed by the next page load of the same bridge (and, for
//! agent messages, the same agent) and re-sent with the same id, so the server
//! takes it once. The page hears about each one through a `recovered` event.
//!
//! Which entries are orphans: each page load holds a Web Lock named after its
//! instance for as long as it lives; an entry whose instance holds no lock is
//! an orphan. Claims run under one lock per origin, so two tabs starting
//! together do not both take the same entry. Without Web Locks every entry of
//! another instance counts as an orphan (the server's de-duplication by id is
//! then what keeps a message once).
//!
//! Bounded: a page keeps at most `maxEntries` entries and `maxBytes` of frames
//! (more are sent, just not kept: counted as `refused`); an entry older than
//! `maxAgeMs` is dropped and reported as `expired` instead of being re-sent.

use std::cell::{Cell, RefCell};

use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::idb::Db;
use crate::locks::{self, Held};
use crate::platform;

/// The database's name (one per origin, shared by its tabs).
const DB_NAME: &str = "bridge-outbox";
/// The lock a page load holds while it lives.
const PAGE_LOCK: &str = "bridge-page:";
/// The lock claims run under.
const CLAIM_LOCK: &str = "bridge-outbox-claim";

/// `persistOutbox` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PersistConfig {
    pub(crate) max_entries: u32,
    pub(crate) max_bytes: u64,
    pub(crate) max_age_ms: u64,
}

impl Default for PersistConfig {
    fn default() -> Self {
        Self { max_entries: 256, max_bytes: 1 << 20, max_age_ms: 24 * 3_600_000 }
    }
}

/// One kept request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The frame's id (unique across page loads: it starts with the instance).
    pub(crate) id: String,
    pub(crate) bridge: String,
    /// The agent that sent it (agent messages), else empty.
    pub(crate) agent: String,
    pub(crate) instance: String,
    /// `agents` or `evolution`.
    pub(crate) socket: String,
    pub(crate) tool: String,
    pub(crate) frame: String,
    /// Unix ms.
    pub(crate) created: f64,
}

impl Entry {
    fn to_js(&self) -> JsValue {
        let o = js_sys::Object::new();
        for (k, v) in [
            ("id", &self.id),
            ("bridge", &self.bridge),
            ("agent", &self.agent),
            ("instance", &self.instance),
            ("socket", &self.socket),
            ("tool", &self.tool),
            ("frame", &self.frame),
        ] {
            let _ = js_sys::Reflect::set(&o, &k.into(), &v.as_str().into());
        }
        let _ = js_sys::Reflect::set(&o, &"created".into(), &self.created.into());
        o.into()
    }

    fn from_js(v: &JsValue) -> Option<Entry> {
        let s = |k: &str| crate::js::get(v, k).and_then(|x| x.as_string());
        Some(Entry {
            id: s("id")?,
            bridge: s("bridge")?,
            agent: s("agent").unwrap_or_default(),
            instance: s("instance")?,
            socket: s("socket")?,
            tool: s("tool")?,
            frame: s("frame")?,
            created: crate::js::get(v, "created").and_then(|c| c.as_f64())?,
        })
    }
}

/// What a claim found.
#[derive(Debug, Default)]
pub(crate) struct Claim {
    /// Taken over, oldest first: to re-send.
    pub(crate) claimed: Vec<Entry>,
    /// Dropped for age: to report.
    pub(crate) expired: Vec<Entry>,
    /// Page loads that hold entries of this bridge and look alive: claim again when they go.
    pub(crate) alive_owners: Vec<String>,
}

/// Completes when the page load `instance` is gone (its lock is free); at once without Web Locks.
pub(crate) async fn owner_gone(instance: &str) {
    drop(locks::hold(&format!("{PAGE_LOCK}{instance}")).await);
}

/// What `state().outbox.kept` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeptStats {
    /// Kept now by this page, and their bytes.
    pub(crate) entries: u32,
    pub(crate) bytes: u64,
    /// Claimed from an earlier page load and re-sent.
    pub(crate) recovered: u64,
    /// Dropped for age instead of being re-sent.
    pub(crate) expired: u64,
    /// Not kept because the bounds were reached (they were still sent).
    pub(crate) refused: u64,
    /// IndexedDB writes that failed.
    pub(crate) errors: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Persist {
    config: Option<PersistConfig>,
    db: RefCell<Option<Db>>,
    /// This page load's lock, held while started.
    alive: RefCell<Option<Held>>,
    /// Ids kept by this page and their sizes.
    kept: RefCell<Vec<(String, u64)>>,
    stats: Cell<KeptStats>,
}

impl Persist {
    pub(crate) fn new(config: Option<PersistConfig>) -> Self {
        Self { config, ..Self::default() }
    }

    pub(crate) fn stats(&self) -> Option<KeptStats> {
        self.config?;
        let mut s = self.stats.get();
        let kept = self.kept.borrow();
        s.entries = kept.len() as u32;
        s.bytes = kept.iter().map(|(_, b)| b).sum();
        Some(s)
    }

    fn count(&self, f: impl FnOnce(&mut KeptStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Opens the database and announces this page load as alive; then claims what earlier
    /// page loads of `bridge` (as `agent`) left behind.
    pub(crate) async fn start(&self, bridge: &str, agent: Option<&str>, instance: &str) -> Result<Claim, String> {
        let Some(config) = self.config else { return Ok(Claim::default()) };
        if self.db.borrow().is_none() {
            let Some(db) = Db::open(DB_NAME).await? else { return Ok(Claim::default()) };
            *self.db.borrow_mut() = Some(db);
        }
        if self.alive.borrow().is_none() {
            *self.alive.borrow_mut() = locks::hold(&format!("{PAGE_LOCK}{instance}")).await;
        }
        let Some(db) = self.db.borrow().clone() else { return Ok(Claim::default()) };
        let _claiming = locks::hold(CLAIM_LOCK).await;
        // Entries written after this moment may belong to a page that started after the query.
        let asked_at = platform::unix_ms() as f64;
        let alive: Option<Vec<String>> = locks::held_names().await;
        let is_orphan = |e: &Entry| {
            if e.instance == instance {
                // This page's own, from before a stop() and start(): orphaned unless still waiting.
                return !self.kept.borrow().iter().any(|(id, _)| id == &e.id);
            }
            e.created < asked_at
                && alive.as_ref().is_none_or(|held| !held.iter().any(|h| h == &format!("{PAGE_LOCK}{}", e.instance)))
        };
        let mut claimed = Vec::new();
        let mut expired = Vec::new();
        let mut alive_owners: Vec<String> = Vec::new();
        for e in db.all().await?.iter().filter_map(Entry::from_js) {
            if !is_orphan(&e) {
                // A page that is going may still hold its lock for a moment (a reload): wait for it.
                if e.bridge == bridge && e.instance != instance && !alive_owners.contains(&e.instance) {
                    alive_owners.push(e.instance.clone());
                }
                continue;
            }
            if e.created + config.max_age_ms as f64 <= asked_at {
                // Anyone's: an expired entry only takes room.
                if let Ok(done) = db.delete(&e.id) {
                    let _ = done.await;
                }
                if e.bridge == bridge {
                    expired.push(e);
                }
                continue;
            }
            let ours = e.bridge == bridge && (e.socket != "agents" || Some(e.agent.as_str()) == agent);
            if ours {
                let mut mine = e.clone();
                mine.instance = instance.to_owned();
                db.put(&mine.to_js())?.await?;
                self.kept.borrow_mut().push((mine.id.clone(), mine.frame.len() as u64));
                claimed.push(mine);
            }
        }
        // Oldest first. An insertion sort: a handful of entries, and the library's stable sort
        // would add kilobytes to the module.
        let mut oldest_first: Vec<Entry> = Vec::with_capacity(claimed.len());
        for e in claimed {
            let at = oldest_first.iter().position(|c| c.created > e.created).unwrap_or(oldest_first.len());
            oldest_first.insert(at, e);
        }
        let claimed = oldest_first;
        self.count(|s| {
            s.recovered += claimed.len() as u64;
            s.expired += expired.len() as u64;
        });
        Ok(Claim { claimed, expired, alive_owners })
    }

    /// The bridge stopped: other pages may now claim what is left.
    pub(crate) fn stop(&self) {
        self.alive.borrow_mut().take();
    }

    /// Keeps `entry` until [`Self::forget`]; false when off, not started, or over the bounds.
    pub(crate) fn keep(&self, entry: &Entry) -> bool {
        let (Some(config), Some(db)) = (self.config, self.db.borrow().clone()) else { return false };
        let size = entry.frame.len() as u64;
        {
            let kept = self.kept.borrow();
            let bytes: u64 = kept.iter().map(|(_, b)| b).sum();
            if kept.len() as u32 >= config.max_entries || bytes + size > config.max_bytes {
                drop(kept);
                self.count(|s| s.refused += 1);
                return false;
            }
        }
        match db.put(&entry.to_js()) {
            Ok(done) => {
                self.kept.borrow_mut().push((entry.id.clone(), size));
                self.settle(done);
                true
            }
            Err(e) => {
                self.count(|s| s.errors += 1);
                crate::js::warn("keeping a request in IndexedDB failed", &JsValue::from(e));
                false
            }
        }
    }

    /// Deletes the entry `id` (settled).
    pub(crate) fn forget(&self, id: &str) {
        let Some(db) = self.db.borrow().clone() else { return };
        let known = {
            let mut kept = self.kept.borrow_mut();
            let before = kept.len();
            kept.retain(|(k, _)| k != id);
            kept.len() != before
        };
        if known {
            match db.delete(id) {
                Ok(done) => self.settle(done),
                Err(e) => crate::js::warn("deleting a kept request failed", &JsValue::from(e)),
            }
        }
    }

    fn settle(&self, done: impl Future<Output = Result<(), String>> + 'static) {
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = done.await {
                crate::js::warn("an IndexedDB write failed", &JsValue::from(e));
            }
        });
    }
}
