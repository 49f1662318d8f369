//! The records view: one collection's records as `get()` returns them, a page at a time; a
//! record whose vector is nowhere (no query returns it) is marked in red. Enter shows one
//! record whole: its document, its metadata as JSON, its vector's dimension and first values,
//! and where the vector comes from.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::chroma::records::{Filter, Record, Source};
use crate::tui::app::App;
use crate::tui::records::{RecordsView, SearchKind};
use crate::units::{count, one_line};

fn source_cell(r: &Record, ready: bool) -> Cell<'static> {
    match (r.source, ready) {
        (_, false) => Cell::from("…").fg(Color::DarkGray),
        (Some(Source::Index), true) => Cell::from("index").fg(Color::Green),
        (Some(Source::Wal), true) => Cell::from("wal").fg(Color::Yellow),
        (None, true) => Cell::from("unreachable").fg(Color::LightRed).bold(),
    }
}

fn cells(r: &Record, ready: bool, id_w: usize) -> Row<'static> {
    let meta = r
        .metadata
        .as_ref()
        .map(|m| serde_json::Value::Object(m.clone()).to_string())
        .unwrap_or_else(|| "-".into());
    Row::new(vec![
        Cell::from(one_line(&r.id, id_w)),
        source_cell(r, ready),
        Cell::from(one_line(r.document.as_deref().unwrap_or("-"), 80)),
        Cell::from(one_line(&meta, 60)).fg(Color::DarkGray),
    ])
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(v) = &app.records else {
        return;
    };
    let mut title = format!(" records of {} ", v.title);
    if let Some(n) = v.count {
        title = format!("{title}· {} records ", count(n));
    }
    match &v.filter {
        Filter::All => {}
        Filter::Id(s) => title = format!("{title}· ids containing \"{s}\" "),
        Filter::Document(s) => title = format!("{title}· documents containing \"{s}\" "),
    }
    if !v.vectors_ready {
        title = format!("{title}· finding the vectors… ");
    }
    if let Some(what) = v.loading {
        title = format!("{title}· {what}… ");
    }
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if let Some(e) = &v.error {
        f.render_widget(
            Paragraph::new(format!("cannot read the records: {e}"))
                .fg(Color::Red)
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let [note_area, list] = Layout::vertical([
        Constraint::Length(u16::from(v.problem.is_some())),
        Constraint::Min(1),
    ])
    .areas(inner);
    if let Some(p) = &v.problem {
        f.render_widget(Paragraph::new(p.clone()).fg(Color::LightRed), note_area);
    }
    if v.records.is_empty() {
        let text = if v.loading.is_some() {
            "reading…"
        } else if v.filter != Filter::All {
            "no record matches (Esc clears the search)"
        } else {
            "no records"
        };
        f.render_widget(Paragraph::new(text), list);
        return;
    }
    let height = list.height.saturating_sub(1) as usize;
    let first = v
        .cursor
        .saturating_sub(height.saturating_sub(1).min(height / 2));
    let first = first.min(v.records.len().saturating_sub(height));
    // Narrower than 110 columns: a shorter id and metadata column, so none is cut to nothing
    // (the record view, Enter, shows each whole).
    let wide = list.width >= 110;
    let id_w = if wide { 24 } else { 16 };
    let rows: Vec<Row> = v
        .records
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, r)| {
            let row = cells(r, v.vectors_ready, id_w);
            if i == v.cursor {
                row.style(Style::new().bg(Color::DarkGray))
            } else {
                row
            }
        })
        .collect();
    let t = Table::new(
        rows,
        [
            Constraint::Length(id_w as u16),
            Constraint::Length(11),
            Constraint::Min(if wide { 20 } else { 16 }),
            Constraint::Length(if wide { 40 } else { 24 }),
        ],
    )
    .header(
        Row::new(["id", "vector", "document", "metadata"])
            .style(Style::new().bold().fg(Color::Cyan)),
    );
    f.render_widget(t, list);
    if v.detail_open {
        if let Some(r) = v.selected() {
            draw_record(f, r, v.detail.as_deref(), v.vectors_ready, area);
        }
    }
}

/// Enter: one record whole (`full`: read again with its embedding, once it arrives).
fn draw_record(f: &mut Frame, r: &Record, full: Option<&Record>, ready: bool, area: Rect) {
    let r = full.unwrap_or(r);
    let r_area = super::whole_item_area(area);
    let dim = Style::new().fg(Color::DarkGray);
    let field = super::field;
    let source = match (r.source, ready) {
        (_, false) => "still finding where the vectors are…".to_string(),
        (Some(Source::Index), true) => "the index files (data_level0.bin)".into(),
        (Some(Source::Wal), true) => {
            "a WAL row Chroma has yet to apply to the index (it does on its next load)".into()
        }
        (None, true) => {
            "none: no index holds this record's vector and no WAL row adds it, so no query \
             returns it (count() still counts it)"
                .into()
        }
    };
    let vector = match (&r.embedding, full.is_some()) {
        (Some(e), _) => format!(
            "{} dimensions, first values {}",
            e.len(),
            crate::units::floats(e, 8, 6)
        ),
        (None, false) => "reading…".into(),
        (None, true) => "none".into(),
    };
    let mut lines = vec![
        field("id", r.id.clone()),
        field("vector", vector),
        field("from", source),
        Line::from(""),
        Line::from(Span::styled("document", dim)),
    ];
    lines.extend(
        r.document
            .clone()
            .unwrap_or_else(|| "(none)".into())
            .lines()
            .map(|l| Line::from(l.to_string())),
    );
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
                .title(format!(" record {} ", one_line(&r.id, 40)))
                .fg(Color::Reset),
        ),
        r_area,
    );
}

/// The search line of the footer, when one is being typed.
pub fn search_line(v: &RecordsView) -> Option<Line<'static>> {
    let what = match v.search_editing? {
        SearchKind::Id => "search ids",
        SearchKind::Text => "search documents",
    };
    Some(Line::from(vec![
        Span::styled(
            format!("{what}: {}▏", v.search),
            Style::new().fg(Color::Yellow),
        ),
        Span::raw("   Enter search · Esc cancel"),
    ]))
}
