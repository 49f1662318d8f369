//! One file per view or pane, as the explorer grows beyond a table and its dialogs.

pub mod help;
pub mod records;
pub mod rows;
pub mod segments;
pub mod space;
pub mod truth;
