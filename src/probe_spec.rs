//! What a probe checks (docs/application.md#probes): an HTTP URL, a TCP address or a
//! command, each with `{slot}` and `{pid}` templates, read from the command line
//! (`http://…`, `tcp:HOST:PORT`, `exec:CMD`) or the config file, and checked once at start
//! so that every expansion at run time is well-formed.

use crate::core::{ProbeKind, ProbeTiming};

/// The most bytes of a URL, address or argument list, after expansion: a probe's target
/// is short, and nothing unbounded goes into a request line.
pub const MAX_TARGET_LEN: usize = 2048;

/// One probe of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    pub target: ProbeTarget,
    pub timing: ProbeTiming,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeTarget {
    /// `http://HOST[:PORT]/PATH`: a GET; 2xx and 3xx are success.
    Http(String),
    /// `HOST:PORT`: a connect.
    Tcp(String),
    /// A command run with the worker's environment and working directory; exit 0 is success.
    Exec(Vec<String>),
}

/// A group's probes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupProbes {
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub startup: Option<ProbeSpec>,
}

impl GroupProbes {
    pub fn get(&self, kind: ProbeKind) -> Option<&ProbeSpec> {
        match kind {
            ProbeKind::Readiness => self.readiness.as_ref(),
            ProbeKind::Liveness => self.liveness.as_ref(),
            ProbeKind::Startup => self.startup.as_ref(),
        }
    }

    /// The timings, for the supervisor.
    pub fn timings(&self) -> crate::core::ProbeSet {
        crate::core::ProbeSet {
            readiness: self.readiness.as_ref().map(|p| p.timing),
            liveness: self.liveness.as_ref().map(|p| p.timing),
            startup: self.startup.as_ref().map(|p| p.timing),
        }
    }
}

/// `{slot}` and `{pid}` replaced by the worker's.
pub fn expand(template: &str, slot: u32, pid: u32) -> String {
    if !template.contains('{') {
        return template.to_string();
    }
    template.replace("{slot}", &slot.to_string()).replace("{pid}", &pid.to_string())
}

/// Where an HTTP probe goes: `host:port` to connect to, the `Host` header and the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpTarget {
    /// The address to connect to (`[::1]:80` for an IPv6 literal).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Reads `http://HOST[:PORT][/PATH]` (after expansion).
pub fn parse_http(url: &str) -> Result<HttpTarget, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        if url.starts_with("https://") {
            return Err("https is not supported: probe the plain http:// port".into());
        }
        return Err("expected a URL starting with http://".into());
    };
    if url.len() > MAX_TARGET_LEN {
        return Err(format!("longer than {MAX_TARGET_LEN} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL may not contain spaces or control characters".into());
    }
    // The fragment is the client's own: it never goes on the wire.
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let (host, port) = split_host_port(authority, Some(80))?;
    Ok(HttpTarget { host, port, path })
}

/// Reads `HOST:PORT` (after expansion) for a TCP probe.
pub fn parse_tcp(addr: &str) -> Result<(String, u16), String> {
    if addr.len() > MAX_TARGET_LEN {
        return Err(format!("longer than {MAX_TARGET_LEN} bytes"));
    }
    split_host_port(addr, None)
}

fn split_host_port(authority: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err("an IPv6 address needs its closing ']'".into());
        };
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
        return Err("expected HOST:PORT, like 127.0.0.1:5432".into());
    }
    let port = match (port, default_port) {
        (Some(p), _) => {
            p.parse::<u16>().ok().filter(|&p| p > 0).ok_or("bad port: expected 1..=65535")?
        }
        (None, Some(p)) => p,
        (None, None) => return Err("expected HOST:PORT, like 127.0.0.1:5432".into()),
    };
    Ok((host.to_string(), port))
}

