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
use super::plan::{Plan, Sound};
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
    /// Where its sound goes.
    #[serde(default)]
    pub sound: Sound,
    /// A chunk's part of the source, [start, stop) in ns (stop `u64::MAX`: to the end); None:
    /// all of it.
    #[serde(default)]
    pub range: Option<(u64, u64)>,
    /// A chunk's first segment's number in its renditions.
    #[serde(default)]
    pub first_segment: u64,
}

impl Pass {
    /// A pass over the whole source.
    pub fn whole(rungs: std::ops::Range<usize>, stills: bool, sound: Sound) -> Pass {
        Pass {
            rungs,
            stills,
            share: (0.0, 100.0),
            sound,
            range: None,
            first_segment: 0,
        }
    }
}

/// How a long video is split (`--media-playable-from`, `--media-chunk`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Videos at least this long (with two rungs or more) are split; None: never.
    pub from: Option<Duration>,
    /// The length of a chunk of the upper rungs; None: the upper rungs in one pass.
    pub chunk: Option<Duration>,
}

/// The first pass's share of a split video's progress: its pictures are small.
const FIRST_SHARE: f32 = 20.0;

/// The passes of a video of `duration_ms` under `plan`: one; or (`split.from` long or longer,
/// two rungs or more) a first pass over the whole source with the rungs up to `first_end`
/// (the lowest, or up to the MP4 fallback's), the stills and the sound in a rendition of its
/// own (published as playable), then the other rungs in chunks of `split.chunk` (a whole
/// number of segments, so every chunk starts on a keyframe of every rung; a short last piece
/// joins the chunk before it), each with its share of the progress by its length.
pub fn passes(plan: &Plan, duration_ms: Option<u64>, split: Split, first_end: usize) -> Vec<Pass> {
    let rungs = plan.renditions.len();
    let first_end = first_end.clamp(1, rungs.max(1));
    let long = split
        .from
        .is_some_and(|from| duration_ms.is_some_and(|ms| Duration::from_millis(ms) >= from));
    if rungs < 2 || !long || first_end >= rungs {
        return vec![Pass::whole(0..rungs, true, Sound::Muxed)];
    }
    let mut passes = vec![Pass {
        share: (0.0, FIRST_SHARE),
        ..Pass::whole(0..first_end, true, Sound::Own)
    }];
    let ms = duration_ms.unwrap_or(0);
    let (num, den) = (plan.fps.0.max(1) as u128, plan.fps.1.max(1) as u128);
    let gop = u128::from(plan.gop.max(1));
    // A frame's time in ns, exactly on the output's grid.
    let at = |frame: u128| (frame * den * 1_000_000_000 / num) as u64;
    let frames = u128::from(ms) * num / (den * 1000);
    let per_chunk = split.chunk.map_or(u128::MAX, |c| {
        let segments = (c.as_nanos() * num / (den * 1_000_000_000) / gop).max(1);
        segments * gop
    });
    let mut starts = vec![0u128];
    while let Some(next) = starts.last().and_then(|s| s.checked_add(per_chunk))
        && next.saturating_add(per_chunk / 2) < frames
    {
        starts.push(next);
    }
    let rest = 100.0 - FIRST_SHARE;
    for (k, &start) in starts.iter().enumerate() {
        let stop = starts.get(k + 1).copied();
        let share = |f: u128| FIRST_SHARE + rest * f.min(frames) as f32 / frames.max(1) as f32;
        passes.push(Pass {
            rungs: first_end..rungs,
            stills: false,
            share: (share(start), stop.map_or(100.0, share)),
            sound: Sound::Without,
            range: (split.chunk.is_some()).then(|| (at(start), stop.map_or(u64::MAX, at))),
            first_segment: (start / gop) as u64,
        });
    }
    passes
}

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

#[cfg(test)]
mod passes {
    use std::time::Duration;

    use super::{Split, passes};
    use crate::media::plan::{Plan, Rendition, Sound};

