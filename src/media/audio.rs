//! Audio: loudness measured (EBU R128, `gst::audio::measure`) and normalised to
//! `--audio-loudness` without pushing the true peak over -1 dBTP; one AAC encode to an
//! audio-only HLS rendition and an M4A file; a waveform as a PNG (for any page) and as
//! audiowaveform JSON (for players such as peaks.js and wavesurfer); the cover art, if the
//! file carries one, as the poster.

use std::path::Path;
use std::sync::Arc;
#[cfg(feature = "media")]
use std::time::Duration;

use super::config::MediaConfig;
use super::job::Progress;
use super::publish::Produced;
use super::steps::StepError;
use crate::domain::media::Probe;

/// The waveform image's size.
pub const WAVEFORM: (u32, u32) = (1280, 200);
/// The true peak the gain may raise the sound to.
const PEAK_CEILING: f64 = -1.0;
/// How long decoding may stand still.
#[cfg(feature = "media")]
const STALL: Duration = Duration::from_secs(60);

/// The gain in dB that brings `loudness` to `target`, held so the true peak stays under the
/// ceiling; 0 for silence.
pub fn gain_db(loudness: f64, true_peak: f64, target: f64) -> f64 {
    if !loudness.is_finite() {
        return 0.0;
    }
    let want = target - loudness;
    let room = PEAK_CEILING - true_peak;
    want.min(room).clamp(-40.0, 40.0)
}

/// Blocks folded into `columns` (min, max) pairs.
pub fn columns(blocks: &[(f32, f32)], columns: usize) -> Vec<(f32, f32)> {
    if blocks.is_empty() || columns == 0 {
        return vec![(0.0, 0.0); columns];
    }
    (0..columns)
        .map(|c| {
            let from = c * blocks.len() / columns;
            let to = ((c + 1) * blocks.len() / columns)
                .max(from + 1)
                .min(blocks.len());
            blocks[from.min(blocks.len() - 1)..to]
                .iter()
                .fold((0f32, 0f32), |(lo, hi), (l, h)| (lo.min(*l), hi.max(*h)))
        })
        .collect()
}

#[cfg(feature = "media")]
pub async fn process(
    input: &Path,
    out: &Path,
    probe: &Probe,
    cfg: &MediaConfig,
    progress: Arc<Progress>,
) -> Result<Produced, StepError> {
    use super::gst::audio;
    use super::publish::{Output, Rendition};
    use crate::domain::media::Loudness;
    let facts = probe
        .audio
        .clone()
        .ok_or_else(|| StepError::permanent("no_audio", "the file has no audio stream"))?;
    let (input, out, duration_ms) = (input.to_owned(), out.to_owned(), probe.duration_ms);
    let (target, segment, widths) = (
        cfg.audio_loudness,
        cfg.hls_segment,
        cfg.thumb_widths.clone(),
    );
    super::job::blocking(move || {
        let half = super::job::budget(duration_ms) / 2;
        let measured = {
            let report = |p: f32| progress.report(p * 0.4);
            let w = pass_watch(duration_ms, half, &progress, &report);
            audio::measure(&input, facts.channels, &w)?
        };
        super::video::truncated(duration_ms, measured.decoded_ms)?;
        let gain = gain_db(measured.loudness, measured.true_peak, target);
        let encoded = {
            let report = |p: f32| progress.report(40.0 + p * 0.55);
            let w = pass_watch(duration_ms, half, &progress, &report);
            audio::encode(&input, &out, facts.channels, gain, segment, &w)?
        };
        let mut files = vec![Output {
            kind: "audio",
            path: "audio.m4a".into(),
            mime: "audio/mp4",
            width: None,
            height: None,
            duration_ms: Some(encoded.decoded_ms),
        }];
        files.extend(waveform(&measured.blocks, gain, &out)?);
        if let Some(cover) = &measured.cover {
            match super::images::cover(cover, &widths, &out) {
                Ok(made) => files.extend(made),
                Err(e) => tracing::info!("the cover art is not used: {}", e.message),
            }
        }
        Ok(Produced {
            renditions: vec![Rendition {
                dir: encoded.hls_dir,
                picture: None,
                codecs: "mp4a.40.2".into(),
                audio_group: false,
            }],
            files,
            variable_frame_rate: false,
            loudness: Some(Loudness {
                integrated_lufs: Some(measured.loudness).filter(|l| l.is_finite()),
                true_peak_dbtp: (measured.true_peak * 100.0).round() / 100.0,
                gain_db: (gain * 100.0).round() / 100.0,
            }),
        })
    })
    .await
}