/// Checks a target as it will be expanded at run time (with sample numbers).
pub fn check(target: &ProbeTarget) -> Result<(), String> {
    let templates_ok = |text: &str| {
        let rest = text.replace("{slot}", "").replace("{pid}", "");
        if rest.contains(['{', '}']) {
            Err("only {slot} and {pid} may appear in braces".to_string())
        } else {
            Ok(())
        }
    };
    match target {
        ProbeTarget::Http(url) => {
            templates_ok(url)?;
            parse_http(&expand(url, 1, 1)).map(|_| ())
        }
        ProbeTarget::Tcp(addr) => {
            templates_ok(addr)?;
            parse_tcp(&expand(addr, 1, 1)).map(|_| ())
        }
        ProbeTarget::Exec(argv) => {
            if argv.first().is_none_or(String::is_empty) {
                return Err("expected a command: a program and its arguments".into());
            }
            if argv.iter().map(String::len).sum::<usize>() > MAX_TARGET_LEN {
                return Err(format!("longer than {MAX_TARGET_LEN} bytes"));
            }
            if argv.iter().any(|a| a.contains('\0')) {
                return Err("an argument contains a NUL byte".into());
            }
            Ok(())
        }
    }
}

/// The command line's form: `http://…`, `tcp:HOST:PORT` or `exec:CMD` (run by
/// `/bin/sh -c`), with the default timings.
pub fn parse_cli(text: &str) -> Result<ProbeTarget, String> {
    let target = if text.starts_with("http://") || text.starts_with("https://") {
        ProbeTarget::Http(text.to_string())
    } else if let Some(addr) = text.strip_prefix("tcp:") {
        ProbeTarget::Tcp(addr.to_string())
    } else if let Some(cmd) = text.strip_prefix("exec:") {
        if cmd.trim().is_empty() {
            return Err("expected a command after exec:".into());
        }
        ProbeTarget::Exec(vec!["/bin/sh".into(), "-c".into(), cmd.to_string()])
    } else {
        return Err("expected http://HOST:PORT/PATH, tcp:HOST:PORT or exec:COMMAND".into());
    };
    check(&target)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_addresses() {
        let t = parse_http("http://127.0.0.1:8080/healthz?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("127.0.0.1", 8080, "/healthz?x=1"));
        let t = parse_http("http://[::1]").unwrap();
        assert_eq!((t.authority(), t.path.as_str()), ("[::1]:80".to_string(), "/"));
        // A query right after the port, and a fragment, which is not sent.
        let q = parse_http("http://127.0.0.1:18001?x=1#top").unwrap();
        assert_eq!((q.port, q.path.as_str()), (18001, "/?x=1"));
        assert_eq!(parse_http("http://h/healthz#f").unwrap().path, "/healthz");
        assert!(parse_http("https://x/").unwrap_err().contains("https"));
        assert!(parse_http("ftp://x/").is_err());
        assert!(parse_http("http://x:0/").is_err());
        assert!(parse_http("http://a b/").is_err());
        assert_eq!(parse_tcp("db:5432").unwrap(), ("db".to_string(), 5432));
        assert!(parse_tcp("5432").is_err());
        assert!(parse_tcp("[::1]:70000").is_err());
    }

    #[test]
    fn templates() {
        assert_eq!(expand("http://127.0.0.1:90{slot}/p/{pid}", 3, 42), "http://127.0.0.1:903/p/42");
        assert!(check(&ProbeTarget::Http("http://127.0.0.1:80{slot}/".into())).is_ok());
        assert!(check(&ProbeTarget::Http("http://127.0.0.1:{port}/".into())).is_err());
        assert!(check(&ProbeTarget::Exec(vec![])).is_err());
    }

    #[test]
    fn command_line_forms() {
        assert_eq!(
            parse_cli("tcp:127.0.0.1:5432").unwrap(),
            ProbeTarget::Tcp("127.0.0.1:5432".into())
        );
        assert!(
            matches!(parse_cli("exec:test -f x").unwrap(), ProbeTarget::Exec(a) if a[2] == "test -f x")
        );
        assert!(parse_cli("127.0.0.1:80").is_err());
        assert!(parse_cli("exec: ").is_err());
    }
}
