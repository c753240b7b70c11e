//! The HDR row: the same moving 1080p30 picture (`--hdr-seconds`, 20 by default, 2 with
//! --quick) as 10-bit HEVC twice, once BT.709 SDR and once HLG (BT.2020), through tuskd's full
//! ladder (360/720/1080, poster, thumbnails; one pass), beside ffmpeg making the same ladder
//! from the same two files (the HLG one through its usual tone map, `zscale` + `tonemap=hable`)
//! in the same run. The two files differ only in their transfer, so each tool's HDR : SDR time
//! is what its tone mapping costs; reported with the media seconds per second and the CPU
//! seconds per media second of each.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use tokio::process::Command;

use super::Args;
use super::media::{Run, measure, median, rand_suffix, tuskd};

/// ffmpeg's HLG to SDR chain, as tuskd's tone map does it (peak 1000 cd/m²).
const TONE_MAP: &str = "zscale=t=linear:npl=100:agamma=false,format=gbrpf32le,zscale=p=bt709,\
                        tonemap=tonemap=hable:desat=0:peak=10,zscale=t=bt709:m=bt709:r=tv,";

pub async fn run(args: &Args, quick: bool) {
    let seconds = if quick { 2 } else { args.hdr_seconds.max(1) };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    let (sdr, hlg) = tokio::task::spawn_blocking(move || {
        (
            testkit::hdr::moving(&path, None, seconds, (1920, 1080)),
            testkit::hdr::moving(&path, Some("hlg"), seconds, (1920, 1080)),
        )
    })
    .await
    .expect("ffmpeg makes the clips (installed by scripts/test.sh)");
    let sdr_bytes = Bytes::from(std::fs::read(&sdr).expect("clip"));
    let hlg_bytes = Bytes::from(std::fs::read(&hlg).expect("clip"));

    println!();
    println!(
        "HDR: a {seconds} s moving 1080p30 picture as 10-bit HEVC, BT.709 and HLG, to a \
         360/720/1080 HLS ladder (median of {} runs)",
        args.runs
    );
    let (mut t_sdr, mut t_hdr, mut f_sdr, mut f_hdr) = (vec![], vec![], vec![], vec![]);
    let one_pass = ["--media-playable-from", "off"];
    for _ in 0..args.runs {
        t_sdr.push(tuskd(args, sdr_bytes.clone(), &one_pass).await);
        t_hdr.push(tuskd(args, hlg_bytes.clone(), &one_pass).await);
        f_sdr.push(ffmpeg(&sdr, dir.path(), "").await);
        f_hdr.push(ffmpeg(&hlg, dir.path(), TONE_MAP).await);
    }
    println!(
        "runs: tuskd SDR {t_sdr:.2?}, HDR {t_hdr:.2?}; ffmpeg SDR {f_sdr:.2?}, HDR {f_hdr:.2?}"
    );
    let media = seconds as f64;
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9}",
        "figure", "tuskd SDR", "tuskd HDR", "ffmpeg SDR", "ffmpeg HDR"
    );
    let mut figures = |key: fn(&Run) -> f64| {
        [&mut t_sdr, &mut t_hdr, &mut f_sdr, &mut f_hdr].map(|runs| median(runs, key))
    };
    let ready = figures(|r| r.ready);
    let cpu = figures(|r| r.cpu);
    let rss = figures(|r| r.rss);
    let line = |name: &str, v: [f64; 4]| {
        println!(
            "{name:<44} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            v[0], v[1], v[2], v[3]
        );
    };
    line(
        "media seconds transcoded per second",
        ready.map(|t| media / t),
    );
    line("CPU s per media s", cpu.map(|c| c / media));
    line("peak RSS, MiB", rss);
    println!(
        "tone mapping's cost, HDR : SDR time: tuskd {:.2}, ffmpeg {:.2}; CPU: tuskd {:.2}, ffmpeg {:.2}",
        ready[1] / ready[0],
        ready[3] / ready[2],
        cpu[1] / cpu[0],
        cpu[3] / cpu[2]
    );
}

/// ffmpeg making the ladder of `clip` (video only): `prefix` filters first (the tone map), one
/// decode split three ways, libx264 veryfast at tuskd's bitrates and GOP, HLS.
async fn ffmpeg(clip: &Path, dir: &Path, prefix: &str) -> Run {
    let out = dir.join(format!("ff-{}", rand_suffix()));
    std::fs::create_dir_all(&out).expect("dir");
    let graph = format!(
        "[0:v]{prefix}fps=30,format=yuv420p,split=3[a][b][c];[a]scale=640:360[v0];\
         [b]scale=1280:720[v1];[c]scale=1920:1080[v2]"
    );
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-i"]).arg(clip).args([
        "-filter_complex",
        &graph,
        "-map",
        "[v0]",
        "-map",
        "[v1]",
        "-map",
        "[v2]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-b:v:0",
        "800k",
        "-b:v:1",
        "2800k",
        "-b:v:2",
        "5000k",
        "-g",
        "120",
        "-keyint_min",
        "120",
        "-sc_threshold",
        "0",
        "-f",
        "hls",
        "-hls_time",
        "4",
        "-hls_playlist_type",
        "vod",
        "-var_stream_map",
        "v:0 v:1 v:2",
        "-hls_segment_filename",
    ]);
    cmd.arg(out.join("r%v_seg%05d.ts"))
        .arg(out.join("r%v.m3u8"));
    let started = Instant::now();
    let child = cmd
        .spawn()
        .expect("ffmpeg runs (scripts/test.sh installs it)");
    measure(child, started, "the ffmpeg reference").await
}
