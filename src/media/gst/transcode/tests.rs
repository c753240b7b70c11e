//! Chunks of a video transcoded apart continue each other: each starts at its exact frame
//! (wherever the source's keyframes are), carries the source's times, and the segments of one
//! chunk end where the next chunk's begin.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{Job, run};
use crate::media::ts::video_pts;
use crate::media::{extras, gst::probe, hls, plan};

#[test]
fn chunks_continue_each_other() {
    let dir = tempfile::tempdir().unwrap();
    // 8 s at 30 fps; its own keyframes fall where x264's defaults put them, not on 4 s.
    let clip = testkit::media::Clip::new(320, 240, 8).make(dir.path(), "c.mp4");
    let probe = probe::probe(&clip, Duration::from_secs(30)).unwrap();
    let facts = probe.video.clone().unwrap();
    let plan = plan::plan(&facts, &[240], 2);
    let extras = extras::plan(&plan, probe.duration_ms.unwrap(), false);
    let cancel = AtomicBool::new(false);
    let mut pts = Vec::new();
    for (i, (from, to)) in [(0u64, 3u64), (3, 8)].into_iter().enumerate() {
        let out = dir.path().join(format!("chunk{i}"));
        std::fs::create_dir_all(&out).unwrap();
        let s = 1_000_000_000;
        run(&Job {
            input: &clip,
            out_dir: &out,
            probe: &probe,
            plan: &plan,
            rungs: 0..1,
            stills: false,
            extras: &extras,
            segment: 2,
            sound: plan::Sound::Without,
            range: Some((from * s, to * s)),
            budget: Duration::from_secs(120),
            stall: Duration::from_secs(60),
            cancel: &cancel,
            progress: &|_| {},
        })
        .unwrap();
        let text = std::fs::read_to_string(out.join("r0/index.m3u8")).unwrap();
        for (_, uri) in hls::segments(&text) {
            let frames = video_pts(&std::fs::read(out.join("r0").join(&uri)).unwrap());
            assert!(!frames.is_empty(), "chunk {i}: {uri} is empty:\n{text}");
            pts.extend(frames);
        }
    }
    // 240 frames one every 3000 ticks from the muxer's base (3600 s): none missing, none
    // repeated, none shifted at the join (in presentation order: B-frames come later in the
    // files than the frames after them).
    assert_eq!(pts.len(), 240, "{pts:?}");
    pts.sort_unstable();
    let base = 3600 * 90_000;
    for (i, p) in pts.iter().enumerate() {
        let want = base + i as u64 * 3000;
        assert!(p.abs_diff(want) <= 1, "frame {i}: pts {p}, expected {want}");
    }
}
