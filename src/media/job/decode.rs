//! The blocking decoders a run calls, on the blocking pool: the probe and the image variants
//! (without the media feature they fail as unsupported).

use std::path::Path;
use std::sync::Arc;
#[cfg(feature = "media")]
use std::time::Duration;

use super::Progress;
#[cfg(feature = "media")]
use super::blocking;
#[cfg(not(feature = "media"))]
use super::unsupported;
use crate::domain::media::Probe;
use crate::media::config::MediaConfig;
#[cfg(feature = "media")]
use crate::media::limits::Kind;
use crate::media::publish::Produced;
use crate::media::steps::StepError;

/// How long the Discoverer may read headers (it has two tries).
#[cfg(feature = "media")]
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(feature = "media")]
pub(super) async fn probe(input: &Path) -> Result<Probe, StepError> {
    let input = input.to_owned();
    blocking(move || crate::media::gst::probe::probe(&input, PROBE_TIMEOUT)).await
}

#[cfg(not(feature = "media"))]
pub(super) async fn probe(_input: &Path) -> Result<Probe, StepError> {
    Err(unsupported())
}

#[cfg(feature = "media")]
pub(super) async fn images(
    input: &Path,
    out: &Path,
    mime: &str,
    cfg: &MediaConfig,
    progress: Arc<Progress>,
) -> Result<Produced, StepError> {
    let (input, out, mime) = (input.to_owned(), out.to_owned(), mime.to_owned());
    let (widths, max_pixels) = (cfg.image_widths.clone(), cfg.limits.pixels.get(Kind::Image));
    let budget = cfg.image_budget;
    let stop = progress.clone();
    let work = blocking(move || {
        crate::media::images::process(&crate::media::images::ImageJob {
            input: &input,
            out_dir: &out,
            mime: &mime,
            widths: &widths,
            max_pixels,
            cancel: &progress.cancel,
            progress: &|p| progress.report(p),
        })
    });
    // Past the budget the job fails; the step is told to stop at its next check (a decode in
    // progress finishes first: libheif's cannot be interrupted).
    let files = match tokio::time::timeout(budget, work).await {
        Ok(result) => result?,
        Err(_) => {
            stop.cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(StepError::permanent(
                "time_budget",
                format!("the picture took longer than {budget:?} to process (--image-time-budget)"),
            ));
        }
    };
    Ok(Produced {
        files,
        ..Default::default()
    })
}

#[cfg(not(feature = "media"))]
pub(super) async fn images(
    _input: &Path,
    _out: &Path,
    _mime: &str,
    _cfg: &MediaConfig,
    _progress: Arc<Progress>,
) -> Result<Produced, StepError> {
    Err(unsupported())
}
