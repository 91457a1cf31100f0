//! Env files at spawn time (docs/application.md#environment-files-env-file): each group's files
//! are read when its workers spawn, so a reload picks up an edit, but at most once per turn of
//! the loop (one turn spawns for up to `SPAWN_SLICE`): starting a thousand workers reads a
//! group's files about a hundred times, not a thousand, and a change is never missed the way a
//! cache keyed by modification time can miss one made within the same clock tick.

use std::collections::HashMap;
use std::rc::Rc;

use super::env::EnvTemplate;

/// A group's shared entries as merged, or why its files could not be read.
type Merged = Result<Rc<Vec<Vec<u8>>>, String>;

#[derive(Default)]
pub(super) struct EnvFiles {
    /// Each group's, this turn.
    turn: HashMap<u16, Merged>,
}

impl EnvFiles {
    /// A new turn of the loop: files are read again when next needed.
    pub fn next_turn(&mut self) {
        self.turn.clear();
    }

    /// The entries every worker of group `g` shares, its env files read (once this turn);
    /// `Err` names the file, and the line when there is one.
    pub fn shared(&mut self, g: u16, template: &EnvTemplate) -> Merged {
        self.turn
            .entry(g)
            .or_insert_with(|| {
                let mut vars = Vec::new();
                for path in template.files() {
                    let read = crate::env_file::read(path).map_err(|e| e.message)?;
                    vars.extend(read);
                }
                Ok(Rc::new(template.merged(&vars)))
            })
            .clone()
    }

    /// The whole environment of slot `slot`'s generation `generation` of group `g`, its env
    /// files as read this turn (for its spawn, and for its exec probes); `Err` names the
    /// file that could not be read.
    pub fn for_worker(
        &mut self,
        g: u16,
        template: &EnvTemplate,
        slot: u32,
        generation: u32,
    ) -> Result<Vec<Vec<u8>>, String> {
        if template.files().is_empty() {
            return Ok(template.for_worker(template.entries(), slot, generation));
        }
        let shared = self.shared(g, template)?;
        Ok(template.for_worker(&shared, slot, generation))
    }
}
