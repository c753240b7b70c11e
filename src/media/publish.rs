//! Step 4: publishing. The rendition playlists are finished as VOD playlists, the master
//! playlist is written with bandwidths measured from the segments, and every file is stored
//! under `<id>/<version>/` through the configured storage. The record points at the version
//! only after this returns (the caller ends the job), so nobody sees half a ladder.

use std::path::Path;

use super::hls;
use super::job::{Produced, key};
use super::record::Variant;
use super::steps::StepError;
use crate::app::App;
use crate::upload::UploadId;

pub async fn publish(
    app: &App,
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
            Ok::<u64, StepError>(app.storage.put_media(&k, &out.join(&rel)).await?)
        }
    };
    let mut variants = Vec::new();
    let mut entries = Vec::new();
    for (rdir, width, height, fps, codecs) in &produced.renditions {
        let playlist_path = out.join(rdir).join("index.m3u8");
        let text = tokio::fs::read_to_string(&playlist_path)
            .await
            .map_err(|e| {
                StepError::permanent("transcode", format!("no playlist for {rdir}: {e}"))
            })?;
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
        entries.push(hls::Entry {
            uri: format!("{rdir}/index.m3u8"),
            width: *width,
            height: *height,
            frame_rate: *fps,
            peak_bps: peak,
            average_bps: average,
            codecs: codecs.clone(),
        });
        variants.push(Variant {
            kind: "rendition".into(),
            path: format!("{rdir}/index.m3u8"),
            width: Some(*width),
            height: Some(*height),
            bitrate: Some(average),
            bytes: playlist_bytes + measured.iter().map(|(_, b)| b).sum::<u64>(),
            duration_ms: Some(total_ms),
        });
    }
    let master = hls::master(&entries);
    tokio::fs::write(out.join("master.m3u8"), &master).await?;
    let bytes = put("master.m3u8".into()).await?;
    variants.insert(
        0,
        Variant {
            kind: "hls".into(),
            path: "master.m3u8".into(),
            width: entries.last().map(|e| e.width),
            height: entries.last().map(|e| e.height),
            bitrate: entries.last().map(|e| e.peak_bps),
            bytes,
            duration_ms: variants.first().and_then(|v| v.duration_ms),
        },
    );
    for (i, (file, w, h)) in produced.images.iter().enumerate() {
        let bytes = put(file.clone()).await?;
        variants.push(Variant {
            kind: if i == 0 { "poster" } else { "thumbnail" }.into(),
            path: file.clone(),
            width: Some(*w),
            height: Some(*h),
            bitrate: None,
            bytes,
            duration_ms: None,
        });
    }
    Ok(variants)
}
