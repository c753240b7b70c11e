//! Documents through the real binary: a PDF's first page becomes preview images at the
//! thumbnail widths (poppler's pdftoppm); a broken PDF fails with the reason; another admitted
//! document is stored as it is, READY with no variants.
#![cfg(feature = "media")]

use testkit::pictures;

mod common;
use common::media::*;

#[test]
fn a_pdf_gets_first_page_previews_and_other_documents_are_kept_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir.path(),
        &["--media-allow", "video/*,application/pdf,application/zip"],
    );
    let id = upload(&t.addr, &pictures::pdf(), "report.pdf", "application/pdf");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(doc["type"], "application/pdf");
    let pages = variants(&doc, "page");
    let sizes: Vec<(u64, u64, &str)> = pages
        .iter()
        .map(|v| {
            (
                v["width"].as_u64().unwrap(),
                v["height"].as_u64().unwrap(),
                v["type"].as_str().unwrap(),
            )
        })
        .collect();
    // A4 (595×842 points) at the thumbnail widths.
    assert_eq!(
        sizes,
        [
            (320, 453, "image/jpeg"),
            (320, 453, "image/webp"),
            (640, 906, "image/jpeg"),
            (640, 906, "image/webp"),
        ]
    );
    for v in &pages {
        let img = image::load_from_memory(&get(&t.addr, &path_of(v["url"].as_str().unwrap())))
            .unwrap()
            .to_rgb8();
        let (w, h) = img.dimensions();
        assert_eq!(
            (w as u64, h as u64),
            (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
        );
        // The page is drawn: white paper, the blue box across its upper half.
        let paper = img.get_pixel(w / 2, h - 3);
        let ink = img.get_pixel(w / 2, h * 3 / 10);
        assert!(paper.0.iter().all(|&c| c > 230), "{paper:?}");
        assert!(ink.0[2] > 150 && ink.0[0] < 110, "{ink:?}");
    }

    // A page 200 times taller than wide: only its top is drawn (at most 4:1).
    let id = upload(
        &t.addr,
        &pictures::pdf_sized(100, 20_000),
        "tall.pdf",
        "application/pdf",
    );
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    for v in variants(&doc, "page") {
        let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
        assert!(h <= 4 * w, "{w}x{h}");
    }

    // A PDF that is not one: the renderer's reason.
    let mut broken = b"%PDF-1.4\n".to_vec();
    broken.extend(std::iter::repeat_n(b'x', 4000));
    let id = upload(&t.addr, &broken, "broken.pdf", "application/pdf");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert_eq!(doc["reason"]["code"], "decode_failed", "{doc}");

    // A zip, admitted: stored as it is.
    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip.resize(2000, 0);
    let id = upload(&t.addr, &zip, "archive.zip", "application/zip");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert!(doc["variants"].as_array().unwrap().is_empty(), "{doc}");
    let (code, _, body) = common::request(&t.addr, "GET", &format!("/files/{id}"), &[], b"");
    assert_eq!(
        (code, body.len()),
        (200, 2000),
        "the original stays downloadable"
    );
}
