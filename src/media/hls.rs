//! HLS text: the media playlists hlssink2 writes are made VOD playlists, and the master
//! playlist (which hlssink2 does not write) is built here, with bandwidths measured from the
//! segments and RFC 6381 codec strings. Pure text handling, unit-tested.

use std::fmt::Write as _;

/// The media type of playlists.
pub const MIME: &str = "application/vnd.apple.mpegurl";

/// A rendition's entry in the master playlist.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The media playlist, relative to the master.
    pub uri: String,
    /// Width, height and frame rate; None for an audio-only rendition.
    pub picture: Option<(u32, u32, f64)>,
    /// Peak and average bits per second over the segments.
    pub peak_bps: u64,
    pub average_bps: u64,
    /// RFC 6381, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    /// The sound of a video whose renditions carry none: listed as the master's audio group
    /// (`EXT-X-MEDIA`), which every video rendition then names.
    #[serde(default)]
    pub audio_group: bool,
}

/// The group ID of a video's separate sound.
pub const AUDIO_GROUP: &str = "audio";

/// One segment of a joined media playlist.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Its number in the rendition: segments play in this order.
    pub index: u64,
    pub uri: String,
    /// Seconds.
    pub duration: f64,
    pub bytes: u64,
}

/// A VOD media playlist over `segments` (in order), as chunks' segments are joined.
pub fn joined(segments: &[Segment]) -> String {
    let target = segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:{target}\n"
    );
    for s in segments {
        let _ = writeln!(out, "#EXTINF:{:.6},\n{}", s.duration, s.uri);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// The segments of a media playlist: (duration in seconds, URI).
pub fn segments(playlist: &str) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    let mut pending: Option<f64> = None;
    for line in playlist.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            pending = rest.split(',').next().and_then(|d| d.trim().parse().ok());
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some(d) = pending.take()
        {
            out.push((d, line.to_owned()));
        }
    }
    out
}

/// Drops a chunk's first segment when it is empty (`#EXTINF:0,`): the fragment its preroll
/// opens before the seek holds no frame. Returns the playlist and the dropped segment's URI.
pub fn drop_preroll(playlist: &str) -> (String, Option<String>) {
    let mut out = String::with_capacity(playlist.len());
    let (mut seen, mut dropping, mut dropped) = (false, false, None);
    for line in playlist.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("#EXTINF:") {
            let first = !seen;
            seen = true;
            let d: f64 = rest
                .split(',')
                .next()
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(1.0);
            dropping = first && d == 0.0;
            if dropping {
                continue;
            }
        } else if dropping && !t.is_empty() && !t.starts_with('#') {
            dropped = Some(t.to_owned());
            dropping = false;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, dropped)
}

