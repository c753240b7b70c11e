//! The last step: publishing. Rendition playlists are finished as VOD playlists, the master
//! playlist is written with bandwidths measured from the segments, and every file is stored
//! under `<id>/<version>/` through the configured storage. The record points at the version
//! only after this returns (the caller ends the job), so nobody sees half an output.

use std::path::Path;

use super::hls;
use super::job::key;
use super::steps::StepError;
use crate::domain::media::Variant;
use crate::domain::upload::UploadId;
use crate::media::Context;

/// One HLS rendition the steps left in the output directory.
#[derive(Debug, Clone)]
pub struct Rendition {
    /// Its directory, holding `index.m3u8` and the segments.
    pub dir: String,
    /// Width, height and frame rate; None when audio-only.
    pub picture: Option<(u32, u32, f64)>,
    /// RFC 6381 codecs.
    pub codecs: String,
}

/// One other file the steps left there.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The variant kind (`poster`, `thumbnail`, `image`, `animated`, `waveform`, ...).
    pub kind: &'static str,
    /// The file, relative to the output directory.
    pub path: String,
    pub mime: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
}

impl Output {
    pub fn picture(kind: &'static str, path: String, mime: &'static str, w: u32, h: u32) -> Output {
        Output {
            kind,
            path,
            mime,
            width: Some(w),
            height: Some(h),
            duration_ms: None,
        }
    }
}

/// What the steps produced.
#[derive(Debug, Default)]
pub struct Produced {
    /// Listed in a master playlist when there are any.
    pub renditions: Vec<Rendition>,
    pub files: Vec<Output>,
    /// The decoded frames' durations varied (the container may not say so).
    pub variable_frame_rate: bool,
    /// Audio's measured loudness.
    pub loudness: Option<crate::domain::media::Loudness>,
}

pub async fn publish(
    cx: &Context,
    id: &UploadId,
    version: &str,
    out: &Path,
    produced: &Produced,
) -> Result<Vec<Variant>, StepError> {
    let dir = key(id, Some(version));
    let put = |rel: String| {
        let dir = dir.clone();
        async move {
            let k = dir
                .join(&rel)
                .ok_or_else(|| StepError::permanent("publish", format!("bad output name {rel}")))?;
            Ok::<u64, StepError>(cx.storage.put_media(&k, &out.join(&rel)).await?)
        }
    };
    let mut variants = Vec::new();
    let mut entries = Vec::new();
    for r in &produced.renditions {
        let (entry, variant) = publish_rendition(out, r, &put).await?;
        entries.push(entry);
        variants.push(variant);
    }
    if !entries.is_empty() {
        let duration_ms = variants.first().and_then(|v| v.duration_ms);
        let master = publish_master(out, &entries, duration_ms, &put).await?;
        variants.insert(0, master);
    }
    for f in &produced.files {
        let bytes = put(f.path.clone()).await?;
        variants.push(Variant {
            kind: f.kind.into(),
            path: f.path.clone(),
            mime: Some(f.mime.into()),
            width: f.width,
            height: f.height,
            bitrate: None,
            bytes,
            duration_ms: f.duration_ms,
        });
    }
    Ok(variants)
}

/// Finishes one rendition's playlist and stores it with its segments through `put`; returns
/// its master playlist entry and its variant.
async fn publish_rendition<F: Future<Output = Result<u64, StepError>>>(
    out: &Path,
    r: &Rendition,
    put: &impl Fn(String) -> F,
) -> Result<(hls::Entry, Variant), StepError> {
    let rdir = &r.dir;
    let playlist_path = out.join(rdir).join("index.m3u8");
    let text = tokio::fs::read_to_string(&playlist_path)
        .await
        .map_err(|e| StepError::permanent("transcode", format!("no playlist for {rdir}: {e}")))?;
    let playlist = hls::vod(&text);
    let segments = hls::segments(&playlist);
    if segments.is_empty() {
        return Err(StepError::permanent(
            "transcode",
            format!("rendition {rdir} has no segments"),
        ));
    }
    let mut measured = Vec::with_capacity(segments.len());
    for (duration, uri) in &segments {
        // hlssink2 names segments by file name; anything else is not ours to publish.
        if uri.contains('/') {
            return Err(StepError::permanent(
                "transcode",
                format!("odd segment URI {uri}"),
            ));
        }
        let bytes = put(format!("{rdir}/{uri}")).await?;
        measured.push((*duration, bytes));
    }
    tokio::fs::write(&playlist_path, &playlist).await?;
    let playlist_bytes = put(format!("{rdir}/index.m3u8")).await?;
    let (peak, average) = hls::bandwidth(&measured);
    let total_ms = (segments.iter().map(|(d, _)| d).sum::<f64>() * 1000.0).round() as u64;
    let entry = hls::Entry {
        uri: format!("{rdir}/index.m3u8"),
        picture: r.picture,
        peak_bps: peak,
        average_bps: average,
        codecs: r.codecs.clone(),
    };
    let variant = Variant {
        kind: "rendition".into(),
        path: format!("{rdir}/index.m3u8"),
        mime: Some(hls::MIME.into()),
        width: r.picture.map(|p| p.0),
        height: r.picture.map(|p| p.1),
        bitrate: Some(average),
        bytes: playlist_bytes + measured.iter().map(|(_, b)| b).sum::<u64>(),
        duration_ms: Some(total_ms),
    };
    Ok((entry, variant))
}

/// Writes and stores the master playlist over `entries` (not empty); returns its variant,
/// described by the top entry and lasting `duration_ms`.
async fn publish_master<F: Future<Output = Result<u64, StepError>>>(
    out: &Path,
    entries: &[hls::Entry],
    duration_ms: Option<u64>,
    put: &impl Fn(String) -> F,
) -> Result<Variant, StepError> {
    let master = hls::master(entries);
    tokio::fs::write(out.join("master.m3u8"), &master).await?;
    let bytes = put("master.m3u8".into()).await?;
    let top = entries.last().expect("not empty");
    Ok(Variant {
        kind: "hls".into(),
        path: "master.m3u8".into(),
        mime: Some(hls::MIME.into()),
        width: top.picture.map(|p| p.0),
        height: top.picture.map(|p| p.1),
        bitrate: Some(top.peak_bps),
        bytes,
        duration_ms,
    })
}
