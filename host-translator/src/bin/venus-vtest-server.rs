//! `venus-vtest-server`: the vtest front end of the host translator, a drop-in for
//! `virgl_test_server --venus`. See `venus_host::vtest_server`.

use std::process::ExitCode;

use venus_host::vtest_server::{self, Command, USAGE};

fn main() -> ExitCode {
    let config = match vtest_server::parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(config)) => config,
        Err(message) => {
            eprintln!("venus-vtest-server: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    venus_host::init_logging();
    match vtest_server::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("venus-vtest-server: {err}");
            eprintln!("venus-vtest-server: {err}");
            ExitCode::FAILURE
        }
    }
}
