//! The index rebuilds' lines in the confirm dialog and the result view.

use ratatui::style::{Color, Stylize};
use ratatui::text::Line;

use crate::jobs::prune::job::Report;

use super::super::app::App;

/// One line per marked index: what its rebuild would do.
pub fn confirm_lines(app: &App, ids: &[String]) -> Vec<Line<'static>> {
    let Some(s) = app.snap.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for id in ids {
        let Some(i) = s.collections.iter().position(|c| &c.id == id) else {
            continue;
        };
        let what = super::super::indexes::work(app, i).unwrap_or_else(|| "rebuilt".into());
        out.push(Line::from(format!(
            "  rebuild index    {}: {what}",
            s.collections[i].name
        )));
    }
    if !out.is_empty() {
        out.push(
            Line::from(
                "                   the old folder goes into the backup; restore puts it back",
            )
            .fg(Color::DarkGray),
        );
    }
    out
}

/// One line per index the job rebuilt.
pub fn result_lines(r: &Report) -> Vec<Line<'static>> {
    r.indexes
        .iter()
        .map(|i| {
            Line::from(format!(
                "  index {}",
                crate::report::compact::result_line(i)
            ))
        })
        .collect()
}
