//! What phones save, through the real binary: HEIC (made with libheif's `heif-enc` from a
//! phone JPEG held upright: EXIF orientation 6 becomes the HEIF rotation, GPS stays in its
//! EXIF; and AVIF with a rotation property beside the same EXIF orientation, as phones write
//! it) and AVIF (`avifenc`: 8-bit with alpha, 10-bit, a 2×2 grid) become upright variants of
//! the right widths with no metadata left; a HEIC grid (HEVC tiles under a grid item turned by
//! its `irot`, as iPhones store photos) is assembled upright; a HEIC whose header declares a
//! huge picture is refused from the header.
#![cfg(feature = "media")]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use testkit::pictures;

mod common;
use common::media::*;

/// Runs an encoder (`heif-enc`, `avifenc`; scripts/test.sh installs them) and reads its output.
fn encode(tool: &str, args: &[&str], out: &Path) -> Vec<u8> {
    let o = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs (scripts/test.sh installs it): {e}"));
    assert!(
        o.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).unwrap()
}

/// Each variant of kind `image`: (width, height, type, decoded RGBA), its metadata checked gone.
fn images(addr: &str, doc: &Value) -> Vec<(u32, u32, String, image::RgbaImage)> {
    variants(doc, "image")
        .into_iter()
        .map(|v| {
            let bytes = get(addr, &path_of(v["url"].as_str().unwrap()));
            let mime = v["type"].as_str().unwrap().to_owned();
            assert_eq!(
                pictures::metadata_blocks(&bytes),
                Vec::<String>::new(),
                "{mime}"
            );
            let img = image::load_from_memory(&bytes).unwrap().to_rgba8();
            let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
            assert_eq!(img.dimensions(), (w as u32, h as u32), "{mime}");
            (w as u32, h as u32, mime, img)
        })
        .collect()
}

/// `halves` shown upright `w`×`h`: red left, blue right, the green band at the top.
fn assert_halves(got: &[(u32, u32, String, image::RgbaImage)], what: &str) {
    for (w, h, mime, img) in got {
        let at = |x: u32, y: u32| *img.get_pixel(x, y);
        assert!(
            near(at(w / 4, h / 2), [220, 20, 20]),
            "{what} {w} {mime} left"
        );
        assert!(
            near(at(w * 3 / 4, h / 2), [20, 20, 220]),
            "{what} {w} {mime} right"
        );
        assert!(
            near(at(w / 2, h / 40), [0, 200, 0]),
            "{what} {w} {mime} top"
        );
    }
}

fn widths(got: &[(u32, u32, String, image::RgbaImage)]) -> Vec<(u32, u32, &str)> {
    got.iter()
        .map(|(w, h, m, _)| (*w, *h, m.as_str()))
        .collect()
}

