//! No leak: 10,000 allocate/map/unmap/free cycles of assorted sizes keep host and
//! client RSS flat, through stock Mesa venus and through our ICD, at 4 KiB and
//! 16 KiB granularity. The figures are printed (`--nocapture`).

use venus_tests::server::Server;

const CHURN: &str = env!("CARGO_BIN_EXE_venus-memchurn");

fn cell(granularity: &str) {
    let mut server = Server::start_with(
        &format!("churn-{granularity}"),
        false,
        &[("VENUS_HOST_GRANULARITY", granularity)],
    );
    let pid = server.pid().to_string();
    for (who, mut cmd) in [
        ("stock Mesa venus", server.venus_command(CHURN)),
        ("our ICD", server.our_icd_command(CHURN)),
    ] {
        let out = cmd
            .args(["--cycles", "10000", "--server-pid", &pid])
            .output()
            .expect("venus-memchurn");
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{who}, granularity {granularity}:\n{stdout}");
        assert!(
            out.status.success() && stdout.lines().any(|l| l == "PASS"),
            "{who} (granularity {granularity}) failed:\n{stdout}\n{}\nserver:\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log_text()
        );
        assert!(
            stdout.contains("host_rss_kib"),
            "host RSS not measured:\n{stdout}"
        );
    }
    assert!(server.is_running());
}

#[test]
fn memory_churn_keeps_rss_flat_4k() {
    cell("4096");
}

#[test]
fn memory_churn_keeps_rss_flat_16k() {
    cell("16384");
}
