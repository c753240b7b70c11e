//! The last step: publishing. Rendition playlists are finished as VOD playlists, the master
//! playlist is written with bandwidths measured from the segments, and every file is stored
//! under `<id>/<version>/` through the configured storage. The record points at the version
//! only after this returns (the caller ends the job), so nobody sees half an output.

use std::path::Path;

use super::hls;
use super::job::key;
use super::steps::StepError;
use crate::domain::media::{Published, Variant};
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
    /// The video's sound in a rendition of its own: the master's audio group.
    pub audio_group: bool,
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

/// Publishes a run's outputs under `<id>/<version>/`, in one go or in stages: each `add`
/// stores what a stage produced, and `master` writes a master playlist over every rendition
/// stored so far, returning what is then published. A stage's master has a name of its own
/// (`playable.m3u8`, then `master.m3u8`): every stored file is written once, so players and
/// caches that hold an early one keep what they loaded.
#[derive(Debug)]
pub struct Publisher<'a> {
    cx: &'a Context,
    id: &'a UploadId,
    version: String,
    out: &'a Path,
    entries: Vec<hls::Entry>,
    variants: Vec<Variant>,
}

impl<'a> Publisher<'a> {
    pub fn new(cx: &'a Context, id: &'a UploadId, version: String, out: &'a Path) -> Self {
        Publisher {
            cx,
            id,
            version,
            out,
            entries: Vec::new(),
            variants: Vec::new(),
        }
    }

    /// A publisher that goes on from what others stored under `version` (a job's tasks):
    /// `entries` and `variants` are what their `parts` returned.
    pub fn resume(
        cx: &'a Context,
        id: &'a UploadId,
        version: String,
        out: &'a Path,
        (entries, variants): (Vec<hls::Entry>, Vec<Variant>),
    ) -> Self {
        Publisher {
            entries,
            variants,
            ..Publisher::new(cx, id, version, out)
        }
    }

    /// What was stored so far: the renditions' master playlist entries, and every variant.
    pub fn parts(self) -> (Vec<hls::Entry>, Vec<Variant>) {
        (self.entries, self.variants)
    }

    /// Stores the file `rel` of the output directory under the version; returns its size.
    pub async fn put(&self, rel: String) -> Result<u64, StepError> {
        let k = key(self.id, Some(&self.version))
            .join(&rel)
            .ok_or_else(|| StepError::permanent("publish", format!("bad output name {rel}")))?;
        Ok(self.cx.storage.put_media(&k, &self.out.join(&rel)).await?)
    }

    /// Stores what a stage produced.
    pub async fn add(&mut self, produced: &Produced) -> Result<(), StepError> {
        for r in &produced.renditions {
            let (entry, variant) = publish_rendition(self.out, r, &|rel| self.put(rel)).await?;
            self.entries.push(entry);
            self.variants.push(variant);
        }
        for f in &produced.files {
            let bytes = self.put(f.path.clone()).await?;
            self.variants.push(Variant {
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
        Ok(())
    }

    /// Stores the playlist of rendition `r` joined from `segments` (stored already, by the
    /// chunks that made them; in order).
    pub async fn add_joined(
        &mut self,
        r: &Rendition,
        segments: &[hls::Segment],
    ) -> Result<(), StepError> {
        let rel = format!("{}/index.m3u8", r.dir);
        let path = self.out.join(&rel);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::write(&path, hls::joined(segments)).await?;
        let playlist_bytes = self.put(rel).await?;
        let measured: Vec<(f64, u64)> = segments.iter().map(|s| (s.duration, s.bytes)).collect();
        let (entry, variant) = rendition_parts(r, &measured, playlist_bytes);
        self.entries.push(entry);
        self.variants.push(variant);
        Ok(())
    }

    /// What is published so far, led by a master playlist named `name` over the renditions
    /// (none without renditions). Renditions are listed lowest first.
    pub async fn master(&self, name: &str) -> Result<Published, StepError> {
        let mut variants = Vec::with_capacity(self.variants.len() + 1);
        if !self.entries.is_empty() {
            let mut entries = self.entries.clone();
            entries.sort_by_key(|e| e.picture.map(|p| p.0 as u64 * p.1 as u64));
            let duration_ms = self
                .variants
                .iter()
                .find(|v| v.kind == "rendition")
                .and_then(|v| v.duration_ms);
            let master = hls::master(&entries);
            tokio::fs::write(self.out.join(name), &master).await?;
            let bytes = self.put(name.into()).await?;
            let top = entries.last().expect("not empty");
            variants.push(Variant {
                kind: "hls".into(),
                path: name.into(),
                mime: Some(hls::MIME.into()),
                width: top.picture.map(|p| p.0),
                height: top.picture.map(|p| p.1),
                bitrate: Some(top.peak_bps),
                bytes,
                duration_ms,
            });
        }
        let mut renditions: Vec<&Variant> = self
            .variants
            .iter()
            .filter(|v| v.kind == "rendition")
            .collect();
        renditions.sort_by_key(|v| v.width.unwrap_or(0) as u64 * v.height.unwrap_or(0) as u64);
        variants.extend(renditions.into_iter().cloned());
        variants.extend(
            self.variants
                .iter()
                .filter(|v| v.kind != "rendition")
                .cloned(),
        );
        Ok(Published {
            version: self.version.clone(),
            variants,
        })
    }
}

/// Publishes `produced` in one stage under `<id>/<version>/` with `master.m3u8`.
pub async fn publish(
    cx: &Context,
    id: &UploadId,
    version: &str,
    out: &Path,
    produced: &Produced,
) -> Result<Vec<Variant>, StepError> {
    let mut p = Publisher::new(cx, id, version.to_owned(), out);
    p.add(produced).await?;
    Ok(p.master(MASTER).await?.variants)
}

/// The master playlist of a finished run.
pub const MASTER: &str = "master.m3u8";
/// The master playlist of a video's early stage: the rungs done first.
pub const PLAYABLE_MASTER: &str = "playable.m3u8";

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
    Ok(rendition_parts(r, &measured, playlist_bytes))
}

/// The master playlist entry and the variant of rendition `r`, from its segments' (duration
/// s, bytes) and its playlist's size.
fn rendition_parts(
    r: &Rendition,
    measured: &[(f64, u64)],
    playlist_bytes: u64,
) -> (hls::Entry, Variant) {
    let rdir = &r.dir;
    let (peak, average) = hls::bandwidth(measured);
    let total_ms = (measured.iter().map(|(d, _)| d).sum::<f64>() * 1000.0).round() as u64;
    let entry = hls::Entry {
        uri: format!("{rdir}/index.m3u8"),
        picture: r.picture,
        peak_bps: peak,
        average_bps: average,
        codecs: r.codecs.clone(),
        audio_group: r.audio_group,
    };
    let kind = if r.audio_group {
        "audio-rendition"
    } else {
        "rendition"
    };
    let variant = Variant {
        kind: kind.into(),
        path: format!("{rdir}/index.m3u8"),
        mime: Some(hls::MIME.into()),
        width: r.picture.map(|p| p.0),
        height: r.picture.map(|p| p.1),
        bitrate: Some(average),
        bytes: playlist_bytes + measured.iter().map(|(_, b)| b).sum::<u64>(),
        duration_ms: Some(total_ms),
    };
    (entry, variant)
}
