//! Image and document fixtures made on the spot: a phone-style JPEG with EXIF orientation and
//! GPS tags (and XMP and a comment), a PNG with transparency, a WebP, an animated GIF, a PNG
//! "pixel bomb" (900 megapixels in a few hundred KiB), an MP3 with cover art, a one-page PDF.
//! And readers for the checks: the metadata blocks an output still has.

use std::io::Write;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, ImageEncoder, Rgba, RgbaImage};

/// A `w`×`h` picture: the left half red, the right half blue, a green band at the top, so
/// that its orientation can be told from any variant.
pub fn halves(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        if y < h / 8 {
            image::Rgb([0, 200, 0])
        } else if x < w / 2 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    })
}

fn tiff_entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
}

/// An EXIF block (big-endian TIFF) with Orientation, Make, and a GPS IFD with a position.
fn exif(orientation: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    // IFD0 at 8: 3 entries.
    let ifd0_len = 2 + 3 * 12 + 4;
    let make_at = 8 + ifd0_len as u32;
    let make = b"TuskPhone\0";
    let gps_at = make_at + make.len() as u32;
    t.extend_from_slice(&3u16.to_be_bytes());
    tiff_entry(&mut t, 0x010f, 2, make.len() as u32, make_at); // Make
    tiff_entry(&mut t, 0x0112, 3, 1, (orientation as u32) << 16); // Orientation (SHORT, left-justified)
    tiff_entry(&mut t, 0x8825, 4, 1, gps_at); // GPS IFD
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(make);
    // GPS IFD: LatitudeRef N, Latitude 51/1 30/1 0/1.
    let gps_len = 2 + 2 * 12 + 4;
    let lat_at = gps_at + gps_len as u32;
    t.extend_from_slice(&2u16.to_be_bytes());
    tiff_entry(&mut t, 0x0001, 2, 2, u32::from_be_bytes(*b"N\0\0\0"));
    tiff_entry(&mut t, 0x0002, 5, 3, lat_at);
    t.extend_from_slice(&0u32.to_be_bytes());
    for (n, d) in [(51u32, 1u32), (30, 1), (0, 1)] {
        t.extend_from_slice(&n.to_be_bytes());
        t.extend_from_slice(&d.to_be_bytes());
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&t);
    app1
}

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xff, marker];
    s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// A JPEG of `halves(w, h)` as stored by a phone held upright: coded `w`×`h`, with EXIF
/// `orientation` (6: turn 90° clockwise to show), GPS, XMP and a comment.
pub fn phone_jpeg(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 90)
        .write_image(halves(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    assert_eq!(&plain[..2], b"\xff\xd8");
    let mut out = plain[..2].to_vec();
    out.extend(segment(0xe1, &exif(orientation)));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><exif:GPSLatitude>51,30N</exif:GPSLatitude></x:xmpmeta>");
    out.extend(segment(0xe1, &xmp));
    out.extend(segment(0xfe, b"secret comment"));
    out.extend_from_slice(&plain[2..]);
    out
}

/// A camera-like JPEG (quality 90) of `w`×`h`: smooth gradients with grain, so that it
/// costs what a photo costs to decode and encode; `seed` makes each one different.
pub fn photo(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let grain = (state % 24) as i32 - 12;
        let c = |v: u32| (v as i32 + grain).clamp(0, 255) as u8;
        image::Rgb([c(x * 255 / w), c(y * 255 / h), c((x + y + seed * 40) % 256)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// A PNG whose alpha fades from opaque (left) to transparent (right).
pub fn alpha_png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, _| Rgba([30, 120, 200, (255 - x * 255 / w) as u8]));
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgba8)
        .unwrap();
    out
}

/// A lossless WebP of `halves(w, h)`.
pub fn webp(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(halves(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// An animated GIF of `frames` frames of different colours, 100 ms each.
pub fn animated_gif(w: u32, h: u32, frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for i in 0..frames {
            let c = (i * 255 / frames.max(1)) as u8;
            let img = RgbaImage::from_fn(w, h, |x, _| {
                if x < w * (i + 1) / frames {
                    Rgba([c, 255 - c, 80, 255])
                } else {
                    Rgba([0, 0, 0, 255])
                }
            });
            let frame = Frame::from_parts(img, 0, 0, Delay::from_numer_denom_ms(100, 1));
            enc.encode_frame(frame).unwrap();
        }
    }
    out
}

/// A 1-bit grey PNG of `side`×`side` pixels, all black: 30,000 gives 900 megapixels in about
/// a hundred KiB, which decoded would need about a gigabyte.
pub fn pixel_bomb(side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::High);
        let mut w = enc.write_header().unwrap();
        let mut stream = w.stream_writer().unwrap();
        let row = vec![0u8; side.div_ceil(8) as usize];
        for _ in 0..side {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// An ID3v2.3 tag holding `jpeg` as the front cover, to put before MP3 frames.
pub fn id3_cover(jpeg: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8]; // ISO-8859-1
    frame.extend_from_slice(b"image/jpeg\0");
    frame.push(3); // front cover
    frame.push(0); // no description
    frame.extend_from_slice(jpeg);
    let mut body = b"APIC".to_vec();
    body.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&frame);
    let n = body.len() as u32;
    let syncsafe = [
        (n >> 21) as u8 & 0x7f,
        (n >> 14) as u8 & 0x7f,
        (n >> 7) as u8 & 0x7f,
        n as u8 & 0x7f,
    ];
    let mut tag = b"ID3\x03\x00\x00".to_vec();
    tag.extend_from_slice(&syncsafe);
    tag.extend_from_slice(&body);
    tag
}

/// A one-page A4 PDF with a filled rectangle and a line of text.
pub fn pdf() -> Vec<u8> {
    pdf_sized(595, 842)
}

/// The same on a page of `w`×`h` points.
pub fn pdf_sized(w: u32, h: u32) -> Vec<u8> {
    let content = "0.2 0.4 0.8 rg 50 500 495 250 re f BT /F1 36 Tf 60 400 Td (tuskd) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
        ),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The metadata blocks found in a JPEG or WebP file: JPEG APPn segments other than JFIF,
/// comments; WebP EXIF, XMP and ICC chunks. Empty when the file is clean.
pub fn metadata_blocks(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    if bytes.starts_with(b"\xff\xd8") {
        let mut i = 2;
        while i + 4 <= bytes.len() && bytes[i] == 0xff {
            let marker = bytes[i + 1];
            if marker == 0xda {
                break; // start of scan: no more headers
            }
            let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            let body = &bytes[i + 4..(i + 2 + len).min(bytes.len())];
            let jfif = marker == 0xe0 && body.starts_with(b"JFIF");
            if (0xe0..=0xef).contains(&marker) && !jfif || marker == 0xfe {
                found.push(format!("JPEG marker {marker:#x}"));
            }
            i += 2 + len;
        }
    } else if bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        let mut i = 12;
        while i + 8 <= bytes.len() {
            let id = String::from_utf8_lossy(&bytes[i..i + 4]).into_owned();
            let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
            if matches!(id.as_str(), "EXIF" | "XMP " | "ICCP") {
                found.push(format!("WebP chunk {id}"));
            }
            i += 8 + len + (len & 1);
        }
    } else {
        found.push("not a JPEG or WebP".into());
    }
    // Long enough not to turn up by chance in compressed data.
    for needle in [&b"xmpmeta"[..], b"TuskPhone", b"secret comment"] {
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(format!("the bytes {:?}", String::from_utf8_lossy(needle)));
        }
    }
    found
}
