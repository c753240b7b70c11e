//! The metadata contract suite: every backend runs these same checks (SQLite in
//! `meta::sqlite`, Postgres in `meta::postgres`), each case on a fresh, empty store.

use std::sync::Arc;

use super::Meta;
use super::rows::from_ms;
use crate::domain::upload::{Concat, Metadata, State, Upload, UploadId};

mod media;
mod outbox;
mod uploads;

/// Runs every case; `open()` gives a fresh, empty store.
pub async fn run(open: impl AsyncFn() -> Arc<dyn Meta>) {
    uploads::round_trip_and_compare_and_set(&*open().await).await;
    uploads::deferred_length_is_set_once(&*open().await).await;
    uploads::expiry_queries(&*open().await).await;
    uploads::records_parts_and_tails_until_forgotten(&*open().await).await;
    outbox::events_exist_exactly_when_their_change_does(&*open().await).await;
    outbox::delivery_order_retries_dead_letters_and_release(&*open().await).await;
    outbox::a_claimed_event_is_taken_once_until_its_lease_ends(open().await).await;
    media::a_job_is_queued_with_the_change_that_asks_for_it(&*open().await).await;
    media::leases_keep_a_job_to_one_worker_until_they_run_out(&*open().await).await;
    media::outcomes_backoff_and_rejection(&*open().await).await;
    media::concurrent_claims_take_each_job_once(open().await).await;
}

/// An active upload of 10 bytes at offset 0.
pub fn upload(id: &str) -> Upload {
    Upload {
        id: UploadId::parse(id).unwrap(),
        length: Some(10),
        offset: 0,
        metadata: Some(Metadata::parse("name YQ==").unwrap()),
        concat: Concat::None,
        concat_raw: None,
        created_at: from_ms(1_000),
        expires_at: Some(from_ms(5_000)),
        state: State::Active,
    }
}

fn id(s: &str) -> UploadId {
    UploadId::parse(s).unwrap()
}
