//! A fault proxy: an HTTP/1.1 proxy on 127.0.0.1 in front of a test server (moto's S3, or tuskd
//! for a client's tests) that
//! fails, delays, cuts or swallows the requests a test names, on command. Each request is
//! forwarded on a connection of its own and answered with `Connection: close`, so every request
//! is seen whole and on its own, whatever the client's keep-alive.
//!
//! ```ignore
//! let proxy = FaultProxy::start(&s3.endpoint());
//! proxy.inject(Match::put_part(), Fault::Status(500), None); // every part upload fails
//! proxy.inject(Match::complete(), Fault::Status(500), Some(1)); // the first completion fails
//! proxy.down(); // nothing answers at all
//! proxy.clear(); // back to normal
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which requests a fault applies to.
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// The method, e.g. `PUT`; any if `None`.
    pub method: Option<&'static str>,
    /// A piece the request target (path and query) must contain.
    pub target_contains: Option<&'static str>,
    /// A piece the request body must contain (S3's bulk delete names its keys there).
    pub body_contains: Option<&'static str>,
}

impl Match {
    pub fn any() -> Match {
        Match::default()
    }

    /// S3's UploadPart: `PUT ...?partNumber=N&uploadId=...`.
    pub fn put_part() -> Match {
        Match {
            method: Some("PUT"),
            target_contains: Some("partNumber="),
            ..Match::default()
        }
    }

    /// S3's CompleteMultipartUpload: `POST ...?uploadId=...`.
    pub fn complete() -> Match {
        Match {
            method: Some("POST"),
            target_contains: Some("uploadId="),
            ..Match::default()
        }
    }

    /// The completion of the multipart upload of the object whose key contains `key`.
    pub fn complete_of(key: &'static str) -> Match {
        Match {
            body_contains: None,
            target_contains: Some(key),
            ..Match::complete()
        }
    }

    /// S3's DeleteObjects (`POST /bucket?delete`, the keys in the body), which object_store
    /// uses for every delete, with a key containing `key`.
    pub fn delete_of(key: &'static str) -> Match {
        Match {
            method: Some("POST"),
            target_contains: Some("?delete"),
            body_contains: Some(key),
        }
    }

    fn matches(&self, method: &str, target: &str, body: &[u8]) -> bool {
        self.method.is_none_or(|m| m == method)
            && self.target_contains.is_none_or(|t| target.contains(t))
            && self
                .body_contains
                .is_none_or(|b| body.windows(b.len()).any(|w| w == b.as_bytes()))
    }
}

/// What happens to a matching request.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answered with this status and an empty body; the server never sees it.
    Status(u16),
    /// Forwarded after this delay.
    Delay(Duration),
    /// The connection is closed without an answer.
    Cut,
    /// The head and this many bytes of the body reach the server, then both connections are
    /// closed without an answer: a connection lost in the middle of an upload.
    CutAfter(usize),
    /// Never answered: held until the fault is cleared (or a minute passes), then closed.
    Hang,
}

struct Rule {
    matcher: Match,
    fault: Fault,
    /// How many more requests it applies to; `None`: all.
    left: Option<usize>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// Every request seen, as (method, target, body, fault applied).
    log: Vec<(String, String, Vec<u8>, bool)>,
}

pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    /// Bumped by `clear`, so hanging requests let go.
    cleared: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Requests being read, forwarded or answered now.
    busy: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let cleared = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicUsize::new(0));
        let (st, cl, sp, bz) = (state.clone(), cleared.clone(), stop.clone(), busy.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (st, cl, up, bz) = (st.clone(), cl.clone(), upstream.clone(), bz.clone());
                bz.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &st, &cl);
                    bz.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FaultProxy {
            port,
            state,
            cleared,
            stop,
            busy,
        }
    }

    /// `http://127.0.0.1:PORT`, to use as the store's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Applies `fault` to the next `times` matching requests (all of them if `None`).
    pub fn inject(&self, matcher: Match, fault: Fault, times: Option<usize>) {
        self.cleared.store(false, Ordering::Relaxed);
        self.state.lock().unwrap().rules.push(Rule {
            matcher,
            fault,
            left: times,
        });
    }

    /// The store is down: every request hangs until `clear`.
    pub fn down(&self) {
        self.inject(Match::any(), Fault::Hang, None);
    }

    /// Removes every fault; hanging requests are closed.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
        self.cleared.store(true, Ordering::Relaxed);
    }

    /// How many connections the proxy is serving now (reading, forwarding or answering).
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// How many requests matching `matcher` had a fault applied.
    pub fn faulted(&self, matcher: &Match) -> usize {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|(m, t, b, f)| *f && matcher.matches(m, t, b))
            .count()
    }

    /// How many requests matching `matcher` went through to the server.
    pub fn forwarded(&self, matcher: &Match) -> usize {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|(m, t, b, f)| !*f && matcher.matches(m, t, b))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.clear();
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request: read it whole, apply the first matching fault or forward it.
fn serve(
    conn: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    cleared: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line);
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let mut words = request_line.split(' ');
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default().to_owned();

    let fault = {
        let mut st = state.lock().unwrap();
        let fault = st
            .rules
            .iter_mut()
            .find(|r| r.left != Some(0) && r.matcher.matches(&method, &target, &body))
            .map(|r| {
                if let Some(n) = r.left.as_mut() {
                    *n -= 1;
                }
                r.fault
            });
        let faulted = !matches!(fault, None | Some(Fault::Delay(_)));
        st.log
            .push((method.clone(), target.clone(), body.clone(), faulted));
        fault
    };
    let mut conn = conn;
    match fault {
        Some(Fault::Status(code)) => {
            write!(
                conn,
                "HTTP/1.1 {code} Injected Fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
        Some(Fault::Cut) => return Ok(()),
        Some(Fault::Hang) => {
            let until = Instant::now() + Duration::from_secs(60);
            while !cleared.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            return Ok(());
        }
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        Some(Fault::CutAfter(n)) => {
            let mut up = TcpStream::connect(upstream)?;
            for line in &head {
                up.write_all(line.as_bytes())?;
            }
            up.write_all(b"Connection: close\r\n\r\n")?;
            up.write_all(&body[..n.min(body.len())])?;
            up.flush()?;
            return Ok(());
        }
        None => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    for line in &head {
        up.write_all(line.as_bytes())?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    // The server closes after answering (Connection: close); relay its answer as it is, with
    // the client told that this connection ends too.
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 2);
    let (head, rest) = answer.split_at(split);
    let head: String = String::from_utf8_lossy(head)
        .split_inclusive("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    conn.write_all(head.as_bytes())?;
    conn.write_all(b"Connection: close\r\n")?;
    conn.write_all(rest)?;
    Ok(())
}
