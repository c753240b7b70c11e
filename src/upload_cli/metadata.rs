//! The Upload-Metadata `tuskd upload` sends: `filename` and `filetype` unless given, then the
//! `--meta key=value` pairs.

use std::path::Path;

use base64::Engine as _;

/// `--meta key=value` pairs; keys as Upload-Metadata allows them (no spaces or commas).
pub fn parse_meta(meta: &[String]) -> Result<Vec<(String, String)>, String> {
    meta.iter()
        .map(|m| {
            let (k, v) = m
                .split_once('=')
                .ok_or_else(|| format!("--meta {m:?}: expected key=value"))?;
            if k.is_empty()
                || k.chars()
                    .any(|c| c == ',' || c.is_whitespace() || c.is_control())
            {
                return Err(format!(
                    "--meta {m:?}: a key is one or more characters without spaces or commas"
                ));
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Upload-Metadata: `filename` and `filetype` (from the extension) unless given, then `extra`.
pub fn metadata_header(file: &Path, extra: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let given = |k: &str| extra.iter().any(|(e, _)| e == k);
    if !given("filename")
        && let Some(name) = file.file_name()
    {
        pairs.push(("filename".into(), name.to_string_lossy().into_owned()));
    }
    if !given("filetype")
        && let Some(mime) = mime_guess::from_path(file).first()
    {
        pairs.push(("filetype".into(), mime.essence_str().to_owned()));
    }
    pairs.extend(extra.iter().cloned());
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!(
                    "{k} {}",
                    base64::engine::general_purpose::STANDARD.encode(v)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_has_the_file_name_and_type_unless_given() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let m = metadata_header(Path::new("/x/clip.mp4"), &[]);
        assert_eq!(
            m,
            format!("filename {},filetype {}", b64("clip.mp4"), b64("video/mp4"))
        );
        let extra = parse_meta(&["filetype=video/quicktime".into(), "flag=".into()]).unwrap();
        let m = metadata_header(Path::new("clip.mp4"), &extra);
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
