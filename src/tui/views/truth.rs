//! The index truth where the explorer shows a collection: a few words in its row of the
//! table, and in the segments pane what a query can return, the deleted vectors on disk and
//! what a rebuild from the WAL would bring back.

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use crate::chroma::truth::{IndexTruth, Rebuild};
use crate::chroma::Collection;
use crate::units::{bytes, count};

/// The status cell of a collection's row: its prune status, then what the truth found.
pub fn status(c: &Collection) -> (String, Option<Color>) {
    let base = c.status();
    match c.truth.as_ref().and_then(|t| t.short()) {
        Some(short) => (format!("{short} · {base}"), Some(Color::LightRed)),
        None => (base, None),
    }
}

/// The segments pane's lines about the truth of collection `c` (none before it is read).
pub fn lines(c: &Collection) -> Vec<Line<'static>> {
    let Some(t) = &c.truth else {
        return Vec::new();
    };
    let dim = Style::new().fg(Color::DarkGray);
    let alarm = Style::new().fg(Color::LightRed);
    let mut spans = vec![Span::styled("records ", dim), Span::raw(count(t.records))];
    match (t.in_index, t.missing()) {
        (Some(n), Some(m)) => {
            spans.push(Span::styled("  reachable by search ", dim));
            spans.push(Span::raw(count(n)));
            if m > 0 {
                spans.push(Span::styled(
                    format!("  {} unreachable ({})", count(m), sample(t)),
                    alarm.bold(),
                ));
            }
        }
        _ => spans.push(Span::styled("  reachable by search unknown", alarm)),
    }
    if let (Some(g), Some(b)) = (t.ghosts, t.ghost_bytes) {
        spans.push(Span::styled("  deleted vectors on disk ", dim));
        spans.push(Span::raw(format!("{} ({})", count(g), bytes(b))));
    }
    if let Some(s) = t.stale_ids.filter(|s| *s > 0) {
        spans.push(Span::styled(
            format!("  {} deleted ids still in the pickle", count(s)),
            Style::new().fg(Color::Yellow),
        ));
    }
    spans.push(Span::styled("  rebuild from WAL ", dim));
    spans.push(match t.rebuild {
        Rebuild::Lossless => Span::styled("lossless", Style::new().fg(Color::Green)),
        Rebuild::Loses(n) => Span::styled(format!("loses {}", count(n)), alarm.bold()),
        Rebuild::Unknown => Span::styled("unknown", Style::new().fg(Color::Yellow)),
    });
    if let Some(n) = t.prune_makes_lossy() {
        spans.push(Span::styled(
            format!(" (a prune makes it lose {})", count(n)),
            Style::new().fg(Color::Yellow),
        ));
    }
    let mut out = vec![Line::from(spans)];
    if let Some(note) = &t.note {
        out.push(Line::from(Span::styled(note.clone(), alarm)));
    }
    out
}

fn sample(t: &IndexTruth) -> String {
    let more = t.missing().unwrap_or(0) > t.missing_sample.len() as u64;
    format!(
        "{}{}",
        t.missing_sample.join(", "),
        if more { ", …" } else { "" }
    )
}
