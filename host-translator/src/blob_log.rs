//! `VENUS_BLOB_LOG=FILE`: one line per blob the host hands out (and per host
//! pointer it imports), so tests can check every size and address against the
//! sharing granularity in force.

use std::io::Write;

/// Appends `kind res_id blob_id size addr granularity` to the log, if enabled.
fn append(line: &str) {
    let Some(path) = std::env::var_os("VENUS_BLOB_LOG") else {
        return;
    };
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = r {
        tracing::warn!("cannot append to VENUS_BLOB_LOG: {e}");
    }
}

/// A blob handed to a client.
pub fn record(
    ctx: u32,
    res_id: u32,
    blob_id: u64,
    requested: u64,
    size: u64,
    addr: usize,
    granularity: u64,
) {
    append(&format!(
        "blob ctx={ctx} res_id={res_id} blob_id={blob_id} requested={requested} size={size} addr={addr:#x} granularity={granularity}\n"
    ));
}

/// Host memory imported into the driver.
pub fn record_import(size: u64, addr: usize, granularity: u64) {
    append(&format!(
        "import size={size} addr={addr:#x} granularity={granularity}\n"
    ));
}
