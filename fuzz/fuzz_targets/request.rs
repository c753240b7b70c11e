//! Whole requests, as bytes on a connection, through an in-process tuskd (local disk, SQLite):
//! hyper's parsing, the edge, routing and every handler. The server must answer or close, never
//! hang, and never panic (libfuzzer-sys turns a panic in any thread into a crash).
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = tuskd::Config::new(dir.path());
        config.fsync = false;
        config.max_size = Some(1 << 20);
        config.read_timeout = Duration::from_secs(2);
        let addr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = tuskd::App::open(config).await.unwrap();
            tokio::spawn(async move {
                tuskd::run(listener, app, std::future::pending()).await.unwrap();
            });
            addr
        });
        Server {
            runtime,
            addr,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = server();
    s.runtime.block_on(async {
        let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        // The request, then end of input: a body cut short is a lost connection, answered at once.
        let _ = conn.write_all(data).await;
        let _ = conn.shutdown().await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer));
        assert!(read.await.is_ok(), "no answer and no close within 10 s");
        // An HTTP/1.0 request gets an HTTP/1.0 answer; HTTP/2 with prior knowledge (h2c) is
        // answered in frames.
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.") || data.starts_with(b"PRI"),
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    });
});
