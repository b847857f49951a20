//! One node: the only member is this one.

use std::sync::Mutex;

use crate::store::members::{Member, Members, Seen};
use crate::sync::lock;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Alone {
    me: Mutex<Member>,
}

impl Alone {
    pub(crate) fn new(id: &str, incarnation: &str) -> Self {
        Self { me: Mutex::new(Member { id: id.to_owned(), incarnation: incarnation.to_owned(), ..Member::default() }) }
    }
}

impl Members for Alone {
    fn announce(&self, me: Member) {
        *lock(&self.me) = me;
    }

    fn list(&self) -> Vec<Seen> {
        vec![Seen { member: lock(&self.me).clone(), up: true, last_heard_ms_ago: 0 }]
    }

    fn is_up(&self, id: &str, incarnation: &str) -> bool {
        let me = lock(&self.me);
        me.id == id && me.incarnation == incarnation
    }
}
