//! `corral ctl` (docs/control.md): finds the running instance, sends one request, prints the
//! answer for people (tables) or scripts (`--json`). Exit 0 on success, 1 when the command
//! failed, 2 for a usage error or no instance to talk to.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use self::output::{print_json, print_line, print_output, print_status, print_table};
use super::messages::{self, Request};

mod output;

/// What `ctl` was asked, parsed by the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtlCommand {
    Ls { json: bool },
    Status { json: bool, quiet: bool },
    Act { verb: &'static str, target: String },
    Scale { group: String, workers: Option<u32>, delta: Option<i64> },
    Reload { target: String },
    Logs { follow: bool, lines: usize, target: Option<String>, json: bool },
    Events { follow: bool },
    Shutdown { force: bool },
    Send { target: String, message: Value },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ctl {
    pub instance: Option<String>,
    pub control: Option<PathBuf>,
    pub command: CtlCommand,
}

/// `ctl status`: the table (or JSON), then the verdict as the exit code: 0 healthy, 1 not
/// (the reasons on stderr), 2 when corral cannot be asked at all — as `systemctl status`.
fn status(ctl: &Ctl, json: bool, quiet: bool) -> Result<(), Fail> {
    let cannot_ask = |Fail(_, message)| Fail(2, if quiet { String::new() } else { message });
    let path = choose(ctl.instance.as_deref(), ctl.control.as_deref()).map_err(cannot_ask)?;
    let mut conn = Conn::open(&path).map_err(cannot_ask)?;
    let reply = conn.call(&Request::Status {}).map_err(cannot_ask)?;
    let status: super::status::Status = serde_json::from_value(reply)
        .map_err(|e| Fail(2, format!("a status reply this ctl cannot read: {e}")))?;
    if !quiet {
        if json {
            print_json(&serde_json::to_value(&status.workers).unwrap_or_default())
        } else {
            print_status(&status)
        }?;
    }
    if status.healthy {
        return Ok(());
    }
    if quiet {
        return Err(Fail(1, String::new()));
    }
    let problems = status.problems.join("; ");
    Err(Fail(1, format!("{} is not healthy: {problems}", conn.instance)))
}

/// How long a request may wait for its reply; a reload or a follow waits as long as it takes.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why `ctl` ends; the message is printed as `corral ctl: MESSAGE`.
pub(crate) struct Fail(pub u8, pub String);

pub(crate) fn usage(message: impl Into<String>) -> Fail {
    Fail(2, message.into())
}

pub fn run(ctl: &Ctl) -> ExitCode {
    match run_inner(ctl) {
        // `Fail(0, _)`: nobody reads the output any more (`| head -1`); they had what
        // they wanted.
        Ok(()) | Err(Fail(0, _)) => ExitCode::SUCCESS,
        Err(Fail(code, message)) => {
            // An empty message: `--quiet`, the exit code says it all.
            if !message.is_empty() {
                eprintln!("corral ctl: {}", crate::text::escape(&message, false));
            }
            ExitCode::from(code)
        }
    }
}

fn run_inner(ctl: &Ctl) -> Result<(), Fail> {
    if let CtlCommand::Ls { json } = ctl.command {
        return list(json);
    }
    if let CtlCommand::Status { json, quiet } = ctl.command {
        return status(ctl, json, quiet);
    }
    let path = choose(ctl.instance.as_deref(), ctl.control.as_deref())?;
    let mut conn = Conn::open(&path)?;
    match &ctl.command {
        CtlCommand::Ls { .. } | CtlCommand::Status { .. } => Ok(()),
        CtlCommand::Act { verb, target } => {
            let target = target.clone();
            let command = match *verb {
                "kill" => Request::Kill { target },
                "restart" => Request::Restart { target },
                "stop" => Request::Stop { target },
                _ => Request::Start { target },
            };
            let reached: messages::Reached = conn.call_as(&command)?;
            let ids = reached.workers;
            let ids = if ids.is_empty() { "no worker".to_string() } else { ids.join(", ") };
            print_line(&format!("{verb}: {ids}"))
        }
        CtlCommand::Send { target, message } => {
            let (target, message) = (target.clone(), message.clone());
            let reached: messages::Reached = conn.call_as(&Request::Send { target, message })?;
            print_line(&format!("sent to {}", reached.workers.join(", ")))
        }
        CtlCommand::Scale { group, workers, delta } => {
            let command = Request::Scale { group: group.clone(), workers: *workers, delta: *delta };
            let scaled: messages::Scaled = conn.call_as(&command)?;
            let plural = if scaled.workers == 1 { "" } else { "s" };
            print_line(&format!("{group}: {} worker{plural}", scaled.workers))
        }
        CtlCommand::Reload { target } => {
            conn.timeout(None);
            let done: messages::Reloaded =
                conn.call_as(&Request::Reload { target: target.clone() })?;
            let plural = if done.replaced == 1 { "" } else { "s" };
            print_line(&format!("{target}: reloaded, {} worker{plural} replaced", done.replaced))
        }
        CtlCommand::Logs { follow, lines, target, json } => {
            let command =
                Request::Logs { target: target.clone(), lines: Some(*lines), follow: *follow };
            let reply = conn.call(&command)?;
            for line in reply["lines"].as_array().into_iter().flatten() {
                print_output(line, *json)?;
            }
            if *follow {
                conn.timeout(None);
                conn.follow(|item| print_output(item, *json))?;
            }
            Ok(())
        }
        CtlCommand::Events { follow } => {
            let reply = conn.call(&Request::Events { follow: *follow })?;
            for event in reply["events"].as_array().into_iter().flatten() {
                print_json(event)?;
            }
            if *follow {
                conn.timeout(None);
                conn.follow(print_json)?;
            }
            Ok(())
        }
        CtlCommand::Shutdown { force } => {
            let whom: messages::Whom = conn.call_as(&Request::Shutdown { force: *force })?;
            let pid = whom.pid;
            eprintln!("corral ctl: shutting down {} (pid {pid})", conn.instance);
            // The socket closes when corral has stopped every worker and exited.
            conn.timeout(None);
            conn.follow(|_| Ok(()))?;
            eprintln!("corral ctl: {} stopped", conn.instance);
            Ok(())
        }
    }
}

/// The live instances of this user: `(name, socket, hello)`.
fn instances() -> Vec<(String, PathBuf, messages::Hello)> {
    let dir = super::default_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut found: Vec<(String, PathBuf, messages::Hello)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .filter_map(|path| {
            let conn = Conn::open(&path).ok()?;
            Some((conn.hello.instance.clone(), path, conn.hello))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The socket to talk to: `--control`, else `-I NAME`'s, else the only instance running.
pub(crate) fn choose(instance: Option<&str>, control: Option<&Path>) -> Result<PathBuf, Fail> {
    if let Some(path) = control {
        return Ok(path.to_path_buf());
    }
    let dir = super::default_dir();
    if let Some(name) = instance {
        let path = dir.join(format!("{name}.sock"));
        if !path.exists() {
            return Err(usage(format!(
                "no instance '{name}' is running (no socket {})",
                path.display()
            )));
        }
        return Ok(path);
    }
    let live = instances();
    match live.as_slice() {
        [] => Err(usage(format!("no corral is running (no control socket in {})", dir.display()))),
        [(_, path, _)] => Ok(path.clone()),
        several => {
            let names: Vec<&str> = several.iter().map(|(n, _, _)| n.as_str()).collect();
            Err(usage(format!(
                "several instances are running ({}): choose one with -I NAME",
                names.join(", ")
            )))
        }
    }
}

fn list(json: bool) -> Result<(), Fail> {
    let live = instances();
    if json {
        let all: Vec<Value> = live
            .iter()
            .map(|(_, path, hello)| {
                let mut h = hello.clone();
                h.socket = path.display().to_string();
                serde_json::to_value(h).unwrap_or_default()
            })
            .collect();
        return print_json(&Value::Array(all));
    }
    if live.is_empty() {
        eprintln!(
            "corral ctl: no corral is running (no control socket in {})",
            super::default_dir().display()
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = live
        .iter()
        .map(|(name, path, hello)| {
            vec![
                name.clone(),
                hello.pid.to_string(),
                hello.groups.join(","),
                uptime_since(&hello.started),
                path.display().to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "PID", "GROUPS", "UPTIME", "SOCKET"], &rows)
}

/// One connection: the hello read, requests sent one at a time.
pub(crate) struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    pub hello: messages::Hello,
    pub instance: String,
    next_id: u64,
    first: bool,
}

impl Conn {
    pub(crate) fn open(path: &Path) -> Result<Conn, Fail> {
        let stream = UnixStream::connect(path).map_err(|e| {
            usage(format!("cannot reach {}: {}", path.display(), crate::backend::describe(&e)))
        })?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| usage(e.to_string()))?;
        let writer = stream.try_clone().map_err(|e| usage(e.to_string()))?;
        let mut conn = Conn {
            reader: BufReader::new(stream),
            writer,
            hello: messages::Hello::default(),
            // Until the hello names it: what a reply that never comes is blamed on.
            instance: path
                .file_stem()
                .map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned()),
            next_id: 1,
            first: true,
        };
        let first =
            conn.read()?.ok_or_else(|| usage(format!("{} closed at once", path.display())))?;
        if let Some(error) = first["error"].as_str() {
            return Err(usage(error.to_string()));
        }
        if first["v"] != messages::VERSION {
            return Err(usage(format!(
                "{} speaks protocol {}, this ctl {}",
                path.display(),
                first["v"],
                messages::VERSION
            )));
        }
        conn.hello = serde_json::from_value(first["hello"].clone())
            .map_err(|e| usage(format!("{}: a hello this ctl cannot read: {e}", path.display())))?;
        conn.instance.clone_from(&conn.hello.instance);
        Ok(conn)
    }

    pub(crate) fn timeout(&mut self, timeout: Option<Duration>) {
        let _ = self.reader.get_ref().set_read_timeout(timeout);
    }

    /// The two ends, for a client that goes on by itself (`attach`), and the next request
    /// id it may use.
    pub(crate) fn into_parts(self) -> (BufReader<UnixStream>, UnixStream, u64) {
        (self.reader, self.writer, self.next_id)
    }

    fn read(&mut self) -> Result<Option<Value>, Fail> {
        let mut line = String::new();
        // Empty lines are the server's probes of a quiet follower.
        while line.trim().is_empty() {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(self.lost(&e)),
            }
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| Fail(1, format!("a reply that is not JSON: {e}")))
    }

    fn lost(&self, e: &std::io::Error) -> Fail {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            let secs = REPLY_TIMEOUT.as_secs();
            return Fail(1, format!("no reply from {} within {secs}s", self.instance));
        }
        Fail(1, format!("lost {}: {}", self.instance, crate::backend::describe(e)))
    }

    /// Sends a request and reads its successful reply as `T`.
    pub(crate) fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        command: &messages::Request,
    ) -> Result<T, Fail> {
        let reply = self.call(command)?;
        serde_json::from_value(reply).map_err(|e| {
            Fail(1, format!("a reply from {} this ctl cannot read: {e}", self.instance))
        })
    }

    /// Sends a request and returns its successful reply (else exit 1 with its error).
    pub(crate) fn call(&mut self, command: &messages::Request) -> Result<Value, Fail> {
        let id = self.next_id;
        self.next_id += 1;
        let line = messages::encode(command, id, self.first);
        self.first = false;
        self.writer
            .write_all(&line)
            .map_err(|e| Fail(1, format!("lost {}: {e}", self.instance)))?;
        loop {
            let Some(reply) = self.read()? else {
                return Err(Fail(1, format!("{} closed the connection", self.instance)));
            };
            if reply["id"] != id {
                if reply["id"].is_null()
                    && let Some(error) = reply["error"].as_str()
                {
                    return Err(Fail(1, error.to_string()));
                }
                continue; // an item of an earlier subscription
            }
            if reply["ok"] == true {
                return Ok(reply);
            }
            return Err(Fail(1, reply["error"].as_str().unwrap_or("failed").to_string()));
        }
    }

    /// Hands every subscription item to `each` until the connection ends, or until
    /// nobody reads ctl's output any more (`ctl logs -f | head -1`), even while no item
    /// comes.
    fn follow(&mut self, mut each: impl FnMut(&Value) -> Result<(), Fail>) -> Result<(), Fail> {
        loop {
            if self.reader.buffer().is_empty() {
                output::wait_readable(self.reader.get_ref())?;
            }
            let Some(message) = self.read()? else { return Ok(()) };
            if let Some(item) = message.get("item") {
                each(item)?;
            } else if let Some(error) = message["error"].as_str() {
                return Err(Fail(1, error.to_string()));
            }
        }
    }
}

fn uptime_since(started: &str) -> String {
    let Ok(at) = humantime::parse_rfc3339(started) else { return "-".into() };
    let up = std::time::SystemTime::now().duration_since(at).unwrap_or_default();
    crate::report::human_duration(Duration::from_secs(up.as_secs()))
}
