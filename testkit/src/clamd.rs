//! A real clamd (Debian's clamav-daemon) on 127.0.0.1 and a free port, and on a unix socket,
//! with a signature database made here: one NDB signature that finds the EICAR test string
//! anywhere in a file. Dropping it stops the process by its PID.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The EICAR anti-virus test file (harmless; every scanner knows it).
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The name clamd reports for it.
pub const SIGNATURE: &str = "Tuskd-Eicar-Substring.UNOFFICIAL";

pub struct Clamd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Clamd {
    /// Starts clamd; `stream_max` is its StreamMaxLength (e.g. "100M").
    pub fn start(stream_max: &str) -> Clamd {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let hex: String = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = SIGNATURE.trim_end_matches(".UNOFFICIAL");
        std::fs::write(db.join("test.ndb"), format!("{name}:0:*:{hex}\n")).unwrap();
        let port = crate::free_port();
        let mut clamd = Clamd {
            child: None,
            dir,
            port,
        };
        std::fs::write(
            clamd.dir.path().join("clamd.conf"),
            format!(
                "Foreground yes\nTCPSocket {port}\nTCPAddr 127.0.0.1\nLocalSocket {}\n\
                 DatabaseDirectory {}\nStreamMaxLength {stream_max}\nLogFile {}\nLogVerbose no\n",
                clamd.dir.path().join("clamd.sock").display(),
                db.display(),
                clamd.dir.path().join("clamd.log").display()
            ),
        )
        .unwrap();
        clamd.spawn();
        clamd
    }

    fn spawn(&mut self) {
        let child = Command::new("clamd")
            .arg("-c")
            .arg(self.dir.path().join("clamd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd is installed (Debian's clamav-daemon; scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ping() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log =
                    std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default();
                panic!("clamd exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "clamd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reply = String::new();
        s.write_all(b"zPING\0").is_ok()
            && s.read_to_string(&mut reply).is_ok()
            && reply.starts_with("PONG")
    }

    /// `tcp://127.0.0.1:PORT`, for `--clamd`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// `unix:/…/clamd.sock`, the same clamd on its unix socket.
    pub fn unix_url(&self) -> String {
        format!("unix:{}", self.dir.path().join("clamd.sock").display())
    }

    /// Stops clamd (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}
