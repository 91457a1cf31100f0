//! `corral attach`'s command line: parsed on its own, like `ctl`, not as run options.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ColorChoice, Parser};

use super::{CliExit, Invocation, clap_exit, values};

/// The dashboard of a running corral (one under systemd, in a container, or started with
/// --no-ui), through its control socket: the same views and keys.
///
/// q or Ctrl-C detaches and leaves corral and its workers running; Q asks whether to shut
/// corral down. With several instances running, -I NAME chooses one.
#[derive(Parser, Debug)]
#[command(name = "corral attach", bin_name = "corral attach", color = ColorChoice::Never, version)]
struct AttachCli {
    /// The instance to attach to [default: the only one running].
    #[arg(short = 'I', long, value_name = "NAME", value_parser = values::name)]
    instance: Option<String>,
    /// The control socket to use instead of finding the instance's.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
}

/// `args` from `attach` on.
pub(super) fn parse(args: &[OsString]) -> Result<Invocation, CliExit> {
    let cli = AttachCli::try_parse_from(args).map_err(|e| clap_exit(&e))?;
    let attach = crate::control::attach::Attach { instance: cli.instance, control: cli.control };
    Ok(Invocation::Attach(attach))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_of(args: &[&str]) -> Result<Invocation, CliExit> {
        let args: Vec<OsString> = ["corral"].iter().chain(args).map(OsString::from).collect();
        super::super::parse_from(args)
    }

    #[test]
    fn attach_takes_an_instance_or_a_socket_and_nothing_else() {
        let Ok(Invocation::Attach(a)) = parse_of(&["attach", "-I", "shop"]) else {
            panic!("attach -I shop");
        };
        assert_eq!((a.instance.as_deref(), a.control), (Some("shop"), None));
        let Ok(Invocation::Attach(a)) = parse_of(&["attach", "--control", "/run/x.sock"]) else {
            panic!("attach --control");
        };
        assert_eq!(a.control, Some(PathBuf::from("/run/x.sock")));
        let Ok(Invocation::Attach(a)) = parse_of(&["attach"]) else { panic!("attach") };
        assert_eq!(a, crate::control::attach::Attach { instance: None, control: None });
        let err = parse_of(&["attach", "status"]).expect_err("no subcommand");
        assert_eq!(err.code, 2, "{}", err.message);
        let err = parse_of(&["attach", "-I", "a/b"]).expect_err("not a name");
        assert_eq!(err.code, 2, "{}", err.message);
    }
}
