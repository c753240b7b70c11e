//! Images through the real binary: variants at the configured widths in JPEG and WebP, turned
//! upright from EXIF, with no metadata left in any output (checked by parsing them);
//! transparency kept in WebP; animated GIFs become an animated WebP with a poster; a pixel
//! bomb is refused from its header, quickly and without the memory decoding it would take.
#![cfg(feature = "media")]

use std::time::Instant;

use image::AnimationDecoder;
use serde_json::Value;
use testkit::pictures;

mod common;
use common::media::*;

/// Fetches every variant of `kind`: (width, height, type, bytes).
fn fetch(addr: &str, doc: &Value, kind: &str) -> Vec<(u32, u32, String, Vec<u8>)> {
    variants(doc, kind)
        .into_iter()
        .map(|v| {
            let bytes = get(addr, &path_of(v["url"].as_str().unwrap()));
            assert_eq!(v["bytes"], bytes.len() as u64);
            (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32,
                v["type"].as_str().unwrap().to_owned(),
                bytes,
            )
        })
        .collect()
}

#[test]
fn photos_become_upright_variants_with_no_metadata_left() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    // Coded 1600×800, shown 800×1600 (orientation 6: turn 90° clockwise).
    let jpeg = pictures::phone_jpeg(1600, 800, 6);
    assert!(
        !pictures::metadata_blocks(&jpeg).is_empty(),
        "the source has metadata"
    );
    let id = upload(&t.addr, &jpeg, "IMG_0001.JPG", "image/jpeg");
    let (doc, took) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    println!("phone photo: 1600x800 JPEG → 8 variants in {took:?}");
    let got = fetch(&t.addr, &doc, "image");
    let sizes: Vec<(u32, u32, &str)> = got
        .iter()
        .map(|(w, h, m, _)| (*w, *h, m.as_str()))
        .collect();
    assert_eq!(
        sizes,
        [
            (128, 256, "image/jpeg"),
            (128, 256, "image/webp"),
            (320, 640, "image/jpeg"),
            (320, 640, "image/webp"),
            (640, 1280, "image/jpeg"),
            (640, 1280, "image/webp"),
            (800, 1600, "image/jpeg"),
            (800, 1600, "image/webp"),
        ]
    );
    for (w, h, mime, bytes) in &got {
        assert_eq!(
            pictures::metadata_blocks(bytes),
            Vec::<String>::new(),
            "{w} {mime}"
        );
        let img = image::load_from_memory(bytes).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (*w, *h), "{mime}");
        // Upright: the coded left (red) is at the top, the coded top band (green) at the right.
        assert!(
            near(*img.get_pixel(w / 4, h / 4), [220, 20, 20]),
            "{w} {mime} top"
        );
        assert!(
            near(*img.get_pixel(w / 4, h * 3 / 4), [20, 20, 220]),
            "{w} {mime} bottom"
        );
        assert!(
            near(*img.get_pixel(w - 2, h / 2), [0, 200, 0]),
            "{w} {mime} right"
        );
    }
}

#[test]
fn a_photo_far_wider_than_its_widest_variant_is_decoded_smaller_still_upright() {
    // Shown 800 wide, widest variant 320: decoded at half its size (DCT scaling).
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--image-widths", "128,320"]);
    let jpeg = pictures::phone_jpeg(1600, 800, 6);
    let id = upload(&t.addr, &jpeg, "IMG_0002.JPG", "image/jpeg");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = fetch(&t.addr, &doc, "image");
    let sizes: Vec<(u32, u32)> = got.iter().map(|(w, h, _, _)| (*w, *h)).collect();
    assert_eq!(sizes, [(128, 256), (128, 256), (320, 640), (320, 640)]);
    for (w, h, mime, bytes) in &got {
        assert_eq!(pictures::metadata_blocks(bytes), Vec::<String>::new());
        let img = image::load_from_memory(bytes).unwrap().to_rgba8();
        assert!(
            near(*img.get_pixel(w / 4, h / 4), [220, 20, 20]),
            "{w} {mime} top"
        );
        assert!(
            near(*img.get_pixel(w - 2, h / 2), [0, 200, 0]),
            "{w} {mime} right"
        );
    }
}

