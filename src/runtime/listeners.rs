//! The groups' sockets, bound before anything starts (a busy port is a usage error, not a
//! crash loop), and the sockets corral was handed itself (`LISTEN_FDS`, docs/production.md#under-systemd) handed on:
//! by name to the groups that ask for `fd:NAME`, else all of them to the first group.

use super::StartError;
use crate::backend::{self, BoundListener, InheritedSocket};
use crate::config::{ListenAddr, ListenSpec, RunSpec};

pub(super) fn bind_all(spec: &mut RunSpec) -> Result<Vec<Vec<BoundListener>>, StartError> {
    let inherited = backend::take_inherited()?;
    let takes = |name: &str| {
        spec.groups
            .iter()
            .any(|g| g.listen.iter().any(|l| l.addr == ListenAddr::Inherited(name.into())))
    };
    let named = spec
        .groups
        .iter()
        .any(|g| g.listen.iter().any(|l| matches!(l.addr, ListenAddr::Inherited(_))));
    let mut all = Vec::with_capacity(spec.groups.len());
    for group in &spec.groups {
        let mut bound = Vec::with_capacity(group.listen.len());
        for l in &group.listen {
            bound.push(match &l.addr {
                ListenAddr::Inherited(name) => take(&inherited, name)?,
                addr => backend::bind(addr)?,
            });
        }
        all.push(bound);
    }
    if named {
        for socket in inherited.iter().filter(|s| !takes(&s.name)) {
            tracing::warn!(
                "socket '{}' ({}) was handed to corral, but no group takes it",
                socket.name,
                socket.local
            );
        }
    } else if let (Some(group), Some(bound)) = (spec.groups.first_mut(), all.first_mut()) {
        // Handed sockets come first, as fds 3, 4 …: a server that takes "the first
        // listener" serves the one systemd keeps open across corral's restarts.
        let mut specs = Vec::with_capacity(inherited.len() + group.listen.len());
        let mut fds = Vec::with_capacity(inherited.len() + bound.len());
        for socket in inherited {
            let addr = ListenAddr::Inherited(socket.name.clone());
            specs.push(ListenSpec { name: socket.name, addr });
            fds.push(BoundListener::inherited(socket.fd, socket.local));
        }
        specs.append(&mut group.listen);
        group.listen = specs;
        fds.append(bound);
        *bound = fds;
    }
    Ok(all)
}

/// A group's own descriptor for the handed socket `name` (several groups may take one).
fn take(inherited: &[InheritedSocket], name: &str) -> Result<BoundListener, StartError> {
    let Some(socket) = inherited.iter().find(|s| s.name == name) else {
        let known: Vec<&str> = inherited.iter().map(|s| s.name.as_str()).collect();
        let known = if known.is_empty() { "none".to_string() } else { known.join(":") };
        return Err(StartError::NoSuchInherited { name: name.to_string(), known });
    };
    let fd = socket.fd.try_clone().map_err(StartError::Runtime)?;
    Ok(BoundListener::inherited(fd, socket.local.clone()))
}
