//! The space view's state: the map of the persist dir (computed on the worker, `dbstat`
//! reads every page) and the backups of the dir, one of which can be deleted after asking.

use crate::backup::{self, BackupInfo};
use crate::chroma::space::SpaceMap;
use crate::jobs::prune::BackupTarget;

use super::app::{Action, App, Effect, Msg, View};

/// What the space view shows.
#[derive(Debug, Clone, Default)]
pub struct SpaceView {
    pub map: Option<Result<SpaceMap, String>>,
    /// `(b-trees mapped, b-trees)` while mapping.
    pub progress: (u64, u64),
    pub backups: Vec<BackupInfo>,
    pub cursor: usize,
    /// Asking whether to delete the selected backup.
    pub confirm_delete: bool,
    pub message: Option<String>,
}

impl App {
    /// `m` on the table: the space map, computed off the UI thread.
    pub(crate) fn open_space(&mut self) -> Vec<Effect> {
        if self.snap.is_none() {
            return Vec::new();
        }
        self.space = Some(SpaceView {
            backups: self.list_backups(),
            ..Default::default()
        });
        self.view = View::Space;
        vec![Effect::MapSpace]
    }

    fn list_backups(&self) -> Vec<BackupInfo> {
        let folder = match &self.opts.backup {
            BackupTarget::Off => BackupTarget::Default.folder(&self.opts.path),
            other => other.folder(&self.opts.path),
        };
        folder
            .map(|f| backup::list(&f, &self.opts.path))
            .unwrap_or_default()
    }

    pub(crate) fn update_space(&mut self, action: Action) -> Vec<Effect> {
        let Some(v) = self.space.as_mut() else {
            self.view = View::Main;
            return Vec::new();
        };
        v.message = None;
        if v.confirm_delete {
            match action {
                Action::Yes => {
                    v.confirm_delete = false;
                    if let Some(b) = v.backups.get(v.cursor) {
                        // A backup folder is ours alone: removing it is a plain delete.
                        let r = std::fs::remove_dir_all(&b.folder);
                        v.message = Some(match r {
                            Ok(()) => format!(
                                "deleted {}: {} given back",
                                b.folder.display(),
                                crate::units::bytes(b.allocated)
                            ),
                            Err(e) => format!("could not delete {}: {e}", b.folder.display()),
                        });
                    }
                    let list = self.list_backups();
                    if let Some(v) = self.space.as_mut() {
                        v.backups = list;
                        v.cursor = v.cursor.min(v.backups.len().saturating_sub(1));
                    }
                }
                _ => v.confirm_delete = false,
            }
            return Vec::new();
        }
        match action {
            Action::Up => v.cursor = v.cursor.saturating_sub(1),
            Action::Down => v.cursor = (v.cursor + 1).min(v.backups.len().saturating_sub(1)),
            Action::DeleteBackup if !v.backups.is_empty() => v.confirm_delete = true,
            Action::DeleteBackup => v.message = Some("no backup of this dir to delete".into()),
            Action::Back => {
                self.space = None;
                self.view = View::Main;
            }
            Action::Help => self.help.open(),
            Action::Quit => self.quit = true,
            _ => {}
        }
        Vec::new()
    }

    pub(crate) fn on_space(&mut self, msg: Msg) {
        let Some(v) = self.space.as_mut() else { return };
        match msg {
            Msg::SpaceProgress { done, total } => v.progress = (done, total),
            Msg::Space(r) => v.map = Some(r),
            _ => {}
        }
    }
}