    fn ladder(n: usize) -> Plan {
        Plan {
            renditions: (0..n)
                .map(|i| Rendition {
                    width: 640 * (i as u32 + 1),
                    height: 360 * (i as u32 + 1),
                    kbps: 800,
                })
                .collect(),
            fps: (30, 1),
            gop: 120,
        }
    }

    const SPLIT: Split = Split {
        from: Some(Duration::from_secs(30)),
        chunk: Some(Duration::from_secs(30)),
    };

    #[test]
    fn short_videos_and_single_rungs_are_one_pass() {
        for one in [
            passes(&ladder(3), Some(29_999), SPLIT, 1),
            passes(&ladder(1), Some(600_000), SPLIT, 1),
            passes(&ladder(3), None, SPLIT, 1),
            passes(
                &ladder(3),
                Some(600_000),
                Split {
                    from: None,
                    ..SPLIT
                },
                1,
            ),
            passes(&ladder(3), Some(600_000), SPLIT, 3),
        ] {
            assert_eq!(one.len(), 1);
            let p = &one[0];
            assert_eq!((p.rungs.end, p.stills), (p.rungs.len(), true));
            assert_eq!((p.sound, p.range), (Sound::Muxed, None));
        }
    }

    #[test]
    fn long_videos_are_playable_first_then_chunked_on_segment_bounds() {
        // 100 s at 30 fps, 4 s segments; chunks of 30 s become 28 s (7 segments).
        let p = passes(&ladder(3), Some(100_000), SPLIT, 1);
        let first = &p[0];
        assert_eq!((first.rungs.clone(), first.stills), (0..1, true));
        assert_eq!(
            (first.sound, first.range, first.share),
            (Sound::Own, None, (0.0, 20.0))
        );
        let chunks = &p[1..];
        let s = 1_000_000_000u64;
        let ranges: Vec<_> = chunks.iter().map(|c| c.range.unwrap()).collect();
        // 84 s to 100 s is 16 s, more than half a chunk: a chunk of its own.
        assert_eq!(
            ranges,
            [
                (0, 28 * s),
                (28 * s, 56 * s),
                (56 * s, 84 * s),
                (84 * s, u64::MAX)
            ]
        );
        let firsts: Vec<_> = chunks.iter().map(|c| c.first_segment).collect();
        assert_eq!(firsts, [0, 7, 14, 21]);
        for c in chunks {
            assert_eq!(
                (c.rungs.clone(), c.stills, c.sound),
                (1..3, false, Sound::Without)
            );
        }
        assert_eq!(chunks[0].share.0, 20.0);
        assert_eq!(chunks.last().unwrap().share.1, 100.0);
        for w in p[1..].windows(2) {
            assert_eq!(w[0].share.1, w[1].share.0, "shares continue");
        }
        // A short last piece joins the chunk before: 90 s is 28+28+34.
        let p = passes(&ladder(3), Some(90_000), SPLIT, 1);
        assert_eq!(p.len(), 4);
        assert_eq!(p[3].range, Some((56 * s, u64::MAX)));
        // Without chunks, the upper rungs are one pass over the whole source.
        let p = passes(
            &ladder(3),
            Some(100_000),
            Split {
                chunk: None,
                ..SPLIT
            },
            2,
        );
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].rungs.clone(), p[1].rungs.clone()), (0..2, 2..3));
        assert_eq!((p[1].range, p[1].share), (None, (20.0, 100.0)));
    }

    #[test]
    fn ntsc_chunks_start_on_exact_frames() {
        let plan = Plan {
            fps: (30_000, 1001),
            ..ladder(2)
        };
        let p = passes(&plan, Some(70_000), SPLIT, 1);
        // 7 segments of 120 frames at 1001/30000 s: 28.028 s.
        assert_eq!(p[1].range, Some((0, 28_028_000_000)));
        assert_eq!(p[2].range, Some((28_028_000_000, u64::MAX)));
    }
}
