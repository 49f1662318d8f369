//! The confirm dialog of a prune (or an index rebuild): what goes, what stays, the backup, the
//! disk, and what the prune takes from a rebuild. Labelled lines wrap under their text, so a
//! narrow terminal keeps the columns readable.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::ui::centered;
use crate::units::{bytes, count};

/// Where a labelled line's text starts: two spaces, the label, padding.
const TEXT_AT: usize = 19;

/// `label` and `text`, wrapped to `width` columns with every further line under the text.
pub(super) fn labelled(label: &str, text: &str, width: usize) -> Vec<Line<'static>> {
    let first = format!("  {label:<w$} ", w = TEXT_AT - 3);
    let rest = " ".repeat(TEXT_AT);
    let opts = textwrap::Options::new(width.max(TEXT_AT + 8))
        .initial_indent(&first)
        .subsequent_indent(&rest);
    textwrap::wrap(text, opts)
        .into_iter()
        .map(|l| Line::from(l.into_owned()))
        .collect()
}

/// The same, in one colour.
pub(super) fn labelled_in(label: &str, text: &str, width: usize, c: Color) -> Vec<Line<'static>> {
    labelled(label, text, width)
        .into_iter()
        .map(|l| l.fg(c))
        .collect()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    if let Some(ask) = &app.scrub {
        return super::scrub::draw(f, app, ask, area);
    }
    let Some(plan) = app.plan() else { return };
    let r_width = area.width.saturating_sub(8).min(110);
    // Inside the border.
    let width = r_width.saturating_sub(2) as usize;
    let only_indexes = plan.rows() == 0 && plan.dirs.is_empty();
    let mut lines: Vec<Line> = vec![
        Line::from(if only_indexes {
            "Rebuild these vector indexes?".bold()
        } else {
            "Delete these WAL rows?".bold()
        }),
        Line::from(""),
    ];
    lines.extend(super::indexes::confirm_lines(app, &plan.indexes));
    for t in plan.effective() {
        lines.push(Line::from(format!(
            "  {:<24} {:>10} rows  below seq_id {}",
            t.label(),
            count(t.rows),
            t.bound.map(|b| b.to_string()).unwrap_or_default()
        )));
    }
    lines.push(Line::from(""));
    lines.extend(labelled(
        "total",
        &format!("{} rows (~{})", count(plan.rows()), bytes(plan.bytes())),
        width,
    ));
    lines.extend(labelled(
        "backup",
        &match app.opts.backup.folder(&app.opts.path) {
            Some(b) => format!("into {}", b.display()),
            None => "NONE (--no-backup): this cannot be undone".into(),
        },
        width,
    ));
    if let Some(sp) = &app.confirm_space {
        let text = format!(
            "{} ({})",
            if sp.ok { "ok" } else { "NOT ENOUGH" },
            sp.summary()
        );
        lines.extend(if sp.ok {
            labelled("free space", &text, width)
        } else {
            labelled_in("free space", &text, width, Color::Red)
        });
    }
    lines.extend(labelled(
        "chroma.sqlite3",
        &format!(
            "{} now, {}{} after{}",
            bytes(plan.sqlite_bytes),
            if app.opts.vacuum { "at most " } else { "" },
            bytes(if app.opts.vacuum {
                plan.estimated_sqlite_after()
            } else {
                plan.sqlite_bytes
            }),
            if app.opts.vacuum {
                " compaction"
            } else {
                " (no compaction)"
            }
        ),
        width,
    ));
    if let Some(s) = &app.snap {
        // What every WAL prune does, said once: not a warning about one collection.
        if let Some(said) =
            crate::jobs::prune::lossy::summary(&crate::jobs::prune::lossy::made_lossy(&plan, s))
        {
            lines.extend(labelled_in("after the prune", &said, width, Color::Yellow));
        }
        if !matches!(app.truth, crate::tui::truth::TruthState::Ready) {
            lines.extend(labelled_in(
                "rebuild check",
                "still reading the indexes: what this prune takes from a rebuild is not known yet",
                width,
                Color::Yellow,
            ));
        }
    }
    for d in &plan.dirs {
        lines.extend(labelled(
            "orphan folder",
            &format!("{}  {}", d.name, bytes(d.bytes)),
            width,
        ));
    }
    let backup_on = app.opts.backup.folder(&app.opts.path).is_some();
    lines.extend(labelled(
        "disk",
        &crate::report::disk::disk_sentence(&plan, backup_on),
        width,
    ));
    lines.push(Line::from(""));
    lines.push(Line::from(
        "  y / Enter: prune     n / Esc: cancel".fg(Color::Cyan),
    ));
    dialog(f, area, r_width, lines, " confirm prune ");
}

/// A confirm dialog: `lines` in a yellow box `width` wide, centred over `area`.
pub(super) fn dialog(f: &mut Frame, area: Rect, width: u16, lines: Vec<Line>, title: &str) {
    let h = lines.len() as u16 + 2;
    let r = centered(area, width, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(title.to_string())
                .border_style(Style::new().fg(Color::Yellow)),
        ),
        r,
    );
}
