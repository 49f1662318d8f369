//! One keymap table: it drives the key handler, the footer hints and the help overlay.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Action, View};

/// One binding: the keys, what they do, and in which views.
pub struct Binding {
    pub keys: &'static [KeyCode],
    /// Shown in the footer and help, e.g. "space".
    pub label: &'static str,
    pub help: &'static str,
    pub action: Action,
    pub views: &'static [View],
    /// Shown in the footer (the help overlay shows all).
    pub footer: bool,
}

const MAIN: &[View] = &[View::Main];
/// Moving works the same in the table and in the rows view.
const NAV: &[View] = &[View::Main, View::Rows, View::Records];
const ROWS: &[View] = &[View::Rows];
const RECORDS: &[View] = &[View::Records];
const SPACE: &[View] = &[View::Space];

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[KeyCode::Up, KeyCode::Char('k')],
        label: "↑/k",
        help: "move up",
        action: Action::Up,
        views: NAV,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Down, KeyCode::Char('j')],
        label: "↓/j",
        help: "move down",
        action: Action::Down,
        views: NAV,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::PageUp],
        label: "PgUp",
        help: "page up",
        action: Action::PageUp,
        views: NAV,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::PageDown],
        label: "PgDn",
        help: "page down",
        action: Action::PageDown,
        views: NAV,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Char('g'), KeyCode::Home],
        label: "g",
        help: "first row",
        action: Action::Top,
        views: NAV,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Char('G'), KeyCode::End],
        label: "G",
        help: "last row",
        action: Action::Bottom,
        views: NAV,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Right, KeyCode::Enter, KeyCode::Tab],
        label: "→/⏎",
        help: "show or hide the segments and index truth of the selected collection",
        action: Action::ToggleDetail,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('w')],
        label: "w",
        help: "read the selected collection's WAL rows",
        action: Action::OpenRows,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('e')],
        label: "e",
        help: "read the selected collection's records (documents, metadata, embeddings)",
        action: Action::OpenRecords,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Enter],
        label: "⏎",
        help: "show the selected record whole (again: close it)",
        action: Action::ToggleDetail,
        views: RECORDS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('/')],
        label: "/",
        help: "search the records by id",
        action: Action::FilterStart,
        views: RECORDS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('t')],
        label: "t",
        help: "search the records' documents for a text",
        action: Action::TextSearch,
        views: RECORDS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Esc, KeyCode::Left],
        label: "Esc",
        help: "close the record, clear the search, or back to the table",
        action: Action::Back,
        views: RECORDS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('m')],
        label: "m",
        help: "map where the space of the dir goes, and its backups",
        action: Action::OpenSpace,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Up, KeyCode::Char('k')],
        label: "↑/k",
        help: "previous backup",
        action: Action::Up,
        views: SPACE,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Down, KeyCode::Char('j')],
        label: "↓/j",
        help: "next backup",
        action: Action::Down,
        views: SPACE,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Char('D')],
        label: "D",
        help: "delete the selected backup (asks first; restore is the other way out)",
        action: Action::DeleteBackup,
        views: SPACE,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('y')],
        label: "y",
        help: "yes, delete it",
        action: Action::Yes,
        views: SPACE,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Char('n')],
        label: "n",
        help: "no, keep it",
        action: Action::No,
        views: SPACE,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Esc, KeyCode::Left],
        label: "Esc",
        help: "back to the table",
        action: Action::Back,
        views: SPACE,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Enter, KeyCode::Right],
        label: "⏎",
        help: "show the selected WAL row whole (again: close it)",
        action: Action::ToggleDetail,
        views: ROWS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('/')],
        label: "/",
        help: "search the rows by id",
        action: Action::FilterStart,
        views: ROWS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('n')],
        label: "n",
        help: "next (older) match",
        action: Action::NextMatch,
        views: ROWS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('N')],
        label: "N",
        help: "previous (newer) match",
        action: Action::PrevMatch,
        views: ROWS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Esc, KeyCode::Left],
        label: "Esc",
        help: "back to the table (closes the row first)",
        action: Action::Back,
        views: ROWS,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char(' ')],
        label: "space",
        help: "mark or unmark the selected row for pruning",
        action: Action::Mark,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('i')],
        label: "i",
        help: "mark or unmark the collection's vector index for a rebuild (ghosts removed, missing records put back from the WAL)",
        action: Action::MarkIndex,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('a')],
        label: "a",
        help: "mark every prunable row",
        action: Action::MarkAll,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('p')],
        label: "p",
        help: "prune the marked rows (asks first)",
        action: Action::Prune,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('S')],
        label: "S",
        help: "scrub: remove every byte of deleted data Chroma's rules let go, for the marked collections or the whole dir (asks first)",
        action: Action::Scrub,
        views: MAIN,
        footer: false, // help lists it; the footer is full at 80 columns
    },
    Binding {
        keys: &[KeyCode::Char('/')],
        label: "/",
        help: "filter by collection name (Enter keeps, Esc clears)",
        action: Action::FilterStart,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('s')],
        label: "s",
        help: "cycle the sort: WAL rows, prunable, name",
        action: Action::Sort,
        views: MAIN,
        footer: false, // the table's title says the sort; help lists the key
    },
    Binding {
        keys: &[KeyCode::Char('r')],
        label: "r",
        help: "rescan the persist dir",
        action: Action::Rescan,
        views: MAIN,
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Esc],
        label: "Esc",
        help: "clear the filter",
        action: Action::Back,
        views: MAIN,
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Char('y'), KeyCode::Enter],
        label: "y/⏎",
        help: "confirm the prune",
        action: Action::Yes,
        views: &[View::Confirm],
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('n'), KeyCode::Esc],
        label: "n/Esc",
        help: "cancel",
        action: Action::Back,
        views: &[View::Confirm],
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Esc],
        label: "Esc",
        help: "cancel the prune (asks first)",
        action: Action::Back,
        views: &[View::Running],
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('y')],
        label: "y",
        help: "yes, cancel the prune",
        action: Action::Yes,
        views: &[View::Running],
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Char('n')],
        label: "n",
        help: "no, keep going",
        action: Action::No,
        views: &[View::Running],
        footer: false,
    },
    Binding {
        keys: &[KeyCode::Enter, KeyCode::Esc],
        label: "⏎/Esc",
        help: "back to the rescanned table",
        action: Action::Back,
        views: &[View::Result],
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('?')],
        label: "?",
        help: "this help",
        action: Action::Help,
        views: &[
            View::Main,
            View::Result,
            View::Rows,
            View::Space,
            View::Records,
        ],
        footer: true,
    },
    Binding {
        keys: &[KeyCode::Char('q')],
        label: "q",
        help: "quit",
        action: Action::Quit,
        views: &[
            View::Main,
            View::Result,
            View::Rows,
            View::Space,
            View::Records,
        ],
        footer: true,
    },
];

