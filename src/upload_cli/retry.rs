//! Retrying what can be retried: exponential backoff with jitter, a bounded number of failed
//! attempts in a row, the reason shown next to the bar.

use std::time::Duration;

use super::progress::Bar;
use super::tus::Failure;

/// Calls `f` until it succeeds, fails for good, or has failed `retries` times.
pub(super) async fn with_retries<T, F, Fut>(
    retries: u32,
    bar: Option<&Bar>,
    mut f: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(Failure::Retry(m)) => {
                attempt += 1;
                match bar {
                    Some(b) => pause(retries, attempt, &m, b).await?,
                    None if attempt <= retries => tokio::time::sleep(backoff(attempt)).await,
                    None => return Err(Failure::Fatal(m)),
                }
            }
            other => return other,
        }
    }
}

/// Waits before attempt `attempt + 1`, or gives up after `retries` failed attempts in a row.
pub(super) async fn pause(retries: u32, attempt: u32, why: &str, bar: &Bar) -> Result<(), Failure> {
    if attempt > retries {
        return Err(Failure::Fatal(format!(
            "{why} (gave up after {retries} attempts)"
        )));
    }
    let wait = backoff(attempt);
    bar.note(&format!(
        "{why}; retrying in {}",
        humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
    ));
    tokio::time::sleep(wait).await;
    Ok(())
}

/// 0.5 s, 1 s, 2 s, … up to 30 s, with up to a fifth more at random so that many clients that
/// lost the same server do not come back at once.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(30_000);
    Duration::from_millis(base + rand::random_range(0..=base / 5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let ms = |a| backoff(a).as_millis();
        assert!((500..=600).contains(&ms(1)));
        assert!((1000..=1200).contains(&ms(2)));
        assert!((30_000..=36_000).contains(&ms(12)));
    }
}
