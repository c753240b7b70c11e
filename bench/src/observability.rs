//! The observability row: what metrics and the access log cost. 1 KiB uploads and HEADs
//! against tuskd as it ships (metrics on, one access line per request) beside tuskd with
//! metrics off, and beside tuskd with the access log off, in the same run.

use super::hooks::with_args;
use super::{Args, Figures, Scenario, Sizes, print_row};

pub async fn run(args: &Args, sizes: &Sizes) {
    println!();
    println!(
        "Observability: tuskd as shipped (first column) beside metrics off, and beside the access log off"
    );
    for scenario in [
        Scenario::Small(sizes.small_count, 32),
        Scenario::Heads(sizes.heads, 32),
    ] {
        for (name, off) in [
            ("metrics off", &["--metrics", "off"][..]),
            ("access log off", &["--log", "info,tuskd::access=off"][..]),
        ] {
            let mut figures: Vec<Vec<Figures>> = vec![Vec::new(), Vec::new()];
            for _ in 0..args.runs {
                figures[0].push(with_args(args, &scenario, &[]).await);
                figures[1].push(with_args(args, &scenario, off).await);
            }
            print_row(&format!("{} vs {name}", scenario.label()), &figures);
        }
    }
}
