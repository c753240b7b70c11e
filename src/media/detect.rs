//! Step 1: the real type, from the file's first bytes (magic numbers, the `infer` crate), never
//! from what the client says. The client's claim (`filetype` metadata, the `filename`'s
//! extension) is only checked against it: bytes that contradict it are rejected.

use crate::domain::upload::Metadata;

/// How many leading bytes the detection reads.
pub const SNIFF_BYTES: usize = 8192;

/// Why a file is refused at detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

/// The detected MIME type of `head` (the file's first bytes), checked against the client's
/// claim and the allowed types.
pub fn detect(
    head: &[u8],
    metadata: Option<&Metadata>,
    allows: impl Fn(&str) -> bool,
) -> Result<&'static str, Refusal> {
    if head.is_empty() {
        return Err(Refusal {
            code: "empty",
            message: "the file is empty".into(),
        });
    }
    let Some(mime) = infer::get(head)
        .map(|k| k.mime_type())
        .or_else(|| ebml(head))
    else {
        return Err(Refusal {
            code: "unknown_type",
            message: "the file's type could not be recognised from its contents".into(),
        });
    };
    if let Some(claimed) = claimed_type(metadata)
        && !compatible(&claimed, mime)
    {
        return Err(Refusal {
            code: "type_mismatch",
            message: format!("the file claims to be {claimed} but its contents are {mime}"),
        });
    }
    if let Some(ext) = claimed_extension(metadata)
        && let Some(implied) = extension_type(&ext)
        && !compatible(implied, mime)
    {
        return Err(Refusal {
            code: "type_mismatch",
            message: format!("the file is named .{ext} but its contents are {mime}"),
        });
    }
    if !allows(mime) {
        return Err(Refusal {
            code: "type_not_allowed",
            message: format!("files of type {mime} are not accepted"),
        });
    }
    Ok(mime)
}

/// WebM and Matroska by their EBML DocType, whatever size encoding the muxer chose (infer
/// knows only the shortest; GStreamer's webmmux writes `webm` with a trailing NUL).
fn ebml(head: &[u8]) -> Option<&'static str> {
    let head = &head[..head.len().min(256)];
    if !head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        return None;
    }
    let at = head.windows(2).position(|w| w == [0x42, 0x82])?;
    let size = (*head.get(at + 2)? & 0x7f) as usize;
    let doc = head.get(at + 3..at + 3 + size.min(16))?;
    match doc.split(|&b| b == 0).next()? {
        b"webm" => Some("video/webm"),
        b"matroska" => Some("video/x-matroska"),
        _ => None,
    }
}

fn value(metadata: Option<&Metadata>, key: &str) -> Option<String> {
    metadata?
        .pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// The client's `filetype` (or `type`, `contentType`), without parameters, if it is a MIME type.
fn claimed_type(metadata: Option<&Metadata>) -> Option<String> {
    metadata?.declared_type()
}

fn claimed_extension(metadata: Option<&Metadata>) -> Option<String> {
    let name = ["filename", "name"]
        .iter()
        .find_map(|k| value(metadata, k))?;
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 8).then(|| ext.to_owned())
}

/// The type a common media extension promises (only those whose contradiction is certain).
fn extension_type(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "mp4" | "m4v" | "mov" | "mkv" | "webm" | "avi" | "3gp" | "ts" | "mts" | "m2ts" | "wmv"
        | "flv" | "mpg" | "mpeg" => "video/*",
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "heic" | "heif" | "avif" | "bmp" | "tif"
        | "tiff" => "image/*",
        "mp3" | "m4a" | "aac" | "wav" | "flac" | "ogg" | "oga" | "opus" => "audio/*",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// The family a type belongs to for the claim check. Containers blur the line between audio
/// and video (an .m4a is an MP4, an .ogg may hold video, a .webm may be audio only), so those
/// count as one family; the probe says what the streams are.
fn family(mime: &str) -> &str {
    match mime {
        "application/ogg" | "application/x-matroska" => "av",
        _ => match mime.split('/').next().unwrap_or_default() {
            "audio" | "video" => "av",
            t => t,
        },
    }
}

/// Whether a claimed type (or `type/*`) fits the detected one.
fn compatible(claimed: &str, detected: &str) -> bool {
    if claimed == detected {
        return true;
    }
    let c = family(claimed);
    // Two different application/* types say nothing about each other: a mismatch.
    c == family(detected) && c != "application"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Metadata {
        use base64::Engine as _;
        let raw = pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} {}",
                    base64::engine::general_purpose::STANDARD.encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        Metadata::parse(&raw).unwrap()
    }

    const MP4: &[u8] = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom";
    const ZIP: &[u8] = b"PK\x03\x04\x14\x00\x00\x00\x08\x00";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
    const AV: fn(&str) -> bool =
        |m| m.starts_with("video/") || m.starts_with("audio/") || m.starts_with("image/");

    #[test]
    fn the_bytes_decide() {
        assert_eq!(detect(MP4, None, AV), Ok("video/mp4"));
        let m = meta(&[("filename", "clip.MP4"), ("filetype", "video/mp4")]);
        assert_eq!(detect(MP4, Some(&m), AV), Ok("video/mp4"));
        // A phone's .m4a is an MP4 container: audio and video are one family.
        let m = meta(&[("filename", "song.m4a"), ("filetype", "audio/mp4")]);
        assert_eq!(detect(MP4, Some(&m), AV), Ok("video/mp4"));
    }

    #[test]
    fn a_zip_named_mp4_is_a_mismatch() {
        let m = meta(&[("filename", "movie.mp4"), ("filetype", "video/mp4")]);
        assert_eq!(detect(ZIP, Some(&m), AV).unwrap_err().code, "type_mismatch");
        let m = meta(&[("filename", "movie.mp4")]);
        assert_eq!(detect(ZIP, Some(&m), AV).unwrap_err().code, "type_mismatch");
        let m = meta(&[("filetype", "image/png")]);
        assert_eq!(detect(MP4, Some(&m), AV).unwrap_err().code, "type_mismatch");
    }

    #[test]
    fn webm_with_a_padded_doctype_is_webm() {
        let mut head =
            b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x00\x00\x00\x10\x42\x82\x85webm\x00".to_vec();
        head.resize(300, 0);
        assert_eq!(detect(&head, None, AV), Ok("video/webm"));
    }

    #[test]
    fn unknown_empty_and_disallowed_are_refused() {
        assert_eq!(detect(b"", None, AV).unwrap_err().code, "empty");
        assert_eq!(
            detect(b"hello world", None, AV).unwrap_err().code,
            "unknown_type"
        );
        assert_eq!(detect(ZIP, None, AV).unwrap_err().code, "type_not_allowed");
        assert_eq!(
            detect(PNG, None, |m| m.starts_with("video/"))
                .unwrap_err()
                .code,
            "type_not_allowed"
        );
        // A generic claim says nothing.
        let m = meta(&[("filetype", "application/octet-stream")]);
        assert_eq!(detect(PNG, Some(&m), AV), Ok("image/png"));
    }
}
