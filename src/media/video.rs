//! Video: the ladder planned from the probe, transcoded (`gst::transcode`) to HLS with poster
//! candidates, the poster and thumbnails; a video that stops well short of its declared length
//! fails as truncated. A video of `--media-playable-from` or more with more than one rung is
//! transcoded in passes (`media::passes`), each a task of its own (`job::tasks`): the lowest
//! rung with the stills and the sound, published as playable, then the upper rungs in chunks;
//! shorter ones in one pass. `process` runs one pass.

use std::path::Path;
use std::sync::Arc;
#[cfg(feature = "media")]
use std::time::Duration;

use super::config::MediaConfig;
use super::job::Progress;
#[cfg(feature = "media")]
use super::job::budget;
use super::passes::Pass;
use super::plan::Plan;
#[cfg(feature = "media")]
use super::plan::Sound;
#[cfg(feature = "media")]
use super::publish::Output;
use super::publish::Produced;
use super::steps::StepError;
use crate::domain::media::{Probe, VideoFacts};

/// The ladder of a probed video under `cfg`.
pub fn plan(video: &VideoFacts, cfg: &MediaConfig) -> Plan {
    super::plan::plan(video, &cfg.ladder, cfg.hls_segment)
}

/// How long decoding may stand still before the run fails.
#[cfg(feature = "media")]
const STALL: Duration = Duration::from_secs(60);

/// Runs one `pass` of a video's transcode into `out`.
#[cfg(feature = "media")]
pub async fn process(
    input: &Path,
    out: &Path,
    probe: &Probe,
    video: &VideoFacts,
    cfg: &MediaConfig,
    progress: Arc<Progress>,
    pass: &Pass,
) -> Result<Produced, StepError> {
    use super::gst::transcode;
    let plan = plan(video, cfg);
    let duration_ms = probe.duration_ms.unwrap_or(0);
    let extras = super::extras::plan(&plan, duration_ms, cfg.mp4_fallback);
    let (input, out, probe, pass) = (
        input.to_owned(),
        out.to_owned(),
        probe.clone(),
        pass.clone(),
    );
    let (segment, widths) = (cfg.hls_segment, cfg.thumb_widths.clone());
    super::job::blocking(move || {
        let (from, to) = pass.share;
        let report = |p: f32| {
            let p = from + p * (to - from) / 100.0;
            progress.report(p)
        };
        let mut result = transcode::run(&transcode::Job {
            input: &input,
            out_dir: &out,
            probe: &probe,
            plan: &plan,
            rungs: pass.rungs.clone(),
            stills: pass.stills,
            extras: &extras,
            segment,
            sound: pass.sound,
            range: pass.range,
            budget: budget(probe.duration_ms),
            stall: STALL,
            cancel: &progress.cancel,
            progress: &report,
        })?;
        cut_short(&pass, probe.duration_ms, result.decoded_ms)?;
        let renditions = hls_renditions(
            &result,
            &plan,
            &plan.renditions[pass.rungs.clone()],
            pass.sound,
        );
        let mut files = Vec::new();
        if pass.stills {
            // The shorter of what the file says and what was decoded.
            let length = duration_ms.min(result.decoded_ms).max(1);
            files = stills(&mut result, &extras, &widths, length, &out)?;
        }
        if result.mp4 {
            let _ = std::fs::remove_file(out.join("mp4mux.tmp"));
            let top = &plan.renditions[extras.mp4.unwrap_or(0)];
            let mp4 = Output::picture(
                "mp4",
                "fallback.mp4".into(),
                "video/mp4",
                top.width,
                top.height,
            );
            files.push(Output {
                duration_ms: Some(result.decoded_ms),
                ..mp4
            });
        }
        Ok(Produced {
            renditions,
            files,
            variable_frame_rate: result.variable_frame_rate,
            loudness: None,
        })
    })
    .await
}

/// The poster, thumbnails, preview and storyboard from the frames a run took, for a video of
/// `length` ms.
#[cfg(feature = "media")]
fn stills(
    result: &mut super::gst::transcode::Output,
    extras: &super::extras::Extras,
    widths: &[u32],
    length: u64,
    out: &Path,
) -> Result<Vec<Output>, StepError> {
    let mut files = poster_files(std::mem::take(&mut result.frames), widths, out)?;
    files.extend(super::previews::preview(&result.preview, out)?);
    files.extend(super::previews::storyboard(
        &result.storyboard,
        extras,
        length,
        out,
    )?);
    Ok(files)
}

