//! The S3 rows: tuskd with `--store s3://` against moto's S3-compatible server on 127.0.0.1,
//! beside a direct object_store multipart put of the same bytes to the same kind of server.
//! Each run gets a fresh moto (it keeps objects in memory), so runs do not slow each other.

use std::sync::Arc;
use std::time::Instant;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use testkit::S3Server;
use tokio::process::Command;

use super::{Args, Figures, MIB, Scenario, Sizes, Target, human, mbps, print_row};

/// tuskd's default part size, used by the direct put too.
const PART: usize = 8 << 20;
/// Parts in flight at once in the direct put.
const DIRECT_CONCURRENCY: usize = 8;

pub async fn run(args: &Args, sizes: &Sizes) {
    println!();
    println!(
        "S3: tuskd --store s3:// (part size {}) beside a direct object_store multipart put, \
         both to moto on 127.0.0.1",
        human(PART as u64)
    );
    // (label, scenario, extra tuskd flags, unsigned payloads). Signed is what plain HTTP
    // endpoints get by default; unsigned is tuskd's default over HTTPS (real S3, R2, ...).
    let cases: Vec<(String, Scenario, Vec<String>, bool)> = vec![
        (
            format!("{} to S3, one PATCH (MB/s)", human(sizes.big)),
            Scenario::OnePatch(sizes.big),
            vec![],
            false,
        ),
        (
            format!("{} to S3, unsigned payloads", human(sizes.big)),
            Scenario::OnePatch(sizes.big),
            vec![],
            true,
        ),
        (
            format!(
                "{} x {} to S3, concurrent (MB/s)",
                sizes.many,
                human(sizes.many_size)
            ),
            Scenario::Concurrent(sizes.many, sizes.many_size),
            vec![],
            false,
        ),
        (
            format!(
                "{} x {} to S3, --max-buffered 64MiB",
                sizes.many,
                human(sizes.many_size)
            ),
            Scenario::Concurrent(sizes.many, sizes.many_size),
            vec!["--max-buffered".into(), "64MiB".into()],
            false,
        ),
    ];
    for (i, (label, scenario, extra, unsigned)) in cases.into_iter().enumerate() {
        // Numbered after the local scenarios, for --only.
        if args.only.is_some_and(|only| only != i + 6) {
            continue;
        }
        let mut figures: Vec<Vec<Figures>> = vec![Vec::new(), Vec::new()];
        for _ in 0..args.runs {
            figures[0].push(through_tuskd(args, &scenario, &extra, unsigned).await);
            figures[1].push(direct(&scenario, unsigned).await);
        }
        print_row(&label, &figures);
    }
}

fn moto() -> S3Server {
    let s3 = S3Server::start();
    s3.create_bucket("bench");
    s3
}

async fn through_tuskd(
    args: &Args,
    scenario: &Scenario,
    extra: &[String],
    unsigned: bool,
) -> Figures {
    let s3 = moto();
    let data = tempfile::tempdir().expect("temp dir");
    let mut target = Target::start(
        "tuskd",
        Command::new(&args.tuskd)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--expire-after",
                "0",
                "--media",
                "off",
            ])
            .args(["--fsync", &args.fsync, "--data-dir"])
            .arg(data.path())
            .args([
                "--store",
                "s3://bench/tuskd",
                "--s3-endpoint",
                &s3.endpoint(),
            ])
            .args(extra)
            .envs(s3.env())
            .env("AWS_UNSIGNED_PAYLOAD", unsigned.to_string()),
    )
    .await;
    let rate = scenario.run(&target.driver).await;
    let figures = Figures {
        rate,
        rss_mib: target.peak_rss_mib(),
        cpu_s: target.cpu_seconds(),
    };
    target.stop().await;
    figures
}

/// The same bytes, in the same 1 MiB blocks, put straight to the store with WriteMultipart.
async fn direct(scenario: &Scenario, unsigned: bool) -> Figures {
    let s3 = moto();
    let store: Arc<dyn ObjectStore> = Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(s3.endpoint())
            .with_unsigned_payload(unsigned)
            .with_allow_http(true)
            .with_bucket_name("bench")
            .with_region("us-east-1")
            .with_access_key_id("bench")
            .with_secret_access_key("bench")
            .build()
            .expect("S3 client"),
    );
    let block = bytes::Bytes::from((0..MIB).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    let (uploads, size) = match *scenario {
        Scenario::OnePatch(n) => (1, n),
        Scenario::Concurrent(k, n) => (k, n),
        _ => unreachable!("only upload scenarios run against S3"),
    };
    let start = Instant::now();
    let tasks: Vec<_> = (0..uploads)
        .map(|i| {
            let (store, block) = (store.clone(), block.clone());
            tokio::spawn(async move {
                let path = Path::from(format!("direct/{i}"));
                let upload = store.put_multipart(&path).await.expect("start multipart");
                let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
                let mut left = size;
                while left > 0 {
                    w.wait_for_capacity(DIRECT_CONCURRENCY)
                        .await
                        .expect("part upload");
                    let len = MIB.min(left);
                    w.put(block.slice(..len as usize));
                    left -= len;
                }
                w.finish().await.expect("complete multipart");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("direct put");
    }
    Figures {
        rate: mbps(size * uploads as u64, start.elapsed()),
        rss_mib: f64::NAN,
        cpu_s: f64::NAN,
    }
}
