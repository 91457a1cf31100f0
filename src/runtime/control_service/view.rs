//! `view` and `pane`, `corral attach`'s side of the runtime (docs/control.md): each client's `view` subscription is a
//! viewer like the local dashboard, its frames built by the same `ViewFeed` from the same
//! facts. On each frame tick (33 ms) a viewer owed a frame gets one if something changed;
//! nothing changed, nothing is built. A `View` is built and encoded once per distinct pane,
//! however many clients ask for that pane, and goes out through each client's bounded
//! queue. A client that has not taken its previous frame gets no new one until it has
//! (latest wins, as with the local slot): a suspended `attach` costs nothing and its queue
//! does not fill with stale frames.

use std::rc::Rc;

use serde_json::{Value, json};

use super::Cx;
use crate::control::messages;
use crate::control::server::Client;
use crate::ui::model::{PaneRequest, View};

/// Pane rows a frame carries at most, whatever a client asks.
pub const MAX_ROWS: usize = 500;
/// Characters of one pane line a frame carries (a row of the screen shows fewer).
pub const MAX_TEXT: usize = 1024;
/// A pane filter longer than this is cut.
const MAX_FILTER: usize = 256;
/// Scrolling further up than any tail kept is pointless; the cap keeps the sums finite.
const MAX_SCROLL: usize = 1 << 20;

struct Viewer {
    client: Rc<Client>,
    /// The `view` request's id, which each frame carries.
    id: Value,
    request: PaneRequest,
    /// Owed a frame.
    dirty: bool,
}

/// Every attached client's viewer.
#[derive(Default)]
pub(super) struct Viewers {
    list: Vec<Viewer>,
}

impl Viewers {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn any_dirty(&self) -> bool {
        self.list.iter().any(|v| v.dirty)
    }

    /// A `view` request: this client's viewer from now on (a second one replaces the first).
    fn subscribe(&mut self, client: &Rc<Client>, id: &Value, request: PaneRequest) {
        self.list.retain(|v| v.client.serial != client.serial);
        let client = Rc::clone(client);
        self.list.push(Viewer { client, id: id.clone(), request: bounded(request), dirty: true });
    }

    /// A `pane` request; false when the client has no `view`.
    fn set_pane(&mut self, serial: u64, request: PaneRequest) -> bool {
        let Some(v) = self.list.iter_mut().find(|v| v.client.serial == serial) else {
            return false;
        };
        v.request = bounded(request);
        v.dirty = true;
        true
    }

    /// Forgets the viewers of clients that are gone; with `changed`, every viewer is owed a
    /// frame. Returns the panes to build now, each with the viewers (indexes) that get it:
    /// those owed a frame that have taken everything sent to them before.
    pub(super) fn due(
        &mut self,
        changed: bool,
        live: impl Fn(u64) -> bool,
    ) -> Vec<(PaneRequest, Vec<usize>)> {
        self.list.retain(|v| live(v.client.serial));
        let mut panes: Vec<(PaneRequest, Vec<usize>)> = Vec::new();
        for (i, v) in self.list.iter_mut().enumerate() {
            v.dirty |= changed;
            if !v.dirty || v.client.queued() > 0 {
                continue;
            }
            match panes.iter_mut().find(|(req, _)| *req == v.request) {
                Some((_, who)) => who.push(i),
                None => panes.push((v.request.clone(), vec![i])),
            }
        }
        panes
    }

    /// One encoded view to the viewers `who`.
    fn send(&mut self, who: &[usize], view: &[u8]) {
        for &i in who {
            if let Some(v) = self.list.get_mut(i) {
                v.client.send(messages::frame(&v.id, view));
                v.dirty = false;
            }
        }
    }
}

/// A pane request as the server will serve it: small enough that every frame is bounded.
fn bounded(mut req: PaneRequest) -> PaneRequest {
    req.rows = req.rows.min(MAX_ROWS);
    req.scroll = req.scroll.min(MAX_SCROLL);
    if let Some((at, _)) = req.filter.char_indices().nth(MAX_FILTER) {
        req.filter.truncate(at);
    }
    req
}

/// Cuts pane lines no screen shows whole anyway (the local view keeps them).
fn trim_lines(view: &mut View) {
    for line in &mut view.pane.lines {
        if let Some((at, _)) = line.text.char_indices().nth(MAX_TEXT) {
            line.text.truncate(at);
        }
    }
}

impl Viewers {
    /// Whether a viewer is owed a frame (`changed`: something every view shows).
    pub fn owed(&self, changed: bool) -> bool {
        !self.is_empty() && (changed || self.any_dirty())
    }

    /// One view, built for the viewers `who`: trimmed, encoded once, sent to each.
    pub fn send_view(&mut self, who: &[usize], mut view: View) {
        trim_lines(&mut view);
        match serde_json::to_vec(&view) {
            Ok(encoded) => self.send(who, &encoded),
            Err(e) => tracing::warn!("cannot encode a view for attach: {e}"),
        }
    }

    /// `view`: frames from the next tick on.
    pub fn view(
        &mut self,
        client: &Rc<Client>,
        id: &Value,
        pane: PaneRequest,
        cx: &Cx<'_>,
    ) -> Vec<u8> {
        if !cx.attachable {
            return messages::error(id, "this corral keeps no dashboard to attach to");
        }
        self.subscribe(client, id, pane);
        client.follow_view();
        let whom =
            messages::Whom { instance: Some(cx.instance.to_string()), pid: std::process::id() };
        messages::ok_with(id, &whom)
    }

    /// `pane`: what this client's view shows from now on.
    pub fn pane(&mut self, client: &Client, id: &Value, pane: PaneRequest) -> Vec<u8> {
        if self.set_pane(client.serial, pane) {
            messages::ok(id, json!({}))
        } else {
            messages::error(id, "no view to change: send \"view\" first")
        }
    }
}

#[cfg(test)]
mod tests;
