//! The Upload-Metadata `tuskd upload` sends: `filename` and `filetype` unless given, then the
//! `--meta key=value` pairs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::domain::upload::Metadata;

/// `--meta key=value` pairs, each checked by the rules the server applies to Upload-Metadata.
pub(super) fn parse_meta(meta: &[String]) -> Result<Vec<(String, String)>, String> {
    meta.iter()
        .map(|m| {
            let (k, v) = m
                .split_once('=')
                .ok_or_else(|| format!("--meta {m:?}: expected key=value"))?;
            Metadata::from_map(&BTreeMap::from([(k.to_owned(), v.to_owned())]))
                .map_err(|e| format!("--meta {m:?}: not a valid metadata pair ({e})"))?;
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Upload-Metadata: `filename` and `filetype` (from the extension) unless given, and `extra`.
pub(super) fn metadata_header(file: &Path, extra: &[(String, String)]) -> Result<String, String> {
    let mut pairs = BTreeMap::new();
    if let Some(name) = file.file_name() {
        pairs.insert("filename".to_owned(), name.to_string_lossy().into_owned());
    }
    if let Some(mime) = mime_guess::from_path(file).first() {
        pairs.insert("filetype".to_owned(), mime.essence_str().to_owned());
    }
    pairs.extend(extra.iter().cloned());
    Ok(Metadata::from_map(&pairs)
        .map_err(|e| e.to_string())?
        .map(|m| m.raw().to_owned())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn metadata_has_the_file_name_and_type_unless_given() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let m = metadata_header(Path::new("/x/clip.mp4"), &[]).unwrap();
        assert_eq!(
            m,
            format!("filename {},filetype {}", b64("clip.mp4"), b64("video/mp4"))
        );
        let extra = parse_meta(&["filetype=video/quicktime".into(), "flag=".into()]).unwrap();
        let m = metadata_header(Path::new("clip.mp4"), &extra).unwrap();
        assert_eq!(
            m,
            format!(
                "filename {},filetype {},flag",
                b64("clip.mp4"),
                b64("video/quicktime")
            )
        );
        assert!(parse_meta(&["no pair".into()]).is_err());
        assert!(parse_meta(&["a key=v".into()]).is_err());
    }
}
