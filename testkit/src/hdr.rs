//! HDR test material made with ffmpeg (installed by `scripts/test.sh`): a colour chart in linear
//! light coded as HLG or PQ (10-bit HEVC, BT.2020, tagged as phones and HDR10 masters tag it),
//! the usual reference tone map of a file (`zscale` + `tonemap=hable`), and a file's first frame
//! as 8-bit RGB, every file decoded the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The chart's size, and its grid of `COLS`×`ROWS` patches.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 360;
pub const COLS: u32 = 8;
pub const ROWS: u32 = 4;

/// What a patch is there to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A neutral grey at or under reference white (203 cd/m²).
    Grey,
    /// A neutral grey brighter than reference white: a highlight.
    Highlight,
    Colour,
}

/// One patch: linear BT.709-primaries light in units of 100 cd/m², and its kind.
pub type Patch = ([f32; 3], Kind);

/// The chart, row by row: greys from near black to 300 cd/m², highlights at 400, 600 and
/// 1000 cd/m² beside bright primaries, saturated colours at 100 cd/m², and ColorChecker
/// colours (skin, sky, foliage…) at reference white.
pub fn patches() -> Vec<Patch> {
    let grey = |v: f32| ([v; 3], Kind::Grey);
    let light = |v: f32| ([v; 3], Kind::Highlight);
    let colour = |c: [f32; 3], k: f32| (c.map(|v| v * k), Kind::Colour);
    let (r, g, b) = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]);
    let (c, m, y) = ([0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]);
    let checker = [
        [0.173, 0.085, 0.058],
        [0.548, 0.296, 0.222],
        [0.120, 0.196, 0.336],
        [0.095, 0.148, 0.053],
        [0.238, 0.219, 0.433],
        [0.134, 0.509, 0.407],
        [0.675, 0.203, 0.028],
        [0.533, 0.091, 0.119],
    ];
    let mut v = vec![
        grey(0.01),
        grey(0.03),
        grey(0.1),
        grey(0.25),
        grey(0.5),
        grey(1.0),
        grey(2.03),
        grey(3.0),
        light(4.0),
        light(6.0),
        light(10.0),
        colour(r, 2.0),
        colour(g, 2.0),
        colour(b, 2.0),
        colour(y, 2.0),
        colour(c, 2.0),
    ];
    for c in [r, g, b, c, m, y, [1.0, 0.5, 0.0], [0.5, 0.0, 1.0]] {
        v.push(colour(c, 1.0));
    }
    for c in checker {
        v.push(colour(c, 2.03));
    }
    v
}

/// The patch at column `col`, row `row`: its pixel box (x0, y0, x1, y1).
pub fn patch_box(col: u32, row: u32) -> (u32, u32, u32, u32) {
    let (w, h) = (WIDTH / COLS, HEIGHT / ROWS);
    (col * w, row * h, (col + 1) * w, (row + 1) * h)
}

/// BT.709 to BT.2020 primaries, linear light (BT.2087).
const TO_2020: [[f32; 3]; 3] = [
    [0.6274, 0.3293, 0.0433],
    [0.0691, 0.9195, 0.0114],
    [0.0164, 0.0880, 0.8956],
];