#[test]
fn heic_and_avif_photos_become_upright_variants_with_no_metadata_left() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--image-widths", "320,640,4096"]);
    let at = |name: &str| files.path().join(name);
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    // HEIC from a phone JPEG stored sideways (coded 800×1600 shown 1600×800 after a quarter
    // turn): shown 1600 wide, 800 high, the picture upright.
    std::fs::write(at("side.jpg"), pictures::phone_jpeg(800, 1600, 6)).unwrap();
    let heic = encode(
        "heif-enc",
        &["-q", "85", "-o", &s(&at("a.heic")), &s(&at("side.jpg"))],
        &at("a.heic"),
    );
    let id = upload(&t.addr, &heic, "IMG_0001.HEIC", "image/heic");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = images(&t.addr, &doc);
    assert_eq!(
        widths(&got),
        [
            (320, 160, "image/jpeg"),
            (320, 160, "image/webp"),
            (640, 320, "image/jpeg"),
            (640, 320, "image/webp"),
            (1600, 800, "image/jpeg"),
            (1600, 800, "image/webp"),
        ],
        "{doc}"
    );
    for (_, _, mime, img) in &got {
        // Turned a quarter clockwise: the coded top band (green) is at the right, the coded
        // left (red) at the top.
        let (w, h) = img.dimensions();
        assert!(
            near(*img.get_pixel(w - 2, h / 2), [0, 200, 0]),
            "{mime} right"
        );
        assert!(
            near(*img.get_pixel(w / 4, h / 4), [220, 20, 20]),
            "{mime} top"
        );
        assert!(
            near(*img.get_pixel(w / 4, h * 3 / 4), [20, 20, 220]),
            "{mime} bottom"
        );
    }

    // As phones write it: the rotation as a HEIF property (irot: a quarter turn clockwise) and
    // the EXIF orientation saying the same; turned once, not twice.
    let both = encode(
        "avifenc",
        &[
            "--irot",
            "3",
            "-s",
            "8",
            &s(&at("side.jpg")),
            &s(&at("both.avif")),
        ],
        &at("both.avif"),
    );
    let has = |bytes: &[u8], what: &[u8]| bytes.windows(what.len()).any(|w| w == what);
    assert!(
        has(&both, b"irot") && has(&both, b"Exif"),
        "both the property and EXIF"
    );
    let id = upload(&t.addr, &both, "both.avif", "image/avif");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = images(&t.addr, &doc);
    assert_eq!(got.last().map(|g| (g.0, g.1)), Some((1600, 800)), "{doc}");
    for (_, _, mime, img) in &got {
        let (w, h) = img.dimensions();
        assert!(
            near(*img.get_pixel(w - 2, h / 2), [0, 200, 0]),
            "{mime} right"
        );
        assert!(
            near(*img.get_pixel(w / 4, h / 4), [220, 20, 20]),
            "{mime} top"
        );
    }

    std::fs::write(at("flat.jpg"), pictures::phone_jpeg(1200, 600, 1)).unwrap();
    // A HEIC holding two pictures (a burst, a Live Photo's still and more): its primary one.
    std::fs::write(at("b.jpg"), pictures::phone_jpeg(600, 300, 1)).unwrap();
    let two = encode(
        "heif-enc",
        &[
            "-o",
            &s(&at("two.heic")),
            &s(&at("flat.jpg")),
            &s(&at("b.jpg")),
        ],
        &at("two.heic"),
    );
    let id = upload(&t.addr, &two, "IMG_0003.HEIC", "image/heic");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = images(&t.addr, &doc);
    assert_eq!(got.last().map(|g| (g.0, g.1)), Some((1200, 600)), "{doc}");
    assert_halves(&got, "the primary of two");

    // AVIF, 10-bit, upright as coded.
    let avif10 = encode(
        "avifenc",
        &[
            "-d",
            "10",
            "-s",
            "8",
            &s(&at("flat.jpg")),
            &s(&at("ten.avif")),
        ],
        &at("ten.avif"),
    );
    let id = upload(&t.addr, &avif10, "ten.avif", "image/avif");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = images(&t.addr, &doc);
    assert_eq!(got.last().map(|g| (g.0, g.1)), Some((1200, 600)), "{doc}");
    assert_halves(&got, "10-bit AVIF");

    // AVIF as a 2×2 grid of tiles: assembled.
    let grid = encode(
        "avifenc",
        &[
            "-g",
            "2x2",
            "-s",
            "8",
            &s(&at("flat.jpg")),
            &s(&at("grid.avif")),
        ],
        &at("grid.avif"),
    );
    let id = upload(&t.addr, &grid, "grid.avif", "image/avif");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = images(&t.addr, &doc);
    assert_eq!(got.last().map(|g| (g.0, g.1)), Some((1200, 600)), "{doc}");
    assert_halves(&got, "grid AVIF");

    // AVIF with alpha: the WebP variants keep it (opaque left, transparent right).
    std::fs::write(at("alpha.png"), pictures::alpha_png(640, 320)).unwrap();
    let alpha = encode(
        "avifenc",
        &["-s", "8", &s(&at("alpha.png")), &s(&at("alpha.avif"))],
        &at("alpha.avif"),
    );
    let id = upload(&t.addr, &alpha, "alpha.avif", "image/avif");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = images(&t.addr, &doc);
    let webp = got.iter().find(|g| g.2 == "image/webp").unwrap();
    let (w, h) = webp.3.dimensions();
    assert!(webp.3.get_pixel(2, h / 2).0[3] > 230, "opaque at the left");
    assert!(
        webp.3.get_pixel(w - 2, h / 2).0[3] < 30,
        "transparent at the right"
    );
}

