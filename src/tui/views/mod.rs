//! One file per view or pane, as the explorer grows beyond a table and its dialogs.

pub mod segments;
