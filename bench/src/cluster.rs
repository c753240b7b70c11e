//! The cluster rows: 1 KiB uploads, HEADs and concurrent 16 MiB uploads on one node with SQLite,
//! one node with Postgres, and three nodes with Postgres behind HAProxy (round-robin), each
//! beside the sink in the same run: one sink, or three sinks behind the same HAProxy for the
//! three nodes, so that the balancer's own cost is in both. The bytes go to one local directory
//! that every node is told is shared (`--store-shared`), so the rows differ by the metadata store
//! and the number of nodes only. PostgreSQL 15 and HAProxy are started here, on 127.0.0.1.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::postgres::Postgres;
use tokio::process::{Child, Command};

use super::hooks::tuskd;
use super::{Args, Driver, Figures, Scenario, Sizes, Target, print_row};

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Sqlite,
    Postgres,
    ThreeNodes,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::Sqlite => "SQLite",
            Setup::Postgres => "Postgres",
            Setup::ThreeNodes => "Postgres, 3 nodes",
        }
    }
}

pub async fn run(args: &Args, sizes: &Sizes) {
    let pg = Postgres::start();
    println!();
    println!(
        "Cluster: tuskd on SQLite, on Postgres, and three nodes on Postgres behind HAProxy, each \
         beside the sink (three sinks behind HAProxy for the three nodes)"
    );
    let scenarios = [
        Scenario::Small(sizes.small_count, 32),
        Scenario::Heads(sizes.heads, 32),
        Scenario::Concurrent(sizes.many, sizes.many_size),
    ];
    for scenario in &scenarios {
        for setup in [Setup::Sqlite, Setup::Postgres, Setup::ThreeNodes] {
            let mut figures: Vec<Vec<Figures>> = vec![Vec::new(), Vec::new()];
            let mut work = None;
            for _ in 0..args.runs {
                let (f, w) = nodes(args, &pg, setup, scenario).await;
                figures[0].push(f);
                work = w;
                figures[1].push(sinks(setup, scenario).await);
            }
            print_row(&format!("{}: {}", setup.label(), short(scenario)), &figures);
            if let (Setup::Postgres, Some((xacts, writes))) = (setup, work) {
                let per = scenario.count() as f64;
                println!(
                    "  Postgres per {}: {:.1} transactions, {:.1} rows written",
                    scenario.unit(),
                    xacts / per,
                    writes / per
                );
            }
        }
    }
    println!(
        "  1 node: one node and one sink; 3 nodes: behind HAProxy (round-robin per request), \
         beside three sinks behind it.\n  RSS: the largest node's peak; CPU: all nodes together \
         (HAProxy's and Postgres' not counted)"
    );
}

/// The scenario, in the few words the rows have room for.
fn short(scenario: &Scenario) -> String {
    match *scenario {
        Scenario::Small(k, _) => format!("{k} x 1 KiB (uploads/s)"),
        Scenario::Heads(k, _) => format!("{k} HEADs (HEAD/s)"),
        Scenario::Concurrent(k, n) => format!("{k} x {} (MB/s)", super::human(n)),
        _ => scenario.label(),
    }
}

impl Scenario {
    /// How many uploads or requests the scenario makes.
    fn count(&self) -> usize {
        match *self {
            Scenario::Small(k, _) | Scenario::Heads(k, _) | Scenario::Concurrent(k, _) => k,
            _ => 1,
        }
    }

    fn unit(&self) -> &'static str {
        match self {
            Scenario::Heads(..) => "HEAD",
            _ => "upload",
        }
    }
}

/// Transactions committed and rows written in database `db` so far, once the statistics of
/// sessions that ended have arrived (they are sent when a session ends).
async fn work_done(pg: &Postgres, db: &str) -> (f64, f64) {
    let read = || {
        let row = pg.sql(
            db,
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database \
             WHERE datname = current_database()",
        );
        let mut v = row.split('|').map(|x| x.parse::<f64>().unwrap_or(f64::NAN));
        (v.next().unwrap_or(f64::NAN), v.next().unwrap_or(f64::NAN))
    };
    let mut last = read();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = read();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// One run against fresh tuskd processes of `setup`; with Postgres, also the transactions and
/// row writes the scenario cost there.
async fn nodes(
    args: &Args,
    pg: &Postgres,
    setup: Setup,
    scenario: &Scenario,
) -> (Figures, Option<(f64, f64)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store");
    let meta = pg.database();
    let count = if setup == Setup::ThreeNodes { 3 } else { 1 };
    let mut targets = Vec::new();
    for i in 0..count {
        let data = dir.path().join(format!("node{i}"));
        let mut cmd = tuskd(args, &data);
        if setup != Setup::Sqlite {
            cmd.args(["--meta", &meta, "--store-shared", "--store"])
                .arg(&store);
        }
        targets.push(Target::start("tuskd", &mut cmd).await);
    }
    let db = meta.rsplit('/').next().unwrap_or_default().to_owned();
    let before = if setup == Setup::Sqlite {
        None
    } else {
        Some(work_done(pg, &db).await)
    };
    let figures = measure(targets, scenario, setup == Setup::ThreeNodes, dir.path()).await;
    let work = match before {
        Some((x0, w0)) => {
            let (x1, w1) = work_done(pg, &db).await;
            Some((x1 - x0, w1 - w0))
        }
        None => None,
    };
    (figures, work)
}

/// The same run against sinks: one, or three behind HAProxy.
async fn sinks(setup: Setup, scenario: &Scenario) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let count = if setup == Setup::ThreeNodes { 3 } else { 1 };
    let mut targets = Vec::new();
    for _ in 0..count {
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.arg("sink");
        targets.push(Target::start("sink", &mut cmd).await);
    }
    measure(targets, scenario, setup == Setup::ThreeNodes, dir.path()).await
}

async fn measure(
    mut targets: Vec<Target>,
    scenario: &Scenario,
    balanced: bool,
    dir: &Path,
) -> Figures {
    let mut haproxy = None;
    let driver = if balanced {
        let (child, driver) = balance(&targets, dir).await;
        haproxy = Some(child);
        driver
    } else {
        targets[0].driver.clone()
    };
    let rate = scenario.run(&driver).await;
    let figures = Figures {
        rate,
        rss_mib: targets
            .iter()
            .map(Target::peak_rss_mib)
            .fold(f64::NAN, f64::max),
        cpu_s: targets.iter().map(Target::cpu_seconds).sum(),
    };
    if let Some(mut h) = haproxy {
        let _ = h.start_kill();
        let _ = h.wait().await;
    }
    for t in &mut targets {
        t.stop().await;
    }
    figures
}

/// HAProxy in front of `targets`, round-robin per request; a driver for it.
async fn balance(targets: &[Target], dir: &Path) -> (Child, Driver) {
    let port = testkit::free_port();
    let servers: String = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "    server n{i} {}\n",
                super::origin(&t.driver.endpoint).trim_start_matches("http://")
            )
        })
        .collect();
    let config = format!(
        "global\n    maxconn 4000\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 120s\n    \
         timeout server 120s\n    option http-server-close\n\
         frontend tus\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
         backend nodes\n    balance roundrobin\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).expect("write haproxy.cfg");
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy is installed (Debian's haproxy)");
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "HAProxy did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = &targets[0].driver.endpoint[super::origin(&targets[0].driver.endpoint).len()..];
    let mut driver = targets[0].driver.clone();
    driver.endpoint = std::sync::Arc::new(format!("http://127.0.0.1:{port}{path}"));
    (child, driver)
}
