//! This process's name among the nodes sharing a store: the machine's host name, the process
//! id and a random suffix (a restarted process on the same host is another node).

use crate::domain::upload::UploadId;

/// `<host>-<pid>-<8 random characters>`.
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!(
        "{}-{}-{}",
        if host.is_empty() { "node" } else { &host },
        std::process::id(),
        &UploadId::random().as_str()[..8]
    )
}
