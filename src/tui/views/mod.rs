//! One file per view or pane, as the explorer grows beyond a table and its dialogs.

pub mod confirm;
pub mod help;
pub mod indexes;
pub mod records;
pub mod rows;
pub mod scrub;
pub mod segments;
pub mod space;
pub mod status;
pub mod truth;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

/// Where one item shown whole (a WAL row, a record) is drawn over its list: nearly all of it.
pub fn whole_item_area(area: Rect) -> Rect {
    let w = area.width.saturating_sub(8).max(20);
    let h = area.height.saturating_sub(2).max(8);
    let [_, mid, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(w),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, r_area, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(h),
        Constraint::Fill(1),
    ])
    .areas(mid);
    r_area
}

/// One labelled line of an item shown whole.
pub fn field(k: &str, v: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{k:<11}"), Style::new().fg(Color::DarkGray)),
        Span::raw(v),
    ])
}
