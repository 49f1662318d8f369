//! The collections table: moving, marking, filtering and sorting, opening the other views.
//! Its update; its rows and numbers are computed in `app.rs`, and `ui.rs` draws it.

use crate::jobs::preflight;

use super::app::{Action, App, Counts, Effect, Sort, View};

impl App {
    pub(super) fn update_main(&mut self, action: Action) -> Vec<Effect> {
        let n = self.rows().len();
        self.message = None;
        match action {
            Action::Up => self.cursor = self.cursor.saturating_sub(1),
            Action::Down => {
                if self.cursor + 1 < n {
                    self.cursor += 1
                }
            }
            Action::PageUp => self.cursor = self.cursor.saturating_sub(self.page.max(1)),
            Action::PageDown => {
                self.cursor = (self.cursor + self.page.max(1)).min(n.saturating_sub(1))
            }
            Action::Top => self.cursor = 0,
            Action::Bottom => self.cursor = n.saturating_sub(1),
            Action::Select(i) => {
                if i < n {
                    self.cursor = i
                }
            }
            Action::ToggleDetail => self.detail = !self.detail,
            Action::Mark => {
                if let Some(r) = self.selected() {
                    let k = self.key_of(&r);
                    if self.marked.contains(&k) {
                        self.marked.remove(&k);
                    } else if self.wal().is_none() {
                        self.message = Some("still counting the WAL…".into());
                    } else if self.prunable(&r) {
                        self.marked.insert(k);
                    } else {
                        self.message = Some(format!("{}: nothing prunable", self.name_of(&r)));
                    }
                }
            }
            Action::MarkIndex => self.mark_index(),
            Action::Scrub => return self.start_scrub(),
            Action::MarkAll => {
                let keys: Vec<String> = self
                    .rows()
                    .iter()
                    .filter(|r| self.prunable(r))
                    .map(|r| self.key_of(r))
                    .collect();
                if keys.is_empty() {
                    self.message = Some("nothing prunable".into());
                }
                self.marked.extend(keys);
            }
            Action::Prune => {
                if let Some(b) = self.blocker() {
                    self.message = Some(format!("pruning disabled: {b}"));
                } else if let Some(plan) = self.plan() {
                    let folder = self.opts.backup.folder(&self.opts.path);
                    self.confirm_space = Some(preflight::space(
                        &self.opts.path,
                        plan.sqlite_bytes,
                        plan.bytes(),
                        folder.as_deref(),
                        self.opts.vacuum,
                        self.opts.job_options().by_copy(),
                    ));
                    self.view = View::Confirm;
                } else {
                    self.message =
                        Some("mark rows with space (or a), or an index with i, first".into());
                }
            }
            Action::FilterStart => {
                self.rows_changed();
                self.filter_editing = true;
                self.filter.clear();
            }
            Action::Sort => {
                self.rows_changed();
                self.sort = match self.sort {
                    Sort::WalRows => Sort::Prunable,
                    Sort::Prunable => Sort::Name,
                    Sort::Name => Sort::WalRows,
                };
            }
            Action::Rescan => {
                self.rows_changed();
                self.snap = None;
                self.counts = Counts::Counting { done: 0, total: 0 };
                return vec![Effect::Scan];
            }
            Action::OpenRows => return self.open_rows(),
            Action::OpenRecords => return self.open_records(),
            Action::OpenSpace => return self.open_space(),
            Action::Help => self.help.open(),
            Action::Quit => self.quit = true,
            Action::Back => {
                self.rows_changed();
                self.filter.clear();
                self.detail = false;
            }
            Action::Yes
            | Action::No
            | Action::NextMatch
            | Action::TextSearch
            | Action::PrevMatch
            | Action::DeleteBackup => {}
        }
        self.clamp();
        Vec::new()
    }
}