/// The offset of the first `ispe` box's width in a HEIF file.
fn ispe(bytes: &[u8]) -> usize {
    bytes.windows(4).position(|w| w == b"ispe").unwrap() + 8
}

#[test]
fn a_heic_declaring_a_huge_picture_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    let jpg = files.path().join("small.jpg");
    std::fs::write(&jpg, pictures::phone_jpeg(64, 64, 1)).unwrap();
    let out = files.path().join("small.heic");
    let mut heic = encode(
        "heif-enc",
        &["-o", out.to_str().unwrap(), jpg.to_str().unwrap()],
        &out,
    );
    // 30000×30000: 900 megapixels declared, a few KiB sent.
    let at = ispe(&heic);
    heic[at..at + 4].copy_from_slice(&30_000u32.to_be_bytes());
    heic[at + 4..at + 8].copy_from_slice(&30_000u32.to_be_bytes());
    let id = upload(&t.addr, &heic, "bomb.heic", "image/heic");
    let (doc, took) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "REJECTED", "{doc}");
    assert_eq!(doc["reason"]["code"], "too_large", "{doc}");
    println!("refused in {took:?}");
}

#[test]
fn a_heic_grid_turned_by_its_container_is_assembled_upright() {
    // As iPhones store photos: HEVC tiles under a grid item. Coded 384×512 (the picture turned
    // a quarter clockwise), in four 192×256 tiles; the grid's `irot` turns it back a quarter
    // anticlockwise, so it is shown 512×384, upright.
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--image-widths", "320,4096"]);
    let coded = image::imageops::rotate90(&pictures::halves(512, 384));
    let mut tiles = Vec::new();
    for row in 0..2 {
        for col in 0..2 {
            let tile = image::imageops::crop_imm(&coded, col * 192, row * 256, 192, 256).to_image();
            let png = files.path().join(format!("t{row}{col}.png"));
            let heic = files.path().join(format!("t{row}{col}.heic"));
            tile.save(&png).unwrap();
            let (png, heic_s) = (png.to_str().unwrap(), heic.to_str().unwrap());
            tiles.push(encode("heif-enc", &["-q", "90", "-o", heic_s, png], &heic));
        }
    }
    let grid = testkit::heif_grid::grid(&tiles, (2, 2), (192, 256), (384, 512), 1);
    let id = upload(&t.addr, &grid, "IMG_0003.HEIC", "image/heic");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let got = images(&t.addr, &doc);
    assert_eq!(
        widths(&got),
        [
            (320, 240, "image/jpeg"),
            (320, 240, "image/webp"),
            (512, 384, "image/jpeg"),
            (512, 384, "image/webp"),
        ],
        "{doc}"
    );
    assert_halves(&got, "grid HEIC");
}

#[test]
fn a_picture_past_its_time_budget_fails_and_the_server_goes_on() {
    // A 1 ms budget: no picture is decoded that fast. The job fails as `time_budget`, once
    // (not retried), and the next picture, under a fresh server's default budget, is READY.
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let jpg = files.path().join("p.jpg");
    let heic = files.path().join("p.heic");
    std::fs::write(&jpg, pictures::photo(2000, 1500, 1)).unwrap();
    let bytes = encode(
        "heif-enc",
        &[
            "-q",
            "50",
            "-o",
            heic.to_str().unwrap(),
            jpg.to_str().unwrap(),
        ],
        &heic,
    );
    let t = start(dir.path(), &["--image-time-budget", "1ms"]);
    let id = upload(&t.addr, &bytes, "slow.heic", "image/heic");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert_eq!(doc["reason"]["code"], "time_budget", "{doc}");
    assert_eq!(doc["attempts"], 1, "{doc}");
    drop(t);
    let t = start(dir.path(), &[]);
    let id = upload(&t.addr, &bytes, "fine.heic", "image/heic");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
}
