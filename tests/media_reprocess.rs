//! `tuskd media reprocess`: one upload, or every upload of a kind, regenerated into a new
//! version while the server runs; the record switches at once, the old version is deleted,
//! other kinds are left alone.
#![cfg(feature = "media")]

use serde_json::Value;
use testkit::media::Clip;
use testkit::pictures;

mod common;
use common::media::*;
use common::*;

fn version(doc: &Value) -> String {
    let url = doc["variants"][0]["url"].as_str().unwrap();
    path_of(url).split('/').nth(3).unwrap().to_owned()
}

#[test]
fn reprocessing_by_kind_and_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    let clip = std::fs::read(Clip::new(320, 240, 1).make(clips.path(), "v.mp4")).unwrap();
    let video = upload(&t.addr, &clip, "v.mp4", "video/mp4");
    let image = upload(&t.addr, &pictures::webp(300, 200), "p.webp", "image/webp");
    let (v1, _) = wait_done(&t.addr, &video);
    let (i1, _) = wait_done(&t.addr, &image);
    assert_eq!(
        (v1["status"].as_str(), i1["status"].as_str()),
        (Some("READY"), Some("READY"))
    );
    let (video_v1, image_v1) = (version(&v1), version(&i1));

    let (code, out) = media_cli(dir.path(), &["reprocess", "--kind", "image"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 media jobs queued"), "{out}");
    wait_for("the image's new version", || {
        let doc = status(&t.addr, &image);
        doc["status"] == "READY" && version(&doc) != image_v1
    });
    let i2 = status(&t.addr, &image);
    assert_eq!(variants(&i2, "image").len(), variants(&i1, "image").len());
    for v in variants(&i2, "image") {
        get(&t.addr, &path_of(v["url"].as_str().unwrap()));
    }
    // The old version is gone, the video untouched.
    let old = path_of(i1["variants"][0]["url"].as_str().unwrap());
    assert_eq!(request(&t.addr, "GET", &old, &[], b"").0, 404);
    assert!(
        !dir.path()
            .join("media")
            .join(&image)
            .join(&image_v1)
            .exists()
    );
    assert_eq!(version(&status(&t.addr, &video)), video_v1);

    // One by id.
    let (code, out) = media_cli(dir.path(), &["reprocess", &video]);
    assert_eq!(code, 0, "{out}");
    wait_for("the video's new version", || {
        let doc = status(&t.addr, &video);
        doc["status"] == "READY" && version(&doc) != video_v1
    });
    // Errors a person can make.
    let (code, out) = media_cli(dir.path(), &["reprocess", "nosuchupload"]);
    assert_ne!(code, 0);
    assert!(out.contains("not stored"), "{out}");
    let (code, _) = media_cli(dir.path(), &["reprocess"]);
    assert_ne!(code, 0, "an id, --kind or --all is needed");
}