/// Makes hlssink2's playlist a finished VOD playlist: `EXT-X-PLAYLIST-TYPE:VOD` after the
/// version line and `EXT-X-ENDLIST` at the end.
pub fn vod(playlist: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    let mut typed = playlist.contains("#EXT-X-PLAYLIST-TYPE");
    for line in playlist.lines() {
        let line = line.trim_end();
        out.push_str(line);
        out.push('\n');
        if !typed
            && (line.starts_with("#EXT-X-VERSION")
                || line == "#EXTM3U" && !playlist.contains("#EXT-X-VERSION"))
        {
            out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
            typed = true;
        }
    }
    if !playlist.contains("#EXT-X-ENDLIST") {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// Peak and average bit rates of segments of (duration s, bytes). Segments shorter than half a
/// second (a clip's last one) do not set the peak: their rate says little.
pub fn bandwidth(segments: &[(f64, u64)]) -> (u64, u64) {
    let total_s: f64 = segments.iter().map(|(d, _)| d).sum();
    let total_b: u64 = segments.iter().map(|(_, b)| b).sum();
    let average = if total_s > 0.0 {
        (total_b as f64 * 8.0 / total_s).round() as u64
    } else {
        0
    };
    let peak = segments
        .iter()
        .filter(|(d, _)| *d >= 0.5)
        .map(|(d, b)| (*b as f64 * 8.0 / d).round() as u64)
        .max()
        .unwrap_or(average)
        .max(average);
    (peak, average)
}

/// `avc1.PPCCLL` for an H.264 profile name and level (as x264enc's caps name them).
pub fn avc1(profile: &str, level: &str) -> String {
    let (idc, constraints) = match profile {
        "constrained-baseline" => (66, 0xC0),
        "baseline" => (66, 0x80),
        "main" => (77, 0x40),
        "high" => (100, 0),
        "high-10" => (110, 0),
        "high-4:2:2" => (122, 0),
        "high-4:4:4" => (244, 0),
        _ => (100, 0),
    };
    let level = match level {
        "1b" => 9,
        l => l
            .parse::<f64>()
            .map(|l| (l * 10.0).round() as u32)
            .unwrap_or(40),
    };
    format!("avc1.{idc:02x}{constraints:02x}{level:02x}")
}

/// The master playlist over `entries` (listed as given). An entry of the audio group is
/// listed as the group's one rendition, and every video rendition names the group, with the
/// group's codec and bandwidth added to its own.
pub fn master(entries: &[Entry]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let group = entries.iter().find(|e| e.audio_group);
    if let Some(a) = group {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{}\"",
            a.uri
        );
    }
    for e in entries.iter().filter(|e| !e.audio_group) {
        let picture = match e.picture {
            Some((w, h, fps)) => format!(",RESOLUTION={w}x{h},FRAME-RATE={fps:.3}"),
            None => String::new(),
        };
        let (mut peak, mut average, mut codecs, mut audio) =
            (e.peak_bps, e.average_bps, e.codecs.clone(), String::new());
        if let Some(a) = group {
            peak += a.peak_bps;
            average += a.average_bps;
            codecs = format!("{codecs},{}", a.codecs);
            audio = format!(",AUDIO=\"{AUDIO_GROUP}\"");
        }
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average}{picture},CODECS=\"{codecs}\"{audio}\n{}",
            e.uri
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SINK: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-ALLOW-CACHE:NO\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:4\n\n#EXTINF:4.0,\nsegment00000.ts\n#EXTINF:1.5,\nsegment00001.ts\n";

    #[test]
    fn vod_playlists_are_typed_and_ended() {
        let v = vod(SINK);
        assert!(v.contains("#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(v.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(vod(&v), v, "idempotent");
        assert_eq!(
            segments(&v),
            [
                (4.0, "segment00000.ts".to_owned()),
                (1.5, "segment00001.ts".to_owned())
            ]
        );
    }

    #[test]
    fn a_chunks_empty_first_fragment_is_dropped() {
        let chunk = "#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:0,\nseg00003.ts\n#EXTINF:2,\nseg00004.ts\n#EXTINF:0,\nseg00005.ts\n";
        let (kept, dropped) = drop_preroll(chunk);
        assert_eq!(dropped.as_deref(), Some("seg00003.ts"));
        // A one-frame last segment says 0 too, and is kept.
        assert_eq!(
            segments(&kept),
            [
                (2.0, "seg00004.ts".to_owned()),
                (0.0, "seg00005.ts".to_owned())
            ]
        );
        assert_eq!(
            drop_preroll(SINK),
            (SINK.to_owned(), None),
            "nothing else changes"
        );
    }

    #[test]
    fn bandwidth_is_measured() {
        let (peak, avg) = bandwidth(&[(4.0, 500_000), (4.0, 1_000_000), (0.2, 90_000)]);
        assert_eq!(peak, 2_000_000);
        assert_eq!(avg, ((1_590_000.0 * 8.0) / 8.2f64).round() as u64);
    }

    #[test]
    fn codec_strings() {
        assert_eq!(avc1("high", "4"), "avc1.640028");
        assert_eq!(avc1("main", "3.1"), "avc1.4d401f");
        assert_eq!(avc1("constrained-baseline", "3"), "avc1.42c01e");
    }

    #[test]
    fn master_lists_every_rendition() {
        let m = master(&[Entry {
            uri: "r0/index.m3u8".into(),
            picture: Some((640, 360, 30.0)),
            peak_bps: 900_000,
            average_bps: 800_000,
            codecs: "avc1.64001e,mp4a.40.2".into(),
            audio_group: false,
        }]);
        assert!(m.contains("BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.64001e,mp4a.40.2\"\nr0/index.m3u8\n"));
        let audio = master(&[Entry {
            uri: "a/index.m3u8".into(),
            picture: None,
            peak_bps: 140_000,
            average_bps: 130_000,
            codecs: "mp4a.40.2".into(),
            audio_group: false,
        }]);
        assert!(audio.contains("#EXT-X-STREAM-INF:BANDWIDTH=140000,AVERAGE-BANDWIDTH=130000,CODECS=\"mp4a.40.2\"\na/index.m3u8\n"));
    }

    #[test]
    fn a_separate_sound_is_the_renditions_audio_group() {
        let m = master(&[
            Entry {
                uri: "audio/index.m3u8".into(),
                picture: None,
                peak_bps: 140_000,
                average_bps: 130_000,
                codecs: "mp4a.40.2".into(),
                audio_group: true,
            },
            Entry {
                uri: "r0/index.m3u8".into(),
                picture: Some((640, 360, 30.0)),
                peak_bps: 900_000,
                average_bps: 800_000,
                codecs: "avc1.64001e".into(),
                audio_group: false,
            },
        ]);
        assert!(m.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/index.m3u8\"\n"), "{m}");
        assert!(m.contains("#EXT-X-STREAM-INF:BANDWIDTH=1040000,AVERAGE-BANDWIDTH=930000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio\"\nr0/index.m3u8\n"), "{m}");
        assert_eq!(m.matches("#EXT-X-STREAM-INF").count(), 1);
    }

    #[test]
    fn joined_playlists_list_their_segments_in_order() {
        let seg = |index, duration| Segment {
            index,
            uri: format!("seg{index:05}.ts"),
            duration,
            bytes: 1,
        };
        let p = joined(&[seg(0, 4.0), seg(1, 4.0), seg(2, 1.5)]);
        assert!(p.contains("#EXT-X-TARGETDURATION:4\n"));
        assert!(
            p.ends_with("#EXTINF:1.500000,\nseg00002.ts\n#EXT-X-ENDLIST\n"),
            "{p}"
        );
        assert_eq!(segments(&p).len(), 3);
    }
}
