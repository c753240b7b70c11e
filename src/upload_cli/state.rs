//! What `tuskd upload` remembers between runs: for each file (by a fingerprint of the endpoint,
//! its path, size and modification time) the URL of its upload, or of its partial uploads when
//! it goes in parallel. A file that changed gets a new fingerprint, so a new upload. Written
//! whole to a temporary file and renamed, so a crash never leaves half a state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Entry {
    /// The upload, or with `parts` the final upload once it is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The partial uploads, in the file's order, when it is uploaded in parallel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Doc {
    #[serde(default)]
    uploads: BTreeMap<String, Entry>,
}

pub(super) struct State {
    path: PathBuf,
    doc: Doc,
}

/// The default place: `$XDG_CACHE_HOME/tuskd/uploads.json`, else `~/.cache/tuskd/uploads.json`.
pub(super) fn default_path() -> Result<PathBuf, String> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache"))
            .ok_or("no HOME or XDG_CACHE_HOME to keep the upload state in; give --state FILE")?,
    };
    Ok(cache.join("tuskd").join("uploads.json"))
}

/// A file's fingerprint for `endpoint`: its canonical path, size and modification time.
pub(super) fn fingerprint(endpoint: &str, file: &Path) -> std::io::Result<String> {
    let path = std::fs::canonicalize(file)?;
    let meta = std::fs::metadata(&path)?;
    let mtime = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let text = format!("{endpoint}\n{}\n{}\n{mtime}", path.display(), meta.len());
    Ok(hex(&sha2::Sha256::digest(text.as_bytes())[..16]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl State {
    /// Reads the state at `path`; a missing file is an empty state, an unreadable one an error
    /// (it is not overwritten: it may hold other uploads' URLs).
    pub(super) fn load(path: &Path) -> Result<State, String> {
        let doc = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "the upload state {} is not readable ({e}); move it away or give --state",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Doc::default(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        Ok(State {
            path: path.to_owned(),
            doc,
        })
    }

    pub(super) fn get(&self, fingerprint: &str) -> Option<&Entry> {
        self.doc.uploads.get(fingerprint)
    }

    /// Records (or with `None` forgets) a file's entry and writes the state.
    pub(super) fn set(&mut self, fingerprint: &str, entry: Option<Entry>) -> Result<(), String> {
        match entry {
            Some(e) => self.doc.uploads.insert(fingerprint.to_owned(), e),
            None => self.doc.uploads.remove(fingerprint),
        };
        self.save()
    }

    fn save(&self) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("writing {}: {e}", self.path.display());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(&self.doc).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, bytes).map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reload_and_a_changed_file_is_another_upload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clip.mp4");
        std::fs::write(&file, b"0123").unwrap();
        let fp = fingerprint("http://h/files/", &file).unwrap();
        assert_ne!(fp, fingerprint("http://other/files/", &file).unwrap());

        let path = dir.path().join("state").join("uploads.json");
        let mut state = State::load(&path).unwrap();
        assert!(state.get(&fp).is_none());
        let entry = Entry {
            url: Some("http://h/files/abc".into()),
            parts: vec![],
        };
        state.set(&fp, Some(entry.clone())).unwrap();
        assert_eq!(State::load(&path).unwrap().get(&fp), Some(&entry));

        std::fs::write(&file, b"01234").unwrap();
        assert_ne!(fingerprint("http://h/files/", &file).unwrap(), fp);

        state.set(&fp, None).unwrap();
        assert!(State::load(&path).unwrap().get(&fp).is_none());
    }

    #[test]
    fn a_damaged_state_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uploads.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let err = State::load(&path).err().unwrap();
        assert!(err.contains("not readable"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
    }
}
