//! A long video fans out in chunks and plays straight through: a 2-minute clip is PLAYABLE
//! (the lowest rung, the stills and its sound) before it is READY; its upper rungs are made in
//! chunks of 30 s (15 segments of 2 s), joined into playlists whose every frame follows
//! the one before across the joins (ffprobe over HTTP), numbered and timed right; its sound is
//! one rendition of its own, the master's audio group, whose packets follow each other with
//! no gap from start to end.
#![cfg(feature = "media")]

use std::process::Command;
use std::time::Duration;

use testkit::media::Clip;

mod common;
use common::media::*;

const SECONDS: u32 = 120;
const FPS: u64 = 30;

/// (pts, duration; -1 when not known) of each packet of the first stream of `kind` (`v` or
/// `a`) at `url`, in 90 kHz ticks, in the order ffprobe reads them.
fn packets(url: &str, kind: &str) -> Vec<(i64, i64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0")])
        .args([
            "-show_entries",
            "packet=pts,duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .expect("ffprobe runs (scripts/test.sh installs ffmpeg)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split(',').map(|v| v.trim().parse::<i64>().unwrap_or(-1));
            (f.next().unwrap(), f.next().unwrap_or(-1))
        })
        .collect()
}

#[test]
fn a_two_minute_clip_is_chunked_and_plays_straight_through_the_joins() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    // 640x360 under a ladder of 144, 240 and 360: three rungs, cheap to make. One slot, so the
    // first task comes first and the clip is PLAYABLE while the chunks run.
    let args = [
        "--media-workers",
        "1",
        "--media-fast-workers",
        "0",
        "--hls-ladder",
        "144,240,360",
        "--media-chunk",
        "30s",
    ];
    let t = start(dir.path(), &args);
    let clip = std::fs::read(Clip::new(640, 360, SECONDS).make(clips.path(), "long.mp4")).unwrap();
    let id = upload(&t.addr, &clip, "long.mp4", "video/mp4");
    let (early, done) = follow(&t.addr, &id, Duration::from_secs(600));
    assert_eq!(done["status"], "READY", "{done}");
    let early = early.unwrap_or_else(|| panic!("never PLAYABLE: {done}"));

    // The tasks: the first (the lowest rung, stills, sound), then four chunks of 30 s, each
    // once.
    let tasks: Vec<(String, String, u64)> = done["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap().to_owned();
            (s("name"), s("status"), t["attempts"].as_u64().unwrap())
        })
        .collect();
    let want = [
        "144p",
        "chunk1 0:00-0:30",
        "chunk2 0:30-1:00",
        "chunk3 1:00-1:30",
        "chunk4 1:30-end",
    ];
    assert_eq!(
        tasks,
        want.map(|n| (n.to_owned(), "DONE".to_owned(), 1)),
        "{done}"
    );

    // PLAYABLE: a fifth of the way or more, with a time left; the lowest rung with the sound
    // as its audio group.
    let p = early["progress"].as_f64().unwrap();
    assert!((20.0..100.0).contains(&p), "{early}");
    assert!(early["eta_seconds"].as_u64().is_some(), "{early}");
    assert!(done["eta_seconds"].is_null(), "{done}");
    let early_master = path_of(variants(&early, "hls")[0]["url"].as_str().unwrap());
    let text = String::from_utf8(get(&t.addr, &early_master)).unwrap();
    assert!(text.contains("TYPE=AUDIO,GROUP-ID=\"audio\""), "{text}");
    assert_eq!(text.matches("#EXT-X-STREAM-INF").count(), 1, "{text}");

    // READY: every rung names the audio group and lists both codecs.
    let master = path_of(variants(&done, "hls")[0]["url"].as_str().unwrap());
    let text = String::from_utf8(get(&t.addr, &master)).unwrap();
    let rungs: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rungs,
        ["r0/index.m3u8", "r1/index.m3u8", "r2/index.m3u8"],
        "{text}"
    );
    assert_eq!(
        text.matches(",mp4a.40.2\",AUDIO=\"audio\"").count(),
        3,
        "{text}"
    );
    let base = format!("http://{}{}", t.addr, master.rsplit_once('/').unwrap().0);

    // Every rung: each of the source's frames once, one frame time after the one before,
    // across every join; its playlist's durations add up to the source's within a frame.
    let frames = u64::from(SECONDS) * FPS;
    let tick = (90_000 / FPS) as i64;
    for rung in &rungs {
        let mut pts: Vec<i64> = packets(&format!("{base}/{rung}"), "v")
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(pts.len() as u64, frames, "{rung}");
        pts.sort_unstable();
        for w in pts.windows(2) {
            assert!(
                (w[1] - w[0] - tick).abs() <= 1,
                "{rung}: a frame at {} follows one at {}",
                w[1],
                w[0]
            );
        }
        let playlist = String::from_utf8(get(
            &t.addr,
            &format!("{}/{rung}", master.rsplit_once('/').unwrap().0),
        ))
        .unwrap();
        let listed: f64 = playlist
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|d| d.split(',').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(
            (listed - f64::from(SECONDS)).abs() <= 1.0 / FPS as f64 + 1e-6,
            "{rung}: {listed} s"
        );
        assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    }
    // The chunked rungs' segments are numbered through: 60 of 2 s.
    let r2 = String::from_utf8(get(
        &t.addr,
        &format!("{}/r2/index.m3u8", master.rsplit_once('/').unwrap().0),
    ))
    .unwrap();
    let names: Vec<&str> = r2.lines().filter(|l| l.ends_with(".ts")).collect();
    let numbered: Vec<String> = (0..60).map(|i| format!("seg{i:05}.ts")).collect();
    assert_eq!(names, numbered, "{r2}");

    // The sound: one rendition, its packets following each other with no gap or overlap from
    // start to end, as long as the clip.
    let audio: Vec<i64> = packets(&format!("{base}/audio/index.m3u8"), "a")
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert!(!audio.is_empty());
    // An AAC frame: 1024 samples at 48 kHz, in 90 kHz ticks.
    let frame = 1024 * 90_000 / 48_000;
    for w in audio.windows(2) {
        assert!(
            (w[1] - w[0] - frame).abs() <= 2,
            "a gap in the sound: a frame at {} after one at {}",
            w[1],
            w[0]
        );
    }
    let heard = (audio[audio.len() - 1] + frame - audio[0]) as f64 / 90_000.0;
    assert!(
        (heard - f64::from(SECONDS)).abs() < 0.1,
        "{heard} s of sound"
    );
    // And the whole master decodes without an error.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", &format!("http://{}{master}", t.addr)])
        .args(["-map", "0:v:0", "-map", "0:a:0", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
