//! Media fixtures made on the spot with GStreamer's `gst-launch-1.0` (videotestsrc,
//! audiotestsrc): short clips of the kinds phones and cameras produce.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A clip to make.
#[derive(Debug, Clone)]
pub struct Clip {
    pub width: u32,
    pub height: u32,
    pub seconds: u32,
    pub fps: u32,
    pub audio: bool,
    /// A display matrix turning the picture clockwise (90: a portrait phone video).
    pub rotation: Option<u32>,
    /// Drop frames at random: frame durations vary.
    pub variable_rate: bool,
    /// The video codec: `h264` (8-bit 4:2:0), `h264-444` (4:4:4, odd sizes allowed),
    /// `hevc-10` (10-bit HEVC), `mpeg4` (MPEG-4 part 2 with MP3 audio, in AVI), `vp9` (in WebM, no audio).
    pub codec: &'static str,
    /// Container tags (title, location) that must not reach any output.
    pub tags: bool,
    /// The index (moov) before the media data, as streaming-friendly MP4s have it.
    pub faststart: bool,
    /// Interlaced H.264 (two fields per frame, as camcorders record).
    pub interlaced: bool,
}

impl Clip {
    pub fn new(width: u32, height: u32, seconds: u32) -> Clip {
        Clip {
            width,
            height,
            seconds,
            fps: 30,
            audio: true,
            rotation: None,
            variable_rate: false,
            codec: "h264",
            tags: false,
            faststart: false,
            interlaced: false,
        }
    }

    /// Writes the clip (MP4; WebM for VP9, AVI for MPEG-4 part 2) into `dir` under `name`.
    pub fn make(&self, dir: &Path, name: &str) -> PathBuf {
        let out = dir.join(name);
        let frames = self.seconds * self.fps;
        let mut video = format!(
            "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width={},height={},framerate={}/1",
            self.width, self.height, self.fps
        );
        if self.interlaced {
            video.push_str(" ! interlace field-pattern=1:1 top-field-first=true");
        }
        if self.variable_rate {
            video.push_str(" ! identity drop-probability=0.3");
        }
        video.push_str(match self.codec {
            "h264" if self.interlaced => " ! videoconvert ! video/x-raw,format=I420 ! x264enc interlaced=true speed-preset=ultrafast ! h264parse",
            "h264" => " ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=ultrafast ! h264parse",
            "h264-444" => " ! videoconvert ! video/x-raw,format=Y444 ! x264enc speed-preset=ultrafast ! h264parse",
            "hevc-10" => " ! videoconvert ! video/x-raw,format=I420_10LE ! x265enc speed-preset=ultrafast ! h265parse",
            "mpeg4" => " ! videoconvert ! avenc_mpeg4 bitrate=800000 ! mpeg4videoparse",
            "vp9" => " ! videoconvert ! vp9enc deadline=1 cpu-used=8",
            other => panic!("codec {other}"),
        });
        let muxer = match self.codec {
            "vp9" => "webmmux",
            "mpeg4" => "avimux",
            _ => "mp4mux",
        };
        if self.tags {
            video.push_str(
                " ! taginject tags=title=secrettitle,geo-location-latitude=48.8584,device-manufacturer=SecretPhone",
            );
        }
        let faststart = if self.faststart && muxer == "mp4mux" {
            " faststart=true"
        } else {
            ""
        };
        let mut line = format!(
            "{video} ! mux. {muxer} name=mux{faststart} ! filesink location={}",
            out.display()
        );
        if self.audio && self.codec != "vp9" {
            let buffers = self.seconds * 48_000 / 1024;
            line.push_str(&format!(
                " audiotestsrc num-buffers={buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! {} ! mux.",
                if self.codec == "mpeg4" { "lamemp3enc" } else { "voaacenc ! aacparse" }
            ));
        }
        let status = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(line.split_whitespace())
            .status()
            .expect("gst-launch-1.0 runs (GStreamer is installed by scripts/test.sh)");
        assert!(status.success(), "gst-launch-1.0 {line}");
        if let Some(deg) = self.rotation {
            rotate_mp4(&out, deg);
        }
        out
    }
}

/// Writes an iPhone-style display matrix (rotation by `degrees` clockwise: 90, 180 or 270)
/// into the first video track header (`tkhd` with a picture size) of an MP4, as phones record
/// portrait video: the coded picture stays landscape.
pub fn rotate_mp4(path: &Path, degrees: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    let one = 1i32 << 16;
    let (a, b, c, d) = match degrees {
        90 => (0, one, -one, 0),
        180 => (-one, 0, 0, -one),
        270 => (0, -one, one, 0),
        _ => panic!("rotation {degrees}"),
    };
    let matrix = [a, b, 0, c, d, 0, 0, 0, 1 << 30];
    let mut at = 0;
    loop {
        let pos = bytes[at..]
            .windows(4)
            .position(|w| w == b"tkhd")
            .expect("a video track header")
            + at;
        let version = bytes[pos + 4];
        // Matrix offset from the box type: version/flags 4, times and ids (v0: 20, v1: 32),
        // reserved 8, layer, group, volume, reserved 8.
        let m = pos + 4 + 4 + if version == 1 { 32 } else { 20 } + 8 + 8;
        let width = u32::from_be_bytes(bytes[m + 36..m + 40].try_into().unwrap());
        if width != 0 {
            for (i, v) in matrix.iter().enumerate() {
                bytes[m + i * 4..m + i * 4 + 4].copy_from_slice(&v.to_be_bytes());
            }
            break;
        }
        at = pos + 4;
    }
    std::fs::write(path, bytes).unwrap();
}

/// `seconds` of a stereo 440 Hz tone at -20 dBFS, encoded by `encoder` (a gst-launch fragment,
/// e.g. `flacenc`), written into `dir` under `name`; returns its bytes.
pub fn tone(dir: &Path, name: &str, seconds: f64, encoder: &str) -> Vec<u8> {
    let out = dir.join(name);
    let buffers = (seconds * 10.0) as u32;
    let line = format!(
        "audiotestsrc wave=sine freq=440 volume=0.1 num-buffers={buffers} samplesperbuffer=4410 \
         ! audio/x-raw,rate=44100,channels=2 ! audioconvert ! audioresample ! {encoder} ! filesink location={}",
        out.display()
    );
    let ok = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(ok.success(), "{line}");
    std::fs::read(out).expect("the tone was written")
}