#[test]
fn transparency_webp_and_animation() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);

    // PNG with alpha: kept in WebP, flattened onto white in JPEG.
    let id = upload(
        &t.addr,
        &pictures::alpha_png(500, 300),
        "a.png",
        "image/png",
    );
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = fetch(&t.addr, &doc, "image");
    let widths: Vec<u32> = got.iter().map(|g| g.0).collect();
    assert_eq!(widths, [128, 128, 320, 320, 500, 500]);
    for (w, h, mime, bytes) in &got {
        let img = image::load_from_memory(bytes).unwrap();
        assert_eq!(img.color().has_alpha(), mime == "image/webp", "{w} {mime}");
        let img = img.to_rgba8();
        let right = img.get_pixel(w - 1, h / 2);
        if mime == "image/webp" {
            assert!(right.0[3] < 40, "transparent on the right: {right:?}");
            assert!(img.get_pixel(0, h / 2).0[3] > 215, "opaque on the left");
        } else {
            assert!(right.0.iter().all(|&c| c > 215), "white behind: {right:?}");
        }
    }

    // A WebP.
    let id = upload(&t.addr, &pictures::webp(400, 400), "w.webp", "image/webp");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["type"], "image/webp", "{doc}");
    let widths: Vec<u32> = fetch(&t.addr, &doc, "image").iter().map(|g| g.0).collect();
    assert_eq!(widths, [128, 128, 320, 320, 400, 400]);

    // An animated GIF: an animated WebP with every frame, a still poster, still variants.
    let gif = pictures::animated_gif(300, 200, 5);
    let id = upload(&t.addr, &gif, "loop.gif", "image/gif");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let anim = fetch(&t.addr, &doc, "animated");
    assert_eq!(anim.len(), 1, "{doc}");
    let (w, h, mime, bytes) = &anim[0];
    assert_eq!((*w, *h, mime.as_str()), (300, 200, "image/webp"));
    let dec = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    assert!(dec.has_animation());
    let frames = dec.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 5);
    let total: u32 = frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        })
        .sum();
    assert!((400..=600).contains(&total), "{total} ms");
    let poster = fetch(&t.addr, &doc, "poster");
    assert_eq!(
        poster
            .iter()
            .map(|p| (p.0, p.1, p.2.as_str()))
            .collect::<Vec<_>>(),
        [(300, 200, "image/jpeg")]
    );
    assert_eq!(
        fetch(&t.addr, &doc, "image").len(),
        4,
        "128 and 300 wide, JPEG and WebP"
    );

    // A HEIC that is a header and nothing else fails with the reason.
    let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    heic.resize(4096, 0);
    let id = upload(&t.addr, &heic, "IMG_0002.HEIC", "image/heic");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["reason"]["code"], "decode_failed", "{doc}");
    assert!(
        doc["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be decoded"),
        "{doc}"
    );
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_pixel_bomb_is_refused_from_its_header() {
    let bomb = pictures::pixel_bomb(30_000);
    assert!(bomb.len() < 512 << 10, "{} bytes", bomb.len());
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    let started = Instant::now();
    let id = upload(&t.addr, &bomb, "bomb.png", "image/png");
    let (doc, _) = wait_done(&t.addr, &id);
    let took = started.elapsed();
    assert_eq!(doc["status"], "REJECTED", "{doc}");
    assert_eq!(doc["reason"]["code"], "too_large", "{doc}");
    assert!(
        doc["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("30000x30000"),
        "{doc}"
    );
    let rss = peak_rss_kib(t.child.id());
    println!(
        "pixel bomb: {} KiB PNG of 30000x30000 refused in {took:?}; tuskd's peak RSS {} MiB",
        bomb.len() >> 10,
        rss >> 10
    );
    // Decoding it would take 900 MB (a byte per pixel) at the least.
    assert!(rss < 200 << 10, "peak RSS {} MiB", rss >> 10);
}

#[test]
fn limits_apply_per_kind() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(
        dir.path(),
        &[
            "--media-max-size",
            "image=20KiB",
            "--media-max-pixels",
            "image=100000",
        ],
    );
    let big = pictures::phone_jpeg(1600, 800, 1);
    assert!(big.len() > 20 << 10);
    let id = upload(&t.addr, &big, "big.jpg", "image/jpeg");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["reason"]["code"], "too_big", "{doc}");
    let id = upload(
        &t.addr,
        &pictures::alpha_png(500, 300),
        "wide.png",
        "image/png",
    );
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["reason"]["code"], "too_large", "{doc}");
    let id = upload(&t.addr, &pictures::webp(200, 200), "ok.webp", "image/webp");
    assert_eq!(wait_done(&t.addr, &id).0["status"], "READY");
    // A video larger and with more pixels than the image limits is not an image.
    let clip = testkit::media::Clip::new(480, 272, 1).make(clips.path(), "v.mp4");
    let bytes = std::fs::read(clip).unwrap();
    assert!(bytes.len() > 20 << 10);
    let id = upload(&t.addr, &bytes, "v.mp4", "video/mp4");
    assert_eq!(wait_done(&t.addr, &id).0["status"], "READY");
}
