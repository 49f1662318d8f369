//! The segments pane under the table: each segment's position, its health, and the facts of
//! its vector index (elements, deleted marks, capacity, file sizes). A damaged collection
//! shows what to do about it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use crate::chroma::health::{Load, Wal};
use crate::chroma::{Bound, Health, Segment};
use crate::tui::app::{App, RowRef};
use crate::units::{bytes, count};

/// The colour of a verdict, the same in the table and in this pane.
pub fn health_color(h: &Health) -> Color {
    match (h.load(), h.wal()) {
        (Load::Incomplete(_) | Load::Unloadable(_), _) => Color::Red,
        (Load::Ok, Wal::Bounded) => Color::Green,
        _ => Color::Yellow,
    }
}

fn index_cell(seg: &Segment) -> String {
    let Some(h) = seg.index.as_ref().and_then(|f| f.parsed()) else {
        return "-".into();
    };
    let deleted = match seg.index.as_ref().and_then(|f| f.deleted) {
        Some(d) => format!(" · {} deleted", count(d)),
        None => String::new(),
    };
    format!(
        "{} / {}{deleted}",
        count(h.cur_element_count),
        count(h.max_elements)
    )
}

/// "data_level0 58 KiB · link_lists 2.9 KiB · …" for one index folder.
fn files_line(seg: &Segment) -> Option<Line<'static>> {
    let f = seg.index.as_ref()?;
    let dim = Style::new().fg(Color::DarkGray);
    let mut spans = vec![Span::styled(format!("{} ", seg.short_id()), dim)];
    if let Some(h) = f.parsed() {
        spans.push(Span::raw(format!("dim {}  ", h.dimensionality())));
    }
    for (i, (name, len)) in f.files.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", dim));
        }
        let short = name.trim_end_matches(".bin").trim_end_matches(".pickle");
        spans.push(Span::styled(format!("{short} "), dim));
        spans.push(Span::raw(bytes(*len)));
    }
    Some(Line::from(spans))
}

/// The table's columns but the index one, with their spacing, and room for a short note.
const TABLE_WIDTH: usize = 8 + 9 + 13 + 10 + 14 + 10 + 20 + 7;

/// One segment in words, for a pane too narrow for the table.
fn segment_lines(seg: &Segment) -> Vec<Line<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    let mut spans = vec![
        Span::raw(format!("{} {}… ", seg.scope, seg.short_id())),
        Span::styled(seg.health.key(), Style::new().fg(health_color(&seg.health))),
        Span::styled("  max_seq_id ", dim),
        Span::raw(format!(
            "{} ({})",
            seg.max_seq_id
                .map(|v| v.to_string())
                .unwrap_or_else(|| "unknown".into()),
            seg.source.key()
        )),
    ];
    if seg.index.is_some() {
        spans.push(Span::styled("  index ", dim));
        spans.push(Span::raw(index_cell(seg)));
    }
    if let Some(b) = seg.dir_bytes {
        spans.push(Span::styled("  folder ", dim));
        spans.push(Span::raw(bytes(b)));
    }
    let mut out = vec![Line::from(spans)];
    if let Some(p) = &seg.problem {
        out.push(Line::from(Span::styled(
            format!("  {p}"),
            Style::new().fg(health_color(&seg.health)),
        )));
    }
    out
}

