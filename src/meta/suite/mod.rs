//! The metadata contract suite: every backend runs these same checks (SQLite in
//! `meta::sqlite`, Postgres in `meta::postgres`), each case on a fresh, empty store.

use std::sync::Arc;

use super::Meta;
use super::rows::from_ms;
use crate::domain::access::Owner;
use crate::domain::media::Takes;
use crate::domain::quota::Quota;
use crate::domain::upload::{Concat, Metadata, State, Upload, UploadId};

mod lanes;
mod listing;
mod media;
mod outbox;
mod quota;
mod tasks;
mod uploads;

/// No limits: every insert and declared length goes through.
pub const NO_QUOTA: Quota = Quota {
    max_bytes: None,
    max_unfinished: None,
    max_per_minute: None,
};

/// A general worker slot's claim: any job.
pub const ANY: Takes = Takes {
    slow: true,
    fast_max_bytes: u64::MAX,
};

/// Runs every case; `open()` gives a fresh, empty store.
pub async fn run(open: impl AsyncFn() -> Arc<dyn Meta>) {
    uploads::round_trip_and_compare_and_set(&*open().await).await;
    uploads::deferred_length_is_set_once(&*open().await).await;
    uploads::expiry_queries(&*open().await).await;
    uploads::records_parts_and_tails_until_forgotten(&*open().await).await;
    uploads::owners_are_kept(&*open().await).await;
    listing::owners_see_their_own_newest_first(&*open().await).await;
    listing::pages_return_every_upload_once_while_uploads_arrive(&*open().await).await;
    listing::filters_by_status_and_media_kind(&*open().await).await;
    quota::the_rate_counts_accepted_uploads_per_minute(&*open().await).await;
    quota::unfinished_and_bytes_limits(&*open().await).await;
    quota::a_refused_change_writes_nothing(&*open().await).await;
    quota::concurrent_inserts_of_one_owner_keep_to_the_quota(open().await).await;
    outbox::events_exist_exactly_when_their_change_does(&*open().await).await;
    outbox::delivery_order_retries_dead_letters_and_release(&*open().await).await;
    outbox::a_claimed_event_is_taken_once_until_its_lease_ends(open().await).await;
    media::a_job_is_queued_with_the_change_that_asks_for_it(&*open().await).await;
    media::leases_keep_a_job_to_one_worker_until_they_run_out(&*open().await).await;
    media::outcomes_backoff_and_rejection(&*open().await).await;
    media::concurrent_claims_take_each_job_once(open().await).await;
    lanes::fast_slots_take_fast_work_and_general_slots_take_it_first(&*open().await).await;
    lanes::a_handoff_moves_a_job_to_the_slow_lane_uncounted(&*open().await).await;
    tasks::tasks_run_alone_and_wake_their_job(&*open().await).await;
    tasks::tasks_go_with_their_job(&*open().await).await;
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
        owner: None,
    }
}

/// `upload(id)` of `owner`, created at `created_ms`.
pub fn owned(id: &str, owner: &str, created_ms: i64) -> Upload {
    Upload {
        owner: Some(Owner::parse(owner).unwrap()),
        created_at: from_ms(created_ms),
        ..upload(id)
    }
}

fn id(s: &str) -> UploadId {
    UploadId::parse(s).unwrap()
}
