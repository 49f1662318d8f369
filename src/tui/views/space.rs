//! The space view: where the bytes of the persist dir go, as proportional bars, with what
//! can be reclaimed marked; then the dir's backups and what each keeps allocated.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;
use crate::units::{bar_cells, bytes, count, one_line};

fn bar_line(
    label: &str,
    part: u64,
    whole: u64,
    width: usize,
    note: Option<&str>,
    color: Color,
) -> Line<'static> {
    let n = bar_cells(part, whole, width);
    let mut spans = vec![
        Span::raw(format!("{:<34} {:>11} ", one_line(label, 34), bytes(part))),
        Span::styled("█".repeat(n), Style::new().fg(color)),
        Span::styled("·".repeat(width - n), Style::new().fg(Color::DarkGray)),
    ];
    if let Some(n) = note {
        spans.push(Span::styled(
            format!("  {n}"),
            Style::new().fg(Color::Green),
        ));
    }
    Line::from(spans)
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(v) = &app.space else { return };
    // The backups pane as tall as its lines (at most 8): on a short terminal the map keeps
    // the room.
    let backup_lines = (v.backups.len().max(1)
        + usize::from(v.confirm_delete || v.message.is_some()))
    .min(6) as u16;
    let [top, bottom] =
        Layout::vertical([Constraint::Min(8), Constraint::Length(backup_lines + 2)]).areas(area);
    let width = (top.width as usize).saturating_sub(80).clamp(10, 40);
    let mut lines: Vec<Line> = Vec::new();
    match &v.map {
        None => {
            let (d, t) = v.progress;
            let pct = (d * 100).checked_div(t).unwrap_or(0);
            lines.push(Line::from(
                format!("mapping chroma.sqlite3 page by page (dbstat)… {pct}%").fg(Color::Yellow),
            ));
        }
        Some(Err(e)) => lines.push(Line::from(
            format!("cannot map the dir: {e}").fg(Color::Red),
        )),
        Some(Ok(m)) => {
            let whole = m.dir_bytes.max(1);
            let prunable = app.wal().map(|w| w.prunable_bytes()).unwrap_or(0);
            lines.push(Line::from(
                format!(
                    "whole dir {}   (green: what a prune can give back)",
                    bytes(m.dir_bytes)
                )
                .bold(),
            ));
            // As many b-trees as the pane holds beside the other lines (at least one), the
            // rest summed on one line.
            let others = 6
                + usize::from(m.deleted.rows.is_some_and(|r| r.total() > 0))
                + usize::from(m.deleted.index_bytes() > 0)
                + usize::from(
                    m.deleted.rows.is_some_and(|r| r.total() > 0) || m.deleted.index_bytes() > 0,
                )
                + usize::from(prunable > 0 && width < 30);
            let fit = (top.height as usize)
                .saturating_sub(2 + 1 + others)
                .clamp(1, 10);
            for t in m.tables.iter().take(fit) {
                let note = (t.name == "embeddings_queue" && prunable > 0)
                    .then(|| format!("the WAL: ~{} prunable", bytes(prunable)));
                lines.push(bar_line(
                    &t.name,
                    t.bytes,
                    whole,
                    width,
                    note.as_deref(),
                    Color::Cyan,
                ));
            }
            let rest: u64 = m.tables.iter().skip(fit).map(|t| t.bytes).sum();
            if rest > 0 {
                let label = format!("{} more tables and indexes", m.tables.len() - fit);
                lines.push(bar_line(&label, rest, whole, width, None, Color::Cyan));
            }
            let free_note = (m.free_bytes > 0).then_some("reclaimable: a compaction");
            lines.push(bar_line(
                "free pages",
                m.free_bytes,
                whole,
                width,
                free_note,
                Color::Green,
            ));
            lines.push(bar_line(
                "journals and leftovers",
                m.side_bytes,
                whole,
                width,
                None,
                Color::Yellow,
            ));
            lines.push(bar_line(
                "index folders",
                m.index_dirs_bytes,
                whole,
                width,
                None,
                Color::Blue,
            ));
            let orphan_note =
                (m.orphan_dirs_bytes > 0).then_some("reclaimable: mark the orphan folders");
            lines.push(bar_line(
                "orphan folders",
                m.orphan_dirs_bytes,
                whole,
                width,
                orphan_note,
                Color::Magenta,
            ));
            lines.push(bar_line(
                "everything else",
                m.other_bytes,
                whole,
                width,
                None,
                Color::DarkGray,
            ));
            let d = &m.deleted;
            let rows = d.rows.map(|r| r.total()).unwrap_or(0);
            if rows > 0 || d.index_bytes() > 0 {
                lines.push(Line::from(
                    "deleted data no record owns (chroma-wal scrub removes it):".bold(),
                ));
                if let Some(r) = d.rows.filter(|r| r.total() > 0) {
                    lines.push(Line::from(format!(
                        "  rows nothing points to: {} record(s), {} metadata, {} full-text, {} other",
                        count(r.records),
                        count(r.metadata),
                        count(r.fulltext),
                        count(r.catalog)
                    )));
                }
                if d.index_bytes() > 0 {
                    lines.push(Line::from(format!(
                        "  leftover bytes in {} index folder(s): {}{}",
                        d.index.len(),
                        bytes(d.index_bytes()),
                        if d.text_runs() > 0 {
                            format!(", {} run(s) of readable text", count(d.text_runs()))
                        } else {
                            String::new()
                        }
                    )));
                }
            }
        }
    }
    f.render_widget(
        // A note that does not fit beside its bar goes on below it, not off the edge.
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" where the space goes ")),
        top,
    );
    let mut b: Vec<Line> = Vec::new();
    if v.backups.is_empty() {
        b.push(Line::from("no backup of this dir in the backup folder"));
    }
    for (i, x) in v.backups.iter().enumerate() {
        let text = format!(
            "{}  {:<9} {:>11} on disk  {}",
            x.manifest.created,
            x.manifest.method,
            bytes(x.allocated),
            x.folder.display()
        );
        let style = if i == v.cursor {
            Style::new().bg(Color::DarkGray)
        } else {
            Style::new()
        };
        b.push(Line::from(Span::styled(text, style)));
    }
    if v.confirm_delete {
        if let Some(x) = v.backups.get(v.cursor) {
            b.push(Line::from(
                format!(
                    "Delete {} and give back {}? It is the undo of that prune (restore). y: delete  n: keep",
                    x.folder.display(),
                    bytes(x.allocated)
                )
                .fg(Color::Yellow)
                .bold(),
            ));
        }
    } else if let Some(m) = &v.message {
        b.push(Line::from(m.clone().fg(Color::Yellow)));
    }
    f.render_widget(
        Paragraph::new(b)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" backups of this dir (newest first) ")),
        bottom,
    );
}