/// `compact`: the table left out "held" and "bound M" for want of room; this pane says them.
pub fn draw(f: &mut Frame, app: &App, area: Rect, compact: bool) {
    let block = Block::bordered().title(" segments ");
    let (Some(RowRef::Collection(i)), Some(s)) = (app.selected(), &app.snap) else {
        let text = match (app.selected(), app.wal()) {
            (Some(RowRef::Folder(i)), _) => match app.snap.as_ref().and_then(|s| s.orphan_segment_dirs.get(i)) {
                Some(o) => format!(
                    "Orphan folder {} ({}).\nIts name is a segment id that no segment (in any tenant or database) and no max_seq_id row uses any more: Chroma 0.6.3 and 1.x leave a deleted collection's index folder behind. {}",
                    o.name,
                    bytes(o.bytes),
                    match &o.keep {
                        None => "Marked and pruned, it is moved into the prune's backup folder (restore puts it back).".to_string(),
                        Some(why) => format!("It {why}."),
                    }
                ),
                None => "nothing selected".into(),
            },
            (Some(RowRef::Orphan(t)), Some(w)) => {
                let t = &w.topics[t];
                format!("Orphan topic {}\nseq_id {}..{}, {} rows. No collection reads it any more: every row may go.", t.topic, t.min_seq_id, t.max_seq_id, count(t.rows))
            }
            _ => "nothing selected".into(),
        };
        f.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    };
    let c = &s.collections[i];
    // The id moves into the pane where the title has no room for it.
    let title = format!(" segments of {} (id {}) ", c.name, c.id);
    let id_inside = " segments ".len() + 1 + title.width() + 2 > area.width as usize;
    let block = block.title(if id_inside {
        format!(" segments of {} ", c.name)
    } else {
        title
    });
    if s.folders_pending() {
        let text = "reading the segment folders…";
        f.render_widget(Paragraph::new(text).fg(Color::DarkGray).block(block), area);
        return;
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut extra: Vec<Line> = Vec::new();
    if compact {
        let dim = Style::new().fg(Color::DarkGray);
        let n = app.numbers(&RowRef::Collection(i));
        let num = |v: Option<u64>| v.map(count).unwrap_or_else(|| "…".into());
        extra.push(Line::from(vec![
            Span::styled("held ", dim),
            Span::raw(num(n.map(|n| n.2))),
            Span::styled("  bound M ", dim),
            Span::raw(
                c.bound
                    .value()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            Span::styled("  status ", dim),
            Span::raw(c.status()),
        ]));
    }
    if id_inside {
        extra.push(Line::from(vec![
            Span::styled("collection id ", Style::new().fg(Color::DarkGray)),
            Span::raw(c.id.clone()),
        ]));
    }
    extra.extend(super::truth::lines(c));
    extra.extend(c.segments.iter().filter_map(files_line));
    if let Bound::Damaged {
        segment,
        reason,
        recovery,
    } = &c.bound
    {
        let red = Style::new().fg(Color::Red);
        // What the repair does now comes first (its dry run, once the indexes are read);
        // the era's manual procedure after it.
        let repair = match c.repair.as_deref() {
            Some(p) => format!(
                "Repair: {}",
                p.sentence(
                    &app.snap
                        .as_ref()
                        .map(|s| s.persist_dir.clone())
                        .unwrap_or_default(),
                    &c.id
                )
            ),
            None => {
                "Repair: what chroma-wal compact --repair brings back is read with the indexes…"
                    .into()
            }
        };
        extra.splice(
            0..0,
            [
                Line::from(Span::styled(
                    format!("Damaged: segment {segment}: {reason}. Its whole WAL is kept."),
                    red.bold(),
                )),
                Line::from(Span::styled(repair, Style::new().fg(Color::Yellow))),
                Line::from(Span::styled(format!("Or by hand: {recovery}"), red)),
            ],
        );
    }
    // The index column is as wide as its widest cell: its numbers are never cut.
    let index_w = c
        .segments
        .iter()
        .map(|seg| index_cell(seg).width())
        .max()
        .unwrap_or(0)
        .max("index elements".len());
    // Narrower than the table needs: each segment is said in words, wrapped, with the rest.
    if (inner.width as usize) < TABLE_WIDTH + index_w {
        let mut lines: Vec<Line> = c.segments.iter().flat_map(segment_lines).collect();
        lines.extend(extra);
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
        return;
    }
    // The damage and its advice are wrapped whole: the advice is what the user acts on.
    let extra = Paragraph::new(extra).wrap(Wrap { trim: true });
    let wrapped = u16::try_from(extra.line_count(inner.width)).unwrap_or(u16::MAX);
    // The table keeps a line per segment and its header; the text gets the rest.
    let table_h = u16::try_from(c.segments.len() + 1)
        .unwrap_or(u16::MAX)
        .max(2);
    let extra_h = wrapped.min(inner.height.saturating_sub(table_h));
    let [table_area, extra_area] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(extra_h)]).areas(inner);
    let rows: Vec<Row> = c
        .segments
        .iter()
        .map(|seg| {
            Row::new(vec![
                Cell::from(seg.scope.clone()),
                Cell::from(format!("{}…", seg.short_id())),
                Cell::from(seg.health.key()).fg(health_color(&seg.health)),
                Cell::from(
                    seg.max_seq_id
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                ),
                Cell::from(seg.source.key()),
                Cell::from(index_cell(seg)),
                Cell::from(seg.dir_bytes.map(bytes).unwrap_or_else(|| "-".into())),
                Cell::from(seg.problem.clone().unwrap_or_default()).fg(health_color(&seg.health)),
            ])
        })
        .collect();
    let t = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Length(u16::try_from(index_w).unwrap_or(u16::MAX)),
            Constraint::Length(10),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new([
            "scope",
            "segment",
            "health",
            "max_seq_id",
            "from",
            "index elements",
            "folder",
            "note",
        ])
        .style(Style::new().bold().fg(Color::Cyan)),
    );
    f.render_widget(t, table_area);
    f.render_widget(extra, extra_area);
}
