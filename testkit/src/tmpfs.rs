//! A small filesystem of a test's own: a tmpfs of a given size mounted on a fresh temporary
//! directory (which needs root, or a user and mount namespace: `unshare -rm`), unmounted when
//! dropped. `fill` takes its free space down to a given figure with a filler file, which
//! `unfill` deletes, as another program filling the disk would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
    filler: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes`; panics, saying why, if this process may not mount.
    pub fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0755"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "the disk-full tests mount a small tmpfs, which needs root (or `unshare -rm`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let filler = dir.path().join("filler");
        Tmpfs { dir, filler }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free on it.
    pub fn free(&self) -> u64 {
        let s = rustix::fs::statvfs(self.dir.path()).unwrap();
        s.f_bavail * s.f_frsize
    }

    /// Grows the filler file until at most `leave` bytes are free (0: until the disk refuses
    /// more).
    pub fn fill(&self, leave: u64) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
            .unwrap();
        let chunk = vec![0x5au8; 64 << 10];
        loop {
            let free = self.free();
            if free <= leave {
                break;
            }
            let n = ((free - leave) as usize).min(chunk.len());
            match f.write_all(&chunk[..n]) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", self.filler.display()),
            }
        }
        f.sync_all().unwrap();
    }

    /// Deletes the filler: its space returns.
    pub fn unfill(&self) {
        let _ = std::fs::remove_file(&self.filler);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process of the test may still hold a file there.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
