//! Claiming this corral's name and control socket. A default name (no `-I`) that a running
//! corral already has is numbered instead of refused, so `corral -- node a.js` twice, or the
//! same config file from two checkouts, run side by side; the start line says the name
//! chosen (docs/control.md).

use crate::config::RunSpec;
use crate::control::socket::{self, ControlSocket, SocketError};

/// How many numbered names are tried before the refusal is reported: beyond this many
/// corrals of one name, a name of one's own (`-I`) is the better answer.
const MAX_NUMBER: u32 = 100;

/// Binds the control socket, numbering a default name taken by a live corral; `spec` ends
/// up with the name and socket path bound.
pub(super) fn bind_control(spec: &mut RunSpec) -> Result<Option<ControlSocket>, SocketError> {
    let Some(path) = spec.control.clone() else { return Ok(None) };
    if !spec.instance_is_default {
        return socket::bind(&path, &spec.instance).map(Some);
    }
    let base = spec.instance.clone();
    let mut n = 1;
    loop {
        let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let candidate = path.with_file_name(format!("{name}.sock"));
        match socket::bind(&candidate, &name) {
            Ok(bound) => {
                spec.instance = name;
                spec.control = Some(candidate);
                return Ok(Some(bound));
            }
            Err(SocketError::Running { .. }) if n < MAX_NUMBER => n += 1,
            Err(e) => return Err(e),
        }
    }
}
