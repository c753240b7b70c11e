//! Video: the ladder planned from the probe, transcoded (`gst::transcode`) to HLS with poster
//! candidates, the poster and thumbnails; a video that stops well short of its declared length
//! fails as truncated. A video of `--media-playable-from` or more with more than one rung is
//! transcoded in passes (`passes`), each a task of its own (`job::tasks`): the lowest rung with
//! the stills, published as playable, and each other rung; shorter ones in one pass.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::config::MediaConfig;
use super::job::Progress;
#[cfg(feature = "media")]
use super::job::budget;
#[cfg(feature = "media")]
use super::publish::Output;
use super::publish::Produced;
use super::steps::StepError;
use crate::domain::media::{Probe, VideoFacts};

/// A share of a video's transcode.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pass {
    /// The plan's renditions it encodes.
    pub rungs: std::ops::Range<usize>,
    /// Whether it takes the poster, thumbnails, preview and storyboard.
    pub stills: bool,
    /// The run's progress from and to, percent.
    pub share: (f32, f32),
}

/// The passes of a video of `duration_ms` whose rungs have `pixels` each (lowest first): one,
/// or (`from` long or longer, two rungs or more) the lowest rung with the stills (a fifth of
/// the run's progress: its pictures are small), then each other rung, its share of the rest
/// by its pixels.
pub fn passes(pixels: &[u64], duration_ms: Option<u64>, from: Option<Duration>) -> Vec<Pass> {
    let rungs = pixels.len();
    let long =
        from.is_some_and(|from| duration_ms.is_some_and(|ms| Duration::from_millis(ms) >= from));
    if rungs < 2 || !long {
        return vec![Pass {
            rungs: 0..rungs,
            stills: true,
            share: (0.0, 100.0),
        }];
    }
    let first = 20.0;
    let rest: u64 = pixels[1..].iter().sum::<u64>().max(1);
    let mut at = first;
    let mut passes = vec![Pass {
        rungs: 0..1,
        stills: true,
        share: (0.0, first),
    }];
    for (i, p) in pixels.iter().enumerate().skip(1) {
        let to = if i + 1 == rungs {
            100.0
        } else {
            at + (100.0 - first) * *p as f32 / rest as f32
        };
        passes.push(Pass {
            rungs: i..i + 1,
            stills: false,
            share: (at, to),
        });
        at = to;
    }
    passes
}

/// The ladder of a probed video under `cfg`.
pub fn plan(video: &VideoFacts, cfg: &MediaConfig) -> super::plan::Plan {
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
        let result = transcode::run(&transcode::Job {
            input: &input,
            out_dir: &out,
            probe: &probe,
            plan: &plan,
            rungs: pass.rungs.clone(),
            stills: pass.stills,
            extras: &extras,
            segment,
            range: None,
            budget: budget(probe.duration_ms),
            stall: STALL,
            cancel: &progress.cancel,
            progress: &report,
        })?;
        truncated(probe.duration_ms, result.decoded_ms)?;
        let renditions = hls_renditions(&result, &plan, &plan.renditions[pass.rungs.clone()]);
        let mut files = Vec::new();
        if pass.stills {
            files = poster_files(result.frames, &widths, &out)?;
            // The shorter of what the file says and what was decoded.
            let length = duration_ms.min(result.decoded_ms).max(1);
            files.extend(super::previews::preview(&result.preview, &out)?);
            files.extend(super::previews::storyboard(
                &result.storyboard,
                &extras,
                length,
                &out,
            )?);
        }
        if result.mp4 {
            let _ = std::fs::remove_file(out.join("mp4mux.tmp"));
            let top = &plan.renditions[extras.mp4.unwrap_or(0)];
            files.push(Output {
                duration_ms: Some(result.decoded_ms),
                ..Output::picture(
                    "mp4",
                    "fallback.mp4".into(),
                    "video/mp4",
                    top.width,
                    top.height,
                )
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

/// The HLS renditions the transcode wrote, described from the plan's `rungs` it encoded:
/// picture size, frame rate and codecs.
#[cfg(feature = "media")]
fn hls_renditions(
    result: &super::gst::transcode::Output,
    plan: &super::plan::Plan,
    rungs: &[super::plan::Rendition],
) -> Vec<super::publish::Rendition> {
    use super::publish::Rendition;
    let fps = plan.fps.0 as f64 / plan.fps.1 as f64;
    let audio = if result.has_audio { ",mp4a.40.2" } else { "" };
    result
        .renditions
        .iter()
        .zip(rungs)
        .map(|((dir, profile, level), r)| Rendition {
            dir: dir.clone(),
            picture: Some((r.width, r.height, fps)),
            codecs: format!("{}{audio}", super::hls::avc1(profile, level)),
        })
        .collect()
}

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

#[cfg(test)]
mod passes {
    use std::time::Duration;

    #[test]
    fn long_videos_with_a_ladder_are_playable_first() {
        let from = Some(Duration::from_secs(30));
        let pixels = [100, 300, 500];
        let three = super::passes(&pixels, Some(30_000), from);
        assert_eq!(three.len(), 3);
        assert_eq!((three[0].rungs.clone(), three[0].stills), (0..1, true));
        assert_eq!((three[1].rungs.clone(), three[1].stills), (1..2, false));
        assert_eq!((three[2].rungs.clone(), three[2].stills), (2..3, false));
        assert_eq!(three[0].share, (0.0, 20.0));
        assert_eq!(three[1].share, (20.0, 50.0));
        assert_eq!(three[2].share, (50.0, 100.0));
        for one in [
            super::passes(&pixels, Some(29_999), from),
            super::passes(&[100], Some(600_000), from),
            super::passes(&pixels, None, from),
            super::passes(&pixels, Some(600_000), None),
        ] {
            assert_eq!(one.len(), 1);
            assert_eq!(
                (one[0].rungs.end, one[0].stills),
                (one[0].rungs.len(), true)
            );
        }
    }
}
