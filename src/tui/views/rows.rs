//! The rows view: one topic's WAL rows, newest first, with the border between the rows a
//! prune keeps (held) and the ones it takes (prunable) drawn where it falls; Enter shows one
//! row whole.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::chroma::rows::{RowState, WalRow};
use crate::tui::app::App;
use crate::tui::rows::RowsView;
use crate::units::{count, one_line};

fn state_color(s: RowState) -> Color {
    match s {
        RowState::Prunable => Color::Green,
        RowState::Held => Color::Yellow,
        RowState::Orphan => Color::Magenta,
    }
}

fn cells(r: &WalRow, narrow: bool, w: &[u16; 7]) -> Row<'static> {
    let keys = r
        .metadata
        .as_ref()
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    let doc = if r.malformed.is_empty() {
        one_line(r.document.as_deref().unwrap_or(""), 60)
    } else {
        format!("MALFORMED: {}", r.malformed.join("; "))
    };
    let time = r.created_at.clone().unwrap_or_else(|| "-".into());
    // Narrow: "MM-DD HH:MM" (the row view, Enter, has the whole time).
    let time = if narrow && time.len() >= 16 {
        time.get(5..16).unwrap_or(&time).to_string()
    } else {
        time
    };
    Row::new(vec![
        Cell::from(r.seq_id.to_string()),
        Cell::from(one_line(&time, w[1] as usize)),
        Cell::from(r.operation.name()),
        Cell::from(one_line(&r.id, w[3] as usize)),
        Cell::from(r.state.key()).fg(state_color(r.state)),
        Cell::from(doc).fg(if r.malformed.is_empty() {
            Color::Reset
        } else {
            Color::Red
        }),
        Cell::from(one_line(&keys, w[6] as usize)).fg(Color::DarkGray),
    ])
}

/// The columns' widths: at 120 columns and more as they always were; narrower, a shorter
/// time and id, and fewer metadata keys, so that no column is cut to nothing.
fn widths(width: u16) -> (bool, [u16; 7]) {
    if width >= 110 {
        (false, [8, 19, 7, 16, 8, 16, 18])
    } else {
        (true, [7, 11, 6, 12, 8, 12, 10])
    }
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(v) = &app.wal_rows else {
        return;
    };
    let bound = match v.view.as_ref().and_then(|w| w.bound) {
        Some(i64::MAX) => "every row may go".to_string(),
        Some(b) => format!("bound M {b}: rows below it are prunable"),
        None if v.view.is_some() => "bound unknown: every row is held".to_string(),
        None => String::new(),
    };
    let mut title = format!(" WAL rows of {} · newest first ", v.title);
    if !bound.is_empty() {
        title = format!("{title}· {bound} ");
    }
    if let Some(what) = v.loading {
        title = format!("{title}· {what}… ");
    }
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if let Some(e) = &v.error {
        f.render_widget(
            Paragraph::new(format!("cannot read the rows: {e}"))
                .fg(Color::Red)
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    if v.rows.is_empty() {
        let text = if v.loading.is_some() {
            "reading…"
        } else {
            "no WAL rows"
        };
        f.render_widget(Paragraph::new(text), inner);
        return;
    }
    let height = inner.height.saturating_sub(1) as usize; // one line for the column titles
    let border = v.border();
    // Lines: the rows, plus the border line where the prunable rows begin.
    let mut lines: Vec<Option<usize>> = Vec::with_capacity(v.rows.len() + 1);
    for i in 0..v.rows.len() {
        if border == Some(i) {
            lines.push(None);
        }
        lines.push(Some(i));
    }
    let at = lines.iter().position(|l| *l == Some(v.cursor)).unwrap_or(0);
    let first = at.saturating_sub(height.saturating_sub(1).min(height / 2));
    let first = first.min(lines.len().saturating_sub(height));
    let (narrow, w) = widths(inner.width);
    let widths = [
        Constraint::Length(w[0]),
        Constraint::Length(w[1]),
        Constraint::Length(w[2]),
        Constraint::Length(w[3]),
        Constraint::Length(w[4]),
        Constraint::Min(w[5]),
        Constraint::Length(w[6]),
    ];
    let shown: Vec<Row> = lines
        .iter()
        .skip(first)
        .take(height)
        .map(|l| match l {
            Some(i) => {
                let row = cells(&v.rows[*i], narrow, &w);
                if *i == v.cursor {
                    row.style(Style::new().bg(Color::DarkGray))
                } else {
                    row
                }
            }
            None => {
                let b = v
                    .view
                    .as_ref()
                    .and_then(|w| w.bound)
                    .map(|b| b.to_string())
                    .unwrap_or_default();
                let rule = |n: u16| Cell::from("─".repeat(n as usize));
                Row::new(vec![
                    rule(w[0]),
                    rule(w[1]),
                    rule(w[2]),
                    rule(w[3]),
                    Cell::from("prunable"),
                    Cell::from(format!("below: seq_id < {b} {}", "─".repeat(40))),
                    rule(w[6]),
                ])
                .style(Style::new().fg(Color::Green))
            }
        })
        .collect();
    let t = Table::new(shown, widths).header(
        Row::new([
            "seq_id",
            "time",
            "op",
            "id",
            "state",
            "document",
            if narrow { "keys" } else { "metadata keys" },
        ])
        .style(Style::new().bold().fg(Color::Cyan)),
    );
    f.render_widget(t, inner);
    if v.detail {
        if let Some(r) = v.selected() {
            draw_row(f, r, area);
        }
    }
}

/// Enter: one row whole.
fn draw_row(f: &mut Frame, r: &WalRow, area: Rect) {
    let r_area = super::whole_item_area(area);
    let dim = Style::new().fg(Color::DarkGray);
    let field = super::field;
    let mut lines = vec![
        field("seq_id", r.seq_id.to_string()),
        field("state", r.state.key().to_string()),
        field("time", r.created_at.clone().unwrap_or_else(|| "-".into())),
        field("operation", r.operation.name()),
        field("id", r.id.clone()),
        field("topic", r.topic.clone()),
        field(
            "vector",
            match (r.vector_bytes, r.vector_dim()) {
                (Some(b), Some(d)) => format!(
                    "{d} dimensions ({} bytes), first values {}",
                    count(b as u64),
                    crate::units::floats(&r.vector_head, r.vector_head.len(), 4)
                ),
                (Some(b), None) => format!("{b} bytes (not whole float32 values)"),
                _ => "none".into(),
            },
        ),
        field("encoding", r.encoding.clone().unwrap_or_else(|| "-".into())),
    ];
    for m in &r.malformed {
        lines.push(Line::from(Span::styled(
            format!("MALFORMED: {m}"),
            Style::new().fg(Color::Red),
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("document", dim)));
    lines.push(Line::from(
        r.document.clone().unwrap_or_else(|| "(none)".into()),
    ));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("metadata", dim)));
    let meta = r
        .metadata
        .as_ref()
        .and_then(|m| serde_json::to_string_pretty(m).ok())
        .unwrap_or_else(|| "(none)".into());
    lines.extend(meta.lines().map(|l| Line::from(l.to_string())));
    f.render_widget(Clear, r_area);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(format!(" row {} ", r.seq_id))
                .fg(Color::Reset),
        ),
        r_area,
    );
}

/// The search line of the footer, when one is being typed.
pub fn search_line(v: &RowsView) -> Option<Line<'static>> {
    v.search_editing.then(|| {
        Line::from(vec![
            Span::styled(
                format!("search id: {}▏", v.search),
                Style::new().fg(Color::Yellow),
            ),
            Span::raw("   Enter search · Esc cancel"),
        ])
    })
}
