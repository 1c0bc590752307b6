//! Placeholder crate: the Venus protocol crate (issue 2) is in place; this end is
//! built by a later issue. Only logging setup lives here so far.

/// Installs the `tracing` subscriber once, filtered by the `VENUS_LOG` environment
/// variable (EnvFilter syntax, e.g. `VENUS_LOG=debug` or `VENUS_LOG=venus=trace`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VENUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