fn run(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (scripts/test.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.map(<[u8]>::to_vec);
    let feeder = std::thread::spawn(move || {
        if let Some(d) = data {
            let _ = stdin.write_all(&d);
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The transfer's names in ffmpeg's zscale and x265.
fn names(transfer: &str) -> (&'static str, &'static str) {
    match transfer {
        "hlg" => ("arib-std-b67", "arib-std-b67"),
        "pq" => ("smpte2084", "smpte2084"),
        other => panic!("no HDR transfer {other}"),
    }
}

/// x265's settings for an HDR stream of `transfer`: BT.2020 tags, and for PQ the content light
/// level and mastering display HDR10 carries (MaxCLL 1000 cd/m²).
fn x265_params(transfer: &str) -> String {
    let (_, x265) = names(transfer);
    let mut p = format!(
        "log-level=error:colorprim=bt2020:transfer={x265}:colormatrix=bt2020nc:range=limited"
    );
    if transfer == "pq" {
        p += ":hdr10=1:max-cll=1000,400:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)";
    }
    p
}

/// The chart as `seconds` of 10-bit HEVC in MP4, coded as `transfer` (`hlg` or `pq`).
pub fn chart(dir: &Path, transfer: &str, seconds: u32) -> PathBuf {
    let (zscale, _) = names(transfer);
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    // Planar G, B, R floats (ffmpeg's gbrpf32le), BT.2020 linear light.
    let mut planes = vec![vec![0f32; w * h]; 3];
    for (i, (c709, _)) in patches().iter().enumerate() {
        let c = [0, 1, 2].map(|r| (0..3).map(|k| TO_2020[r][k] * c709[k]).sum::<f32>());
        let (x0, y0, x1, y1) = patch_box(i as u32 % COLS, i as u32 / COLS);
        for y in y0 as usize..y1 as usize {
            for x in x0 as usize..x1 as usize {
                planes[0][y * w + x] = c[1];
                planes[1][y * w + x] = c[2];
                planes[2][y * w + x] = c[0];
            }
        }
    }
    let raw: Vec<u8> = planes
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let out = dir.join(format!("chart-{transfer}.mp4"));
    let frames = (seconds * 30).saturating_sub(1).to_string();
    let size = format!("{w}x{h}");
    let vf = format!(
        "loop=loop={frames}:size=1:start=0,zscale=tin=linear:t={zscale}:pin=bt2020:p=bt2020:min=gbr:m=bt2020nc:rin=full:r=tv:npl=100:agamma=false,format=yuv420p10le"
    );
    let params = x265_params(transfer);
    run(
        &[
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gbrpf32le",
            "-s",
            &size,
            "-r",
            "30",
            "-i",
            "-",
            "-vf",
            &vf,
            "-c:v",
            "libx265",
            "-crf",
            "10",
            "-x265-params",
            &params,
            "-tag:v",
            "hvc1",
            out.to_str().unwrap(),
        ],
        Some(&raw),
    );
    out
}

/// A moving test picture (ffmpeg's `testsrc2`) of `seconds` at `width`×`height`, 30 fps, as
/// 10-bit HEVC: BT.709 SDR (`transfer` None), or the same picture coded as `hlg` or `pq` (SDR
/// white at 100 cd/m²). Only the transfer differs, so the transcodes of the two differ by the
/// tone mapping alone.
pub fn moving(
    dir: &Path,
    transfer: Option<&str>,
    seconds: u32,
    (width, height): (u32, u32),
) -> PathBuf {
    let src = format!("testsrc2=size={width}x{height}:rate=30:duration={seconds}");
    let out = dir.join(format!("moving-{}.mp4", transfer.unwrap_or("sdr")));
    let (vf, params) = match transfer {
        None => (
            "zscale=min=bt709:m=bt709:rin=full:r=tv,format=yuv420p10le".to_owned(),
            "log-level=error:colorprim=bt709:transfer=bt709:colormatrix=bt709:range=limited"
                .to_owned(),
        ),
        Some(t) => (
            format!(
                "zscale=tin=bt709:min=bt709:pin=bt709:rin=full:t={}:p=bt2020:m=bt2020nc:r=tv:npl=100:agamma=false,format=yuv420p10le",
                names(t).0
            ),
            x265_params(t),
        ),
    };
    run(
        &[
            "-f",
            "lavfi",
            "-i",
            &src,
            "-vf",
            &vf,
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-crf",
            "18",
            "-x265-params",
            &params,
            "-tag:v",
            "hvc1",
            out.to_str().unwrap(),
        ],
        None,
    );
    out
}

/// The first frame of `input` (a file or URL), as 8-bit RGB scaled to `WIDTH`×`HEIGHT`, its
/// Y'CbCr read as BT.709 limited range whatever the tags say.
pub fn first_frame_rgb(input: &str) -> Vec<u8> {
    run(
        &[
            "-i",
            input,
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-vf",
            "scale=640:360:in_color_matrix=bt709:in_range=tv:out_range=pc,format=rgb24",
            "-f",
            "rawvideo",
            "-",
        ],
        None,
    )
}

/// The reference tone map of `input`'s first frame, with ffmpeg's usual chain (display light
/// with 100 cd/m² as 1, BT.709 primaries in linear light, Hable without desaturation, the
/// content's peak `peak_nits` as white), as 8-bit RGB decoded as `first_frame_rgb` decodes.
/// zimg's exact BT.2100 transfer (`agamma=false`) everywhere: its default approximates HLG's
/// luminance-driven OOTF by a power per component, which oversaturates colours.
pub fn reference_rgb(dir: &Path, input: &Path, peak_nits: f32) -> Vec<u8> {
    let out = dir.join(format!(
        "reference-{}.mkv",
        input.file_stem().unwrap().to_string_lossy()
    ));
    let vf = format!(
        "zscale=t=linear:npl=100:agamma=false,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0:peak={},zscale=t=bt709:m=bt709:r=tv,format=yuv420p",
        peak_nits / 100.0
    );
    run(
        &[
            "-i",
            input.to_str().unwrap(),
            "-frames:v",
            "1",
            "-vf",
            &vf,
            "-c:v",
            "ffv1",
            out.to_str().unwrap(),
        ],
        None,
    );
    first_frame_rgb(out.to_str().unwrap())
}
