//! The embedded default: every piece of state in this process's memory.
//! Nothing to install; a restart starts over (a new epoch, empty queues).

mod agents;
mod events;
mod members;
mod reports;
mod requests;

pub(crate) use agents::MemoryAgents;
pub(crate) use events::MemoryEvents;
pub(crate) use members::Alone;
pub(crate) use reports::MemoryReports;
pub(crate) use requests::OneNode;
