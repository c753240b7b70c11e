//! Outbox events: what a change to an upload or its media record causes for hooks, written by
//! the metadata store in the change's transaction and delivered by `hooks::dispatch`.

use std::time::SystemTime;

use crate::domain::upload::UploadId;

/// An event for the outbox, written with the change that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Stable id, sent with every delivery attempt so receivers can drop duplicates.
    pub id: String,
    /// The hook event's name (post-finish, ...).
    pub kind: String,
    pub upload: UploadId,
    /// The hook request, as sent.
    pub payload: String,
    pub held: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    Held,
    Pending,
    /// Gave up after the most attempts: a dead letter, until retried by hand.
    Dead,
}

/// An event in the outbox.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub event: OutboxEvent,
    pub state: EventState,
    pub attempts: u32,
    pub created_at: SystemTime,
    pub next_at: SystemTime,
    pub last_error: Option<String>,
}

/// What a change to an upload causes besides itself, written by the metadata store in the
/// change's transaction, so that each exists exactly when the change does. The upload core
/// decides it; the store only writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Events for the outbox.
    pub events: Vec<OutboxEvent>,
    /// Queue the upload's media job, held until the events are released: the change finishes
    /// an upload that the media pipeline processes.
    pub media_job: bool,
}

impl Effects {
    /// Events only, no media job.
    pub fn events(events: Vec<OutboxEvent>) -> Effects {
        Effects {
            events,
            media_job: false,
        }
    }
}

/// Work a process released for the background loops of every process that shares the metadata
/// store: due hook events for the dispatchers, runnable media jobs for the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Events,
    MediaJobs,
}

impl Work {
    /// Its name in a notification.
    pub fn name(self) -> &'static str {
        match self {
            Work::Events => "events",
            Work::MediaJobs => "media",
        }
    }

    pub fn parse(s: &str) -> Option<Work> {
        [Work::Events, Work::MediaJobs]
            .into_iter()
            .find(|w| w.name() == s)
    }
}
