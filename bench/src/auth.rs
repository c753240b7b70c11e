//! The auth rows: what authentication costs. 1 KiB uploads and HEADs with `--auth jwt`, once
//! with an HS256 secret and once with an ES256 public key (tokens minted by `tuskd token`, sent
//! on every request), beside the same tuskd with `--auth none`, runs interleaved.

use std::path::Path;

use super::hooks::tuskd;
use super::{Args, Figures, Scenario, Sizes, Target, print_row};

pub async fn run(args: &Args, sizes: &Sizes) {
    println!();
    println!("Auth: tuskd with --auth jwt (first column) beside tuskd with --auth none");
    let keys = tempfile::tempdir().expect("temp dir");
    let dir = keys.path();
    std::fs::write(
        dir.join("secret"),
        "bench-secret-0123456789abcdef0123456789",
    )
    .expect("secret");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.key",
        ],
    );
    openssl(dir, &["pkey", "-in", "ec.key", "-pubout", "-out", "ec.pub"]);
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let hs = token(args, &["--secret-file", &path("secret")]);
    let es = token(args, &["--private-key-file", &path("ec.key")]);
    let (secret, public) = (path("secret"), path("ec.pub"));
    let configs = [
        (
            "HS256",
            vec!["--auth", "jwt", "--auth-jwt-secret-file", &secret],
            hs,
        ),
        (
            "ES256",
            vec!["--auth", "jwt", "--auth-jwt-public-key-file", &public],
            es,
        ),
    ];
    for scenario in [
        Scenario::Small(sizes.small_count, 32),
        Scenario::Heads(sizes.heads, 32),
    ] {
        for (name, flags, token) in &configs {
            let mut figures: Vec<Vec<Figures>> = vec![Vec::new(), Vec::new()];
            for _ in 0..args.runs {
                figures[0].push(one(args, &scenario, flags, Some(token)).await);
                figures[1].push(one(args, &scenario, &[], None).await);
            }
            print_row(
                &format!("{} jwt {name} vs none", scenario.label()),
                &figures,
            );
        }
    }
}

async fn one(args: &Args, scenario: &Scenario, extra: &[&str], token: Option<&str>) -> Figures {
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = tuskd(args, data.path());
    cmd.args(extra);
    let mut target = Target::start("tuskd", &mut cmd).await;
    target.driver.bearer =
        token.map(|t| http::HeaderValue::from_str(&format!("Bearer {t}")).expect("token"));
    let rate = scenario.run(&target.driver).await;
    let f = Figures {
        rate,
        rss_mib: target.peak_rss_mib(),
        cpu_s: target.cpu_seconds(),
    };
    target.stop().await;
    f
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args:?}");
}

fn token(args: &Args, key: &[&str]) -> String {
    let out = std::process::Command::new(&args.tuskd)
        .arg("token")
        .args(key)
        .args(["--sub", "bench", "--ttl", "2h"])
        .output()
        .expect("tuskd token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}
