//! Command line of `venus-vtest-server`.

use std::ffi::OsString;
use std::path::PathBuf;

use venus_protocol::vtest::DEFAULT_SOCKET_NAME;

use super::ServerConfig;
use crate::RendererConfig;

/// Usage text for `--help` and errors.
pub const USAGE: &str = "\
Usage: venus-vtest-server [--socket-path PATH] [--host-layer LAYER]...

Serves Venus (Vulkan) to vtest clients such as Mesa's venus driver
(VN_DEBUG=vtest VTEST_SOCKET_NAME=PATH), as `virgl_test_server --venus` does.

Options:
  --socket-path PATH   Unix socket to listen on (default /tmp/.virgl_test);
                       a stale socket file there is replaced
  --host-layer LAYER   enable a host Vulkan instance layer (repeatable)
  -h, --help           print this help

Accepted and ignored for compatibility with virgl_test_server:
  --venus --no-virgl --multi-clients --no-fork --use-egl-surfaceless
  --use-gles --use-glx --compat --rendernode DEV

Logging: VENUS_LOG (e.g. VENUS_LOG=debug). SIGTERM or SIGINT stops the server.
";

/// What the command line asks for.
#[derive(Clone, Debug)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Serve.
    Run(ServerConfig),
}

const IGNORED_FLAGS: &[&str] = &[
    "--venus",
    "--no-virgl",
    "--multi-clients",
    "--no-fork",
    "--use-egl-surfaceless",
    "--use-gles",
    "--use-glx",
    "--compat",
];

/// Parses the arguments after the program name.
pub fn parse_args<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = OsString>,
{
    let mut socket_path = PathBuf::from(DEFAULT_SOCKET_NAME);
    let mut host_layers = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| format!("unexpected argument {arg:?}"))?
            .to_owned();
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(OsString::from(value)))
            }
            _ => (text.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--socket-path" => socket_path = PathBuf::from(value("--socket-path")?),
            "--host-layer" => {
                let layer = value("--host-layer")?;
                let layer = layer
                    .into_string()
                    .map_err(|l| format!("layer name {l:?} is not UTF-8"))?;
                host_layers.push(layer);
            }
            "--rendernode" => {
                value("--rendernode")?;
            }
            f if IGNORED_FLAGS.contains(&f) && inline.is_none() => {}
            _ => return Err(format!("unexpected argument {text:?}")),
        }
    }
    Ok(Command::Run(ServerConfig {
        socket_path,
        renderer: RendererConfig {
            host_layers,
            ..RendererConfig::from_env()
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(OsString::from))
    }

    fn run_config(args: &[&str]) -> ServerConfig {
        match parse(args) {
            Ok(Command::Run(config)) => config,
            other => panic!("{args:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_and_values() {
        let config = run_config(&[]);
        assert_eq!(config.socket_path, PathBuf::from("/tmp/.virgl_test"));
        assert!(config.renderer.host_layers.is_empty());

        let config = run_config(&[
            "--venus",
            "--socket-path",
            "/tmp/a.sock",
            "--host-layer=L1",
            "--host-layer",
            "L2",
            "--rendernode",
            "/dev/dri/renderD128",
            "--multi-clients",
        ]);
        assert_eq!(config.socket_path, PathBuf::from("/tmp/a.sock"));
        assert_eq!(
            config.renderer.host_layers,
            vec!["L1".to_owned(), "L2".to_owned()]
        );
        assert_eq!(
            run_config(&["--socket-path=/x"]).socket_path,
            PathBuf::from("/x")
        );
    }

    #[test]
    fn help_and_errors() {
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert!(matches!(
            parse(&["--socket-path", "/x", "-h"]),
            Ok(Command::Help)
        ));
        assert!(parse(&["--socket-path"]).is_err());
        assert!(parse(&["--socket-path="]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--venus=1"]).is_err());
        assert!(parse(&["replay-file"]).is_err());
    }
}
