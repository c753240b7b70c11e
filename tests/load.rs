//! The real `tuskd` binary under a crowd of stalled uploads: phones that start a PATCH, send a
//! little and go quiet. However many there are, other clients must still be served; and
//! connections that send nothing at all do not keep their slots.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

mod common;
use common::*;

/// More than tokio's default blocking pool (512 threads), which stalled appends once filled.
const STALLED: usize = 600;
/// Generous: the machine is shared; the server was wedged for good before, not slow.
const DEADLINE: Duration = Duration::from_secs(60);

/// One request on a fresh connection that must be answered within `DEADLINE`.
fn answered(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut s = send_request(addr, method, path, headers, body);
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut out = [0u8; 12];
    s.read_exact(&mut out)
        .unwrap_or_else(|e| panic!("{method} {path} got no answer within {DEADLINE:?}: {e}"));
    std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap()
}

#[test]
fn stalled_uploads_do_not_starve_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &["--fsync", "off", "--read-timeout", "120s"]);
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        let path = create(&t.addr, 1 << 20);
        // 1 KiB of a 1 MiB body, then nothing.
        stalled.push(open_patch(&t.addr, &path, 0, 1 << 20, &[7u8; 1024]));
    }

    let path = create(&t.addr, 1 << 20);
    assert_eq!(answered(&t.addr, "HEAD", &path, &[], b""), 200);
    let length = [("Upload-Length", "5")];
    assert_eq!(answered(&t.addr, "POST", "/files/", &length, b""), 201);
    let small = create(&t.addr, 5);
    let patch = [
        ("Upload-Offset", "0"),
        ("Content-Type", "application/offset+octet-stream"),
    ];
    assert_eq!(answered(&t.addr, "PATCH", &small, &patch, b"hello"), 204);
    assert_eq!(offset(&t.addr, &small), 5);
    drop(stalled);
}

#[test]
fn connections_that_send_nothing_are_closed_after_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(
        dir.path(),
        &["--read-timeout", "1s", "--max-connections", "4"],
    );
    // Four connections that never send a byte fill every slot ...
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&t.addr).unwrap())
        .collect();
    // ... until the read timeout closes them (a read sees the end of the stream).
    for c in &mut idle {
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).unwrap(), 0, "closed without an answer");
    }
    // Their slots are free again.
    let length = [("Upload-Length", "5")];
    assert_eq!(answered(&t.addr, "POST", "/files/", &length, b""), 201);
}