/// The action for a key press in a view, if any. Ctrl-C always quits (or cancels a run).
pub fn action_for(view: View, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(if view == View::Running {
            Action::Back
        } else {
            Action::Quit
        });
    }
    BINDINGS
        .iter()
        .find(|b| b.views.contains(&view) && b.keys.contains(&key.code))
        .map(|b| b.action)
}

/// The footer hints of a view, from the same table.
pub fn footer(view: View) -> Vec<(&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.footer && b.views.contains(&view))
        .map(|b| (b.label, short(b.help)))
        .collect()
}

fn short(help: &'static str) -> &'static str {
    match help {
        "show or hide the segments and index truth of the selected collection" => "detail",
        "mark or unmark the selected row for pruning" => "mark",
        "mark every prunable row" => "mark all",
        "mark or unmark the collection's vector index for a rebuild (ghosts removed, missing records put back from the WAL)" => "index",
        "prune the marked rows (asks first)" => "prune",
        "filter by collection name (Enter keeps, Esc clears)" => "filter",
        "cycle the sort: WAL rows, prunable, name" => "sort",
        "rescan the persist dir" => "rescan",
        "confirm the prune" => "confirm",
        "cancel the prune (asks first)" => "cancel",
        "back to the rescanned table" => "back",
        "this help" => "help",
        "read the selected collection's WAL rows" => "rows",
        "read the selected collection's records (documents, metadata, embeddings)" => "records",
        "show the selected record whole (again: close it)" => "record",
        "search the records by id" => "search id",
        "search the records' documents for a text" => "search text",
        "close the record, clear the search, or back to the table" => "back",
        "show the selected WAL row whole (again: close it)" => "row",
        "search the rows by id" => "search id",
        "next (older) match" => "next",
        "previous (newer) match" => "prev",
        "back to the table (closes the row first)" => "back",
        "map where the space of the dir goes, and its backups" => "space",
        "delete the selected backup (asks first; restore is the other way out)" => "delete backup",
        "back to the table" => "back",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventKind;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new_with_kind(c, KeyModifiers::NONE, KeyEventKind::Press)
    }

    #[test]
    fn no_key_is_bound_twice_in_a_view() {
        for v in [
            View::Main,
            View::Confirm,
            View::Running,
            View::Result,
            View::Rows,
        ] {
            let mut seen = Vec::new();
            for b in BINDINGS.iter().filter(|b| b.views.contains(&v)) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{k:?} bound twice in {v:?}");
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn keys_map_per_view() {
        assert_eq!(
            action_for(View::Main, key(KeyCode::Char(' '))),
            Some(Action::Mark)
        );
        assert_eq!(action_for(View::Main, key(KeyCode::Char('y'))), None);
        assert_eq!(
            action_for(View::Confirm, key(KeyCode::Enter)),
            Some(Action::Yes)
        );
        assert_eq!(
            action_for(View::Main, key(KeyCode::Enter)),
            Some(Action::ToggleDetail)
        );
        assert_eq!(action_for(View::Running, key(KeyCode::Char('q'))), None);
    }

    #[test]
    fn footer_comes_from_the_table() {
        let f = footer(View::Main);
        assert!(f.contains(&("space", "mark")));
        assert!(f.contains(&("q", "quit")));
        assert!(!footer(View::Running).contains(&("q", "quit")));
    }
}