/// Fails a `pass` whose video stopped well short: of the file's declared length, or of a
/// chunk's stop (but the last's).
#[cfg(feature = "media")]
fn cut_short(pass: &Pass, declared_ms: Option<u64>, decoded_ms: u64) -> Result<(), StepError> {
    match pass.range {
        Some((_, stop)) if stop != u64::MAX => {
            let stop_ms = stop / 1_000_000;
            truncated(
                Some(declared_ms.unwrap_or(stop_ms).min(stop_ms)),
                decoded_ms,
            )
        }
        _ => truncated(declared_ms, decoded_ms),
    }
}

/// The HLS renditions the transcode wrote, described from the plan's `rungs` it encoded:
/// picture size, frame rate and codecs; and the sound's own rendition when it wrote one.
#[cfg(feature = "media")]
fn hls_renditions(
    result: &super::gst::transcode::Output,
    plan: &Plan,
    rungs: &[super::plan::Rendition],
    sound: Sound,
) -> Vec<super::publish::Rendition> {
    use super::publish::Rendition;
    let fps = plan.fps.0 as f64 / plan.fps.1 as f64;
    let audio = if result.has_audio && sound == Sound::Muxed {
        format!(",{AAC}")
    } else {
        String::new()
    };
    let sound = result.audio_dir.iter().map(|dir| Rendition {
        dir: dir.clone(),
        picture: None,
        codecs: AAC.into(),
        audio_group: true,
    });
    result
        .renditions
        .iter()
        .zip(rungs)
        .map(|((dir, profile, level), r)| Rendition {
            dir: dir.clone(),
            picture: Some((r.width, r.height, fps)),
            codecs: format!("{}{audio}", super::hls::avc1(profile, level)),
            audio_group: false,
        })
        .chain(sound)
        .collect()
}

/// The RFC 6381 codec of the AAC sound.
#[cfg(feature = "media")]
const AAC: &str = "mp4a.40.2";

/// The poster and its thumbnails, from the best of the candidate `frames`; none without a
/// frame.
#[cfg(feature = "media")]
fn poster_files(
    frames: Vec<super::gst::transcode::Frame>,
    widths: &[u32],
    out: &Path,
) -> Result<Vec<Output>, StepError> {
    Ok(match super::poster::pick(frames) {
        Some(frame) => super::poster::write(frame, widths, out)?
            .into_iter()
            .enumerate()
            .map(|(i, (file, w, h))| {
                let kind = if i == 0 { "poster" } else { "thumbnail" };
                Output::picture(kind, file, "image/jpeg", w, h)
            })
            .collect(),
        None => Vec::new(),
    })
}

#[cfg(not(feature = "media"))]
pub async fn process(
    _input: &Path,
    _out: &Path,
    _probe: &Probe,
    _video: &VideoFacts,
    _cfg: &MediaConfig,
    _progress: Arc<Progress>,
    _pass: &Pass,
) -> Result<Produced, StepError> {
    Err(super::job::unsupported())
}

/// A file whose video stops well before the duration its container declares was cut short
/// (its upload was complete, but the file itself was not): the outputs would silently lack
/// the rest.
pub fn truncated(declared_ms: Option<u64>, decoded_ms: u64) -> Result<(), StepError> {
    let Some(declared) = declared_ms else {
        return Ok(());
    };
    let slack = (declared / 10).max(1000);
    if decoded_ms + slack < declared {
        return Err(StepError::permanent(
            "truncated",
            format!(
                "the video stops at {:.1}s of the {:.1}s the file declares: the file is cut short",
                decoded_ms as f64 / 1000.0,
                declared as f64 / 1000.0
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_video_cut_short_is_truncated() {
        assert!(super::truncated(Some(10_000), 4_900).is_err());
        // The last frame's time, and a video a little shorter than its audio, are fine.
        assert!(super::truncated(Some(10_000), 9_966).is_ok());
        assert!(super::truncated(Some(3_000), 2_367).is_ok());
        assert!(super::truncated(None, 0).is_ok());
    }
}
