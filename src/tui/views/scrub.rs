//! The confirm dialog of a scrub: what deleted data goes, what stays and why, the backup
//! (which then holds all of it), as `scrub --dry-run` says it.

use ratatui::layout::Rect;
use ratatui::style::{Color, Stylize};
use ratatui::text::Line;
use ratatui::Frame;

use super::confirm::{dialog, labelled, labelled_in};
use crate::tui::app::App;
use crate::tui::scrub::ScrubAsk;
use crate::units::{bytes, count};

pub fn draw(f: &mut Frame, app: &App, ask: &ScrubAsk, area: Rect) {
    let r_width = area.width.saturating_sub(8).min(110);
    let width = r_width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = vec![
        Line::from("Scrub deleted data from this dir?".bold()),
        Line::from(""),
    ];
    let ready = match ask {
        ScrubAsk::Planning(_) => {
            lines.push(Line::from(
                "  counting what deleted data is left (rows nothing points to, WAL rows)…"
                    .fg(Color::Yellow),
            ));
            false
        }
        ScrubAsk::Failed(e) => {
            lines.extend(labelled_in("cannot plan", e, width, Color::Red));
            false
        }
        ScrubAsk::Ready(s) => {
            let p = &s.plan;
            let l = p.scrub.flatten().unwrap_or_default();
            lines.extend(labelled(
                "WAL rows",
                &format!(
                    "{} that Chroma no longer needs, in {} topic(s)",
                    count(p.rows()),
                    p.effective().count()
                ),
                width,
            ));
            lines.extend(labelled(
                "orphan rows",
                &format!(
                    "{} record(s), {} metadata, {} full-text, {} collection/segment metadata",
                    count(l.records),
                    count(l.metadata),
                    count(l.fulltext),
                    count(l.catalog)
                ),
                width,
            ));
            lines.extend(labelled(
                "chroma.sqlite3",
                &format!(
                    "{} written anew in place (VACUUM): {} of free pages and every page's unused space",
                    bytes(p.sqlite_bytes),
                    bytes(p.free_bytes)
                ),
                width,
            ));
            lines.extend(labelled(
                "vector indexes",
                &format!(
                    "{} rebuilt, deleted vectors and leftover bytes gone, nothing put back",
                    count(p.indexes.len() as u64)
                ),
                width,
            ));
            if !p.dirs.is_empty() {
                lines.extend(labelled(
                    "orphan folders",
                    &format!("{} ({})", p.dirs.len(), bytes(p.dir_bytes_total())),
                    width,
                ));
            }
            for k in &s.kept {
                lines.extend(labelled_in(
                    "stays",
                    &format!(
                        "{}: {} WAL row(s) of deleted records, {}",
                        k.collection,
                        count(k.wal_rows),
                        k.why
                    ),
                    width,
                    Color::Yellow,
                ));
            }
            true
        }
    };
    lines.extend(labelled(
        "backup",
        &match app.opts.backup.folder(&app.opts.path) {
            Some(b) => format!("into {}: it will hold everything this removes", b.display()),
            None => "NONE (--no-backup): this cannot be undone".into(),
        },
        width,
    ));
    lines.push(Line::from(""));
    lines.push(Line::from(
        if ready {
            "  y / Enter: scrub     n / Esc: cancel"
        } else {
            "  n / Esc: cancel"
        }
        .fg(Color::Cyan),
    ));
    dialog(f, area, r_width, lines, " confirm scrub ");
}
