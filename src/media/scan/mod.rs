//! The malware scan: the stored original streamed to clamd between detection and probing. Its
//! outcome is kept on the record; a file it did not scan (too large, scanner down under the
//! open policy) says so and is never called clean.

pub mod clamd;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::steps::StepError;
use crate::domain::media::{MediaRecord, Scan, ScanOutcome};
use crate::media::Context;

/// What happens when clamd cannot be reached after the job's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The job fails: nothing unscanned is published.
    Closed,
    /// The job goes on, its record saying it was not scanned.
    Open,
}

#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub clamd: clamd::Address,
    /// Larger originals are not sent (clamd would stop reading at its StreamMaxLength, or
    /// report the unscanned rest as clean).
    pub max_size: u64,
    pub policy: Policy,
    /// Infected originals are moved under the store's quarantine prefix, not deleted.
    pub quarantine: bool,
}

/// Scans `job`'s original. `last_attempt`: no retry follows if the scanner is down.
pub async fn run(
    cx: &Context,
    cfg: &ScanConfig,
    job: &MediaRecord,
    last_attempt: bool,
) -> Result<Scan, StepError> {
    let done = |outcome, signature, reason: Option<String>, bytes| Scan {
        outcome,
        signature,
        reason,
        bytes,
        at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
    };
    if job.length > cfg.max_size {
        return Ok(done(
            ScanOutcome::Skipped,
            None,
            Some(format!(
                "{} bytes is more than the scan limit ({} bytes)",
                job.length, cfg.max_size
            )),
            0,
        ));
    }
    let body = cx.storage.read(&job.id, 0..job.length).await?;
    match clamd::instream(&cfg.clamd, body, budget(job.length)).await {
        Ok(clamd::Verdict::Clean) => Ok(done(ScanOutcome::Clean, None, None, job.length)),
        Ok(clamd::Verdict::Found(sig)) => {
            Ok(done(ScanOutcome::Infected, Some(sig), None, job.length))
        }
        Ok(clamd::Verdict::TooLarge(why)) => {
            Ok(done(ScanOutcome::Skipped, None, Some(why), job.length))
        }
        Err(clamd::ClamdError::Source(e)) => Err(StepError::transient("storage", e)),
        Err(e) if cfg.policy == Policy::Open && last_attempt => {
            Ok(done(ScanOutcome::Unavailable, None, Some(e.to_string()), 0))
        }
        Err(e) => Err(StepError::transient("scanner_unavailable", e.to_string())),
    }
}

/// A scan may take 30 s plus a second per 2 MiB (clamd reads ~50 MiB/s here).
fn budget(len: u64) -> Duration {
    Duration::from_secs(30) + Duration::from_secs(len / (2 << 20))
}

/// The rejection of an infected file.
pub fn infected(scan: &Scan) -> StepError {
    StepError::rejected(
        "infected",
        format!(
            "the malware scanner found {}",
            scan.signature.as_deref().unwrap_or("a threat")
        ),
    )
}
