//! `corral demo` (README.md): the cluster of `assets/demo.toml`, built into the binary, run
//! with corral itself as the worker program and the demo's own options applied.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::Path;

use super::file::{self, FileCommand};
use super::{CliExit, DemoArgs, RunOpts, config_run};
use crate::config::{ListenAddr, RunSpec};
use crate::spec::values::Listen;

/// The demo's config, as the README shows it.
pub const DEMO_TOML: &str = include_str!("../../assets/demo.toml");

/// The group whose workers serve HTTP; `--port`, `-w` and `-n` are about it.
const HTTP_GROUP: &str = "web";
const JOBS_GROUP: &str = "jobs";

/// Whether corral was started with sockets of its own (`LISTEN_FDS` for this pid).
fn handed_sockets() -> bool {
    let pid = std::env::var("LISTEN_PID").ok().and_then(|p| p.trim().parse::<u32>().ok());
    std::env::var_os("LISTEN_FDS").is_some() && pid == Some(std::process::id())
}

pub(super) fn run_spec(
    opts: &RunOpts,
    given: &dyn Fn(&str) -> bool,
    demo: &DemoArgs,
    path_var: Option<&OsStr>,
) -> Result<RunSpec, CliExit> {
    if !opts.listen.is_empty() {
        return Err(CliExit::usage("'--listen' cannot be used with 'demo' (use '--port')"));
    }
    let exe = std::env::current_exe()
        .map_err(|e| CliExit::usage(format!("cannot find corral's own executable: {e}")))?;
    let exe = exe.to_string_lossy().into_owned();
    let cwd = std::env::current_dir()
        .map_err(|e| CliExit::usage(format!("cannot read the current directory: {e}")))?;
    let label = Path::new("assets/demo.toml");
    let mut file = file::parse(DEMO_TOML, &cwd).map_err(|e| CliExit::usage(e.render(label)))?;
    file.groups.retain(|g| g.name != JOBS_GROUP || demo.jobs > 0);
    for group in &mut file.groups {
        if let FileCommand::Argv(argv) = &mut group.command {
            if argv[0] == "corral" {
                argv[0].clone_from(&exe);
            }
            if let Some(crash_after) = &demo.crash_after
                && let Some(i) = argv.iter().position(|a| a == "--crash-after")
                && let Some(value) = argv.get_mut(i + 1)
            {
                *value = crash_after.to_arg();
            }
        }
        if group.name == JOBS_GROUP {
            group.layer.options.workers = Some(demo.jobs);
        }
        if group.name == HTTP_GROUP {
            if let Some(n) = opts.workers {
                group.layer.options.workers = Some(n);
            }
            let addr = ListenAddr::Tcp((Ipv4Addr::LOCALHOST, demo.port).into());
            let text = format!("http=127.0.0.1:{}", demo.port);
            // Under socket activation the handed socket is the demo's port (the runtime
            // gives it to the first group); binding --port as well could only collide.
            group.layer.options.listen = if handed_sockets() {
                Some(Vec::new())
            } else {
                Some(vec![Listen { name: Some("http".into()), addr, text }])
            };
            if let Some(name) = &opts.name {
                name.clone_into(&mut group.name);
            }
        }
    }
    // `-w` and `-n` were applied to the HTTP group above, not to every group.
    let given = |id: &str| id != "workers" && id != "name" && given(id);
    let mut spec = config_run::resolve(opts, &given, label, &cwd, &file, None, path_var)?;
    for group in &mut spec.groups {
        group.command.display = format!("corral demo {} worker", group.name);
    }
    Ok(spec)
}