/// The watch of one of the two passes: `budget`, the stall limit, the job's cancel flag, and
/// `report` for progress.
#[cfg(feature = "media")]
fn pass_watch<'a>(
    duration_ms: Option<u64>,
    budget: Duration,
    progress: &'a Progress,
    report: &'a (dyn Fn(f32) + Sync),
) -> super::gst::watch::Watch<'a> {
    super::gst::watch::Watch {
        duration_ms,
        from_ms: 0,
        budget,
        stall: STALL,
        cancel: &progress.cancel,
        progress: report,
    }
}

/// Draws the waveform of the measured `blocks`, with `gain` applied, as `waveform.png` and
/// `waveform.json` under `out`; returns the two files.
#[cfg(feature = "media")]
fn waveform(
    blocks: &[(f32, f32)],
    gain: f64,
    out: &Path,
) -> Result<Vec<super::publish::Output>, StepError> {
    use super::publish::Output;
    let mut files = Vec::new();
    let cols = columns(blocks, WAVEFORM.0 as usize);
    let scale = 10f64.powf(gain / 20.0) as f32;
    let cols: Vec<(f32, f32)> = cols
        .iter()
        .map(|(lo, hi)| ((lo * scale).max(-1.0), (hi * scale).min(1.0)))
        .collect();
    super::waveform::png(&cols, WAVEFORM, &out.join("waveform.png"))?;
    files.push(Output::picture(
        "waveform",
        "waveform.png".into(),
        "image/png",
        WAVEFORM.0,
        WAVEFORM.1,
    ));
    let samples_per_column = blocks.len() * super::gst::audio::BLOCK / cols.len().max(1);
    super::waveform::json(&cols, samples_per_column, &out.join("waveform.json"))?;
    files.push(Output {
        kind: "waveform-data",
        path: "waveform.json".into(),
        mime: "application/json",
        width: Some(WAVEFORM.0),
        height: None,
        duration_ms: None,
    });
    Ok(files)
}

#[cfg(not(feature = "media"))]
pub async fn process(
    _input: &Path,
    _out: &Path,
    _probe: &Probe,
    _cfg: &MediaConfig,
    _progress: Arc<Progress>,
) -> Result<Produced, StepError> {
    Err(super::job::unsupported())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_reaches_the_target_without_clipping() {
        assert_eq!(gain_db(-23.0, -10.0, -16.0), 7.0);
        assert_eq!(gain_db(-10.0, -0.5, -16.0), -6.0);
        // A quiet track with loud peaks is raised only as far as the ceiling.
        assert_eq!(gain_db(-30.0, -4.0, -16.0), 3.0);
        assert_eq!(gain_db(f64::NEG_INFINITY, -100.0, -16.0), 0.0);
    }

    #[test]
    fn columns_cover_every_block() {
        let blocks: Vec<(f32, f32)> = (0..10)
            .map(|i| (-(i as f32) / 10.0, i as f32 / 10.0))
            .collect();
        let c = columns(&blocks, 5);
        assert_eq!(c.len(), 5);
        assert_eq!(c[4], (-0.9, 0.9));
        assert_eq!(columns(&blocks[..2], 4).len(), 4);
        assert_eq!(columns(&[], 3), vec![(0.0, 0.0); 3]);
    }
}
