//! Documents: a PDF's first page is rendered by poppler's `pdftoppm` (a child process under a
//! time limit, an address-space limit where `prlimit` exists, and killed if the run is dropped)
//! and written at the thumbnail widths as JPEG and WebP. Other admitted documents are stored
//! as they are: READY with no variants.

use std::path::Path;
use std::time::Duration;

use super::config::MediaConfig;
use super::job::Progress;
use super::publish::Produced;
use super::steps::StepError;

/// How long poppler may take for one page.
const RENDER_TIMEOUT: Duration = Duration::from_secs(30);
/// Address space poppler may use.
const RENDER_MEMORY: u64 = 1 << 30;

pub async fn process(
    input: &Path,
    out: &Path,
    mime: &str,
    cfg: &MediaConfig,
    progress: &Progress,
) -> Result<Produced, StepError> {
    if mime != "application/pdf" {
        return Ok(Produced::default());
    }
    let widths = &cfg.thumb_widths;
    let top = widths.iter().copied().max().unwrap_or(640);
    let page = out.join("page");
    render(input, &page, top).await?;
    progress.report(50.0);
    previews(&page.with_extension("png"), out, widths).await
}

async fn render(input: &Path, out_base: &Path, width: u32) -> Result<(), StepError> {
    let prlimit = which("prlimit");
    let mut cmd = match &prlimit {
        Some(p) => {
            let mut c = tokio::process::Command::new(p);
            c.arg(format!("--as={RENDER_MEMORY}"))
                .arg(format!("--cpu={}", RENDER_TIMEOUT.as_secs()))
                .arg("--")
                .arg("pdftoppm");
            c
        }
        None => tokio::process::Command::new("pdftoppm"),
    };
    cmd.args(["-f", "1", "-l", "1", "-singlefile", "-png", "-q"])
        .args(["-scale-to-x", &width.to_string(), "-scale-to-y", "-1"])
        // A page far taller than wide would render huge: only its top (4:1) is drawn.
        .args(["-W", &width.to_string(), "-H", &(width * 4).to_string()])
        .arg(input)
        .arg(out_base)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        StepError::permanent(
            "unsupported",
            format!("cannot run pdftoppm (Debian's poppler-utils): {e}"),
        )
    })?;
    let done = tokio::time::timeout(RENDER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            StepError::permanent(
                "decode_failed",
                format!("the PDF's first page took more than {RENDER_TIMEOUT:?} to render"),
            )
        })??;
    if !done.status.success() {
        let err = String::from_utf8_lossy(&done.stderr);
        let err: String = err.chars().filter(|c| !c.is_control()).take(300).collect();
        return Err(StepError::permanent(
            "decode_failed",
            format!("the PDF cannot be rendered ({}): {err}", done.status),
        ));
    }
    Ok(())
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(feature = "media")]
async fn previews(png: &Path, out: &Path, widths: &[u32]) -> Result<Produced, StepError> {
    use super::images::{decode, encode};
    let (png, out, widths) = (png.to_owned(), out.to_owned(), widths.to_vec());
    let files = super::job::blocking(move || {
        let format = decode::Format::Raster(image::ImageFormat::Png);
        let dims = decode::dimensions(&png, format)?;
        let page = decode::still(&png, format, dims, None)?;
        let _ = std::fs::remove_file(&png);
        encode::variants(page, &widths, &out, ("page", "page-"), &|| Ok(()))
    })
    .await?;
    Ok(Produced {
        files,
        ..Default::default()
    })
}

#[cfg(not(feature = "media"))]
async fn previews(_png: &Path, _out: &Path, _widths: &[u32]) -> Result<Produced, StepError> {
    Err(super::job::unsupported())
}
