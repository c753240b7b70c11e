//! Progress for `tuskd upload`: a bar per file with its rate and time left (indicatif) when
//! stdout is a terminal; otherwise a plain line on stderr every few seconds, for logs.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is written at most.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub(super) struct Display {
    multi: Option<MultiProgress>,
}

impl Display {
    pub(super) fn new(quiet_stdout: bool) -> Display {
        let bars = !quiet_stdout && std::io::stdout().is_terminal();
        Display {
            multi: bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
        }
    }

    /// A bar for `name`'s `total` bytes, sent in `parts` ranges at once.
    pub(super) fn bytes(&self, name: &str, total: u64, parts: usize) -> Bar {
        self.bar(name, total, parts, Unit::Bytes)
    }

    /// A bar for `name`'s processing, in percent.
    pub(super) fn percent(&self, name: &str) -> Bar {
        self.bar(name, 100, 1, Unit::Percent)
    }

    fn bar(&self, name: &str, total: u64, parts: usize, unit: Unit) -> Bar {
        let fancy = self.multi.as_ref().map(|m| {
            let template = match unit {
                Unit::Bytes => {
                    "{prefix:.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
                }
                Unit::Percent => "{prefix:.bold} [{bar:30.green/blue}] {pos}% {msg}",
            };
            let pb = m.add(ProgressBar::new(total));
            pb.set_style(
                ProgressStyle::with_template(template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            pb.set_prefix(name.to_owned());
            pb
        });
        Bar {
            fancy,
            plain: Arc::new(Plain {
                name: name.to_owned(),
                total,
                unit,
                parts: (0..parts.max(1)).map(|_| AtomicU64::new(0)).collect(),
                base: AtomicU64::new(u64::MAX),
                started: Instant::now(),
                last: Mutex::new(None),
            }),
        }
    }

    /// A line on stdout that does not break the bars.
    pub(super) fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => println!("{line}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Bytes,
    Percent,
}

struct Plain {
    name: String,
    total: u64,
    unit: Unit,
    /// Per range: bytes the server has or that are on their way.
    parts: Vec<AtomicU64>,
    /// The position when the server first said where the upload was: the rate counts only
    /// what this run sends.
    base: AtomicU64,
    started: Instant,
    last: Mutex<Option<Instant>>,
}

#[derive(Clone)]
pub(super) struct Bar {
    fancy: Option<ProgressBar>,
    plain: Arc<Plain>,
}

impl Bar {
    fn position(&self) -> u64 {
        self.plain
            .parts
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .sum()
    }

    /// Range `part` is at `pos` (the server's offset after a HEAD or PATCH).
    pub(super) fn set(&self, part: usize, pos: u64) {
        self.plain.parts[part].store(pos, Ordering::Relaxed);
        let _ = self.plain.base.compare_exchange(
            u64::MAX,
            self.position(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.moved();
    }

    /// `n` more bytes of range `part` are on their way.
    pub(super) fn add(&self, part: usize, n: u64) {
        self.plain.parts[part].fetch_add(n, Ordering::Relaxed);
        self.moved();
    }

    fn moved(&self) {
        let pos = self.position();
        if let Some(pb) = &self.fancy {
            pb.set_position(pos);
            return;
        }
        let now = Instant::now();
        let mut last = self.plain.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now - t < PLAIN_EVERY) {
            return;
        }
        *last = Some(now);
        drop(last);
        eprintln!("{}", self.plain_line(pos, None));
    }

    fn plain_line(&self, pos: u64, msg: Option<&str>) -> String {
        let p = &self.plain;
        let percent = (pos * 100).checked_div(p.total).unwrap_or(100);
        let mut line = match p.unit {
            Unit::Percent => format!("{}: {percent}%", p.name),
            Unit::Bytes => {
                let secs = p.started.elapsed().as_secs_f64().max(0.001);
                let base = p.base.load(Ordering::Relaxed);
                let rate = pos.saturating_sub(base.min(pos)) as f64 / secs;
                let left = if rate > 0.0 {
                    format!(
                        ", {} left",
                        humantime::format_duration(Duration::from_secs(
                            ((p.total - pos.min(p.total)) as f64 / rate) as u64
                        ))
                    )
                } else {
                    String::new()
                };
                format!(
                    "{}: {percent}% ({} of {}, {}/s{left})",
                    p.name,
                    BinaryBytes(pos),
                    BinaryBytes(p.total),
                    BinaryBytes(rate as u64)
                )
            }
        };
        if let Some(m) = msg {
            line.push(' ');
            line.push_str(m);
        }
        line
    }

    /// A word next to the bar (the media status, a retry).
    pub(super) fn note(&self, msg: &str) {
        match &self.fancy {
            Some(pb) => pb.set_message(msg.to_owned()),
            None => eprintln!("{}", self.plain_line(self.position(), Some(msg))),
        }
    }

    pub(super) fn finish(&self, msg: &str) {
        match &self.fancy {
            Some(pb) => pb.finish_with_message(msg.to_owned()),
            None => eprintln!("{}", self.plain_line(self.position(), Some(msg))),
        }
    }
}
