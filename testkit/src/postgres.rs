//! A real PostgreSQL 15 server (Debian's postgresql-15) on 127.0.0.1 and a free port, in a
//! temporary directory, for one test binary's tests: initdb (as the postgres user when run as
//! root, which initdb refuses), `pg_ctl start -w`, one database per `database()` call. Dropping
//! it stops the server by the PID in its postmaster.pid.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    databases: AtomicUsize,
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args…`, as the postgres user when we are root.
fn server_command(program: &str) -> Command {
    let path = Path::new(BIN).join(program);
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/test.sh installs postgresql-15)"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Postgres {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed (Debian's postgresql-15; scripts/test.sh installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("tuskd-pg")
            .tempdir()
            .unwrap();
        if as_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let data = dir.path().join("data");
        let mut initdb = server_command("initdb");
        initdb.args(["-D"]).arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        run(initdb, "initdb");
        let port = crate::free_port();
        let pg = Postgres {
            dir,
            port,
            databases: AtomicUsize::new(0),
        };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB",
            pg.dir.path().display()
        );
        let mut start = server_command("pg_ctl");
        start
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.path().join("server.log"))
            .args(["-o", &options, "start"]);
        run(start, "pg_ctl start");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL as the superuser in database `db`.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(db))
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql is installed (postgresql-client)");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new, empty database; returns its URL.
    pub fn database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::Relaxed));
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let Some(pid) = self.pid() else { return };
        // SIGQUIT: immediate shutdown; the data is thrown away with the directory.
        let _ = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
