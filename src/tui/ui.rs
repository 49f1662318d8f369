//! Render functions: state in, frame out. Nothing here changes the app.

use std::time::Instant;

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Gauge, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::app::{state_sentence, step_elapsed, App, Counts, RowRef, StepStatus, View};
use super::keymap;
use crate::jobs::prune::job::Unit;
use crate::units::{bytes, count, delta, seconds};
use unicode_width::UnicodeWidthStr;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Draw the whole screen. `now` is passed in so tests render fixed elapsed times.
pub fn draw(f: &mut Frame, app: &App, now: Instant) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "Terminal too small: {}x{}.\nchroma-wal needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\nEnlarge the window, or press q to quit.",
            area.width, area.height
        );
        f.render_widget(
            Paragraph::new(msg)
                .wrap(Wrap { trim: true })
                .fg(Color::Yellow),
            area,
        );
        return;
    }
    let banner = app.blocker().map(|_| 2).unwrap_or(0);
    // The header and the footer wrap on a narrow terminal rather than lose their ends; the
    // table gets what is left.
    let head = header(app);
    let foot = footer(app);
    let line_count = |p: &Paragraph, at_least: u16| {
        u16::try_from(p.line_count(area.width))
            .unwrap_or(u16::MAX)
            .max(at_least)
    };
    let [header_area, banner_area, body, footer_area] = Layout::vertical([
        Constraint::Length(line_count(&head, 4)),
        Constraint::Length(banner),
        Constraint::Min(5),
        Constraint::Length(line_count(&foot, 2)),
    ])
    .areas(area);
    f.render_widget(head, header_area);
    if let Some(b) = app.blocker() {
        f.render_widget(
            Paragraph::new(format!("PRUNING DISABLED: {b}"))
                .wrap(Wrap { trim: true })
                .style(
                    Style::new()
                        .fg(Color::White)
                        .bg(Color::Red)
                        .add_modifier(Modifier::BOLD),
                ),
            banner_area,
        );
    }
    match app.view {
        View::Main | View::Confirm => {
            draw_table(f, app, body);
            if app.view == View::Confirm {
                super::views::confirm::draw(f, app, area);
            }
        }
        View::Running => draw_running(f, app, body, now),
        View::Result => draw_result(f, app, body),
        View::Rows => super::views::rows::draw(f, app, body),
        View::Records => super::views::records::draw(f, app, body),
        View::Space => super::views::space::draw(f, app, body),
    }
    f.render_widget(foot, footer_area);
    if app.help.open {
        super::views::help::draw(f, &app.help, app.view, area);
    }
}

/// The lines above the table, wrapped to the terminal.
fn header(app: &App) -> Paragraph<'static> {
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines = vec![Line::from(vec![
        Span::styled("chroma-wal ", Style::new().bold().fg(Color::Cyan)),
        Span::raw(app.shown_path.clone()),
    ])];
    match (&app.snap, &app.scan_error) {
        (_, Some(e)) => lines.push(Line::from(Span::styled(
            format!("cannot read: {e}"),
            Style::new().fg(Color::Red),
        ))),
        (None, None) => lines.push(Line::from(Span::styled("reading the catalog…", dim))),
        (Some(s), None) => {
            let purge = match s.automatically_purge {
                Some(true) => "on",
                Some(false) => "off",
                None => "n/a (kept forever)",
            };
            lines.push(Line::from(vec![
                Span::styled("era ", dim),
                Span::raw(format!("{}  ", s.schema.era.label())),
                Span::styled("chroma.sqlite3 ", dim),
                Span::raw(format!("{}  ", bytes(s.sizes.sqlite))),
                Span::styled("dir ", dim),
                Span::raw(if s.folders_pending() {
                    "…  ".to_string()
                } else {
                    format!("{}  ", bytes(s.sizes.dir))
                }),
                Span::styled("auto purge ", dim),
                Span::raw(purge),
            ]));
            let wal = match &app.counts {
                Counts::Counting { done, total } => {
                    let pct = if *total > 0 {
                        format!(" {}%", done * 100 / total)
                    } else {
                        String::new()
                    };
                    Line::from(vec![
                        Span::styled("WAL ", dim),
                        Span::styled(format!("counting…{pct}"), Style::new().fg(Color::Yellow)),
                    ])
                }
                Counts::Failed(e) => Line::from(Span::styled(
                    format!("WAL count failed: {e}"),
                    Style::new().fg(Color::Red),
                )),
                Counts::Ready(w) => {
                    let mut spans = vec![
                        Span::styled("WAL ", dim),
                        Span::raw(format!("{} rows  ", count(w.rows()))),
                        Span::styled("prunable ", dim),
                        Span::styled(
                            format!("{} (~{})", count(w.prunable()), bytes(w.prunable_bytes())),
                            Style::new().fg(Color::Green),
                        ),
                    ];
                    if let Some((text, alarm)) = app.truth_summary() {
                        spans.push(Span::styled(
                            format!("  {text}"),
                            Style::new().fg(if alarm {
                                Color::LightRed
                            } else {
                                Color::DarkGray
                            }),
                        ));
                    }
                    if !s.holders.list.is_empty() || w.changed_during_scan {
                        spans.push(Span::styled(
                            "  live dir: counts may lag (recounted every 10 s; r now)",
                            Style::new().fg(Color::Yellow),
                        ));
                    }
                    Line::from(spans)
                }
            };
            lines.push(wal);
            lines.push(Line::from(Span::styled(s.schema.releases_sentence(), dim)));
        }
    }
    Paragraph::new(lines).wrap(Wrap { trim: false })
}

fn right(s: String) -> Cell<'static> {
    Cell::from(ratatui::text::Text::from(s).alignment(ratatui::layout::Alignment::Right))
}

fn num(n: Option<u64>) -> String {
    n.map(count).unwrap_or_else(|| "…".into())
}

/// The column of the main table that names the tenant and database.
const PLACE_COLUMN: usize = 2;

/// The columns ("held", "bound M") a narrow table leaves to the segments pane.
const COMPACT_HIDDEN: [usize; 2] = [6, 7];

/// A collection's tenant and database; the defaults as one word.
fn place(tenant: Option<&str>, database: Option<&str>) -> String {
    match (tenant.unwrap_or("-"), database.unwrap_or("-")) {
        ("default_tenant", "default_database") => "(default)".into(),
        (t, d) => format!("{t}/{d}"),
    }
}

fn draw_table(f: &mut Frame, app: &App, area: Rect) {
    let rows = app.rows();
    let (table_area, detail_area) = if app.detail {
        // The table takes what its rows need, up to 55 %; the segments pane the rest.
        let most = (area.height as usize * 55 / 100).max(5);
        let table_h = u16::try_from((rows.len() + 3).clamp(5, most)).unwrap_or(5);
        let [a, b] =
            Layout::vertical([Constraint::Length(table_h), Constraint::Min(3)]).areas(area);
        (a, Some(b))
    } else {
        (area, None)
    };
    let snap = app.snap.as_ref();
    // The tenant and database take a column only where they tell collections apart: most
    // dirs have one of each, and the status would be cut to repeat them on every row.
    let places = snap.is_some_and(|s| {
        let mut seen = s.collections.iter().map(|c| (&c.tenant, &c.database));
        seen.next()
            .is_some_and(|first| seen.any(|other| other != first))
    });

    // Only the rows on screen are built: a dir of 20,000 collections costs no more per frame
    // than one of twenty.
    let visible = table_area.height.saturating_sub(3) as usize + 1;
    let start = app.offset.min(rows.len());
    let end = start.saturating_add(visible).min(rows.len());
    // The names' columns are as wide as the names on screen (within a cap); the status gets
    // every column left, and says what fits there (the segments pane says it whole).
    let (mut name_w, mut place_w) = ("collection".len(), "tenant/database".len());
    for r in &rows[start..end] {
        let (name, place_w_of) = match (r, snap) {
            (RowRef::Collection(i), Some(s)) => {
                let c = &s.collections[*i];
                let p = place(c.tenant.as_deref(), c.database.as_deref());
                (c.name.width(), p.width())
            }
            (RowRef::Orphan(t), _) => match app.wal() {
                Some(w) => ("(orphan topic) ".len() + w.topics[*t].topic.width(), 0),
                None => (0, 0),
            },
            (RowRef::Folder(i), Some(s)) => (
                "(orphan folder) ".len() + s.orphan_segment_dirs[*i].name.width(),
                0,
            ),
            _ => (0, 0),
        };
        name_w = name_w.max(name);
        place_w = place_w.max(place_w_of);
    }
    // Where the status would get fewer than 16 columns, "held" and "bound M" leave the table
    // for the segments pane (Enter), which then says them.
    let status_room = |compact: bool| {
        let fixed = [
            3,
            name_w.min(32),
            if places { place_w.min(28) } else { 0 },
            4,
            9,
            9,
            if compact { 0 } else { 7 },
            if compact { 0 } else { 8 },
        ];
        let columns = 7 + usize::from(places) - if compact { 2 } else { 0 };
        (table_area.width as usize).saturating_sub(2 + fixed.iter().sum::<usize>() + columns)
    };
    let compact = status_room(false) < 16;
    let status_w = status_room(compact).max(8);
    let shown =
        |k: &usize| (places || *k != PLACE_COLUMN) && !(compact && COMPACT_HIDDEN.contains(k));
    let header = Row::new(
        [
            Cell::from(""),
            Cell::from("collection"),
            Cell::from("tenant/database"),
            right("dim".into()),
            right("WAL rows".into()),
            right("prunable".into()),
            right("held".into()),
            right("bound M".into()),
            Cell::from("status"),
        ]
        .into_iter()
        .enumerate()
        .filter(|(k, _)| shown(k))
        .map(|(_, c)| c),
    )
    .style(Style::new().bold().fg(Color::Cyan));
    let fit = |t: &str| super::views::status::fit(t, status_w);
    let body: Vec<Row> = rows[start..end]
        .iter()
        .map(|r| {
            let marked = app.marked.contains(&app.key_of(r));
            let n = app.numbers(r);
            let index = matches!(r, RowRef::Collection(i) if app.index_marked(*i));
            let mark = match (marked, index) {
                (true, true) => "[X]",
                (false, true) => "[i]",
                (true, false) => "[x]",
                (false, false) => "[ ]",
            };
            let cells: Vec<Cell> = match (r, snap, app.wal()) {
                (RowRef::Collection(i), Some(s), _) => {
                    let c = &s.collections[*i];
                    vec![
                        Cell::from(mark),
                        Cell::from(c.name.clone()),
                        Cell::from(place(c.tenant.as_deref(), c.database.as_deref())),
                        right(c.dimension.map(|d| d.to_string()).unwrap_or_else(|| {
                            // Read with the folders (the preview reads names only).
                            if s.folders_pending() { "…" } else { "-" }.into()
                        })),
                        right(num(n.map(|n| n.0))),
                        right(num(n.map(|n| n.1))).fg(Color::Green),
                        right(num(n.map(|n| n.2))),
                        right(
                            c.bound
                                .value()
                                .map(|m| m.to_string())
                                .unwrap_or_else(|| "-".into()),
                        ),
                        {
                            let (text, alarm) = super::views::truth::status(c);
                            Cell::from(fit(&text)).fg(if c.is_damaged() {
                                Color::Red
                            } else if let Some(a) = alarm {
                                a
                            } else if c.bound.value().is_some() {
                                Color::Reset
                            } else {
                                Color::Yellow
                            })
                        },
                    ]
                }
                (RowRef::Orphan(t), _, Some(w)) => {
                    let t = &w.topics[*t];
                    vec![
                        Cell::from(mark),
                        Cell::from(format!("(orphan topic) {}", t.topic)).fg(Color::Magenta),
                        Cell::from(""),
                        right("-".into()),
                        right(count(t.rows)),
                        right(count(t.prunable)).fg(Color::Green),
                        right(count(t.held())),
                        right(t.bound.map(|m| m.to_string()).unwrap_or_else(|| "-".into())),
                        Cell::from(fit("collection deleted: all rows may go")).fg(Color::Magenta),
                    ]
                }
                (RowRef::Folder(i), Some(s), _) => {
                    let o = &s.orphan_segment_dirs[*i];
                    vec![
                        Cell::from(mark),
                        Cell::from(format!("(orphan folder) {}", o.name)).fg(Color::Magenta),
                        Cell::from(""),
                        right("-".into()),
                        right("-".into()),
                        right("-".into()),
                        right("-".into()),
                        right("-".into()),
                        match &o.keep {
                            None => Cell::from(fit(&format!(
                                "{}, no segment uses it: reclaimable",
                                bytes(o.bytes)
                            )))
                            .fg(Color::Magenta),
                            Some(why) => Cell::from(fit(why)).fg(Color::Yellow),
                        },
                    ]
                }
                _ => vec![Cell::from("")],
            };
            let cells = cells
                .into_iter()
                .enumerate()
                .filter(|(k, _)| shown(k))
                .map(|(_, c)| c);
            let row = Row::new(cells);
            if marked {
                row.style(Style::new().add_modifier(Modifier::BOLD))
            } else {
                row
            }
        })
        .collect();
    // The status says what to do; it gets the most room, and the names the rest.
    let cap = |w: usize, most: u16| Constraint::Max((w as u16).min(most));
    let widths: Vec<Constraint> = [
        Constraint::Length(3),
        cap(name_w, 32),
        cap(place_w, 28),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Fill(1),
    ]
    .into_iter()
    .enumerate()
    .filter(|(k, _)| shown(k))
    .map(|(_, c)| c)
    .collect();
    let title = {
        let mut t = format!(
            " collections ({}) · sort: {} ",
            rows.len(),
            app.sort.label()
        );
        if app.filter_editing {
            t.push_str(&format!("· filter: {}▏ ", app.filter));
        } else if !app.filter.is_empty() {
            t.push_str(&format!("· filter: {} ", app.filter));
        }
        t
    };
    let table = Table::new(body, widths)
        .header(header)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().bg(Color::DarkGray))
        .column_spacing(1);
    let mut state = TableState::new().with_selected(if rows.is_empty() {
        None
    } else {
        app.cursor.checked_sub(start)
    });
    *state.offset_mut() = 0;
    f.render_stateful_widget(table, table_area, &mut state);
    if rows.is_empty() {
        let msg = if app.snap.is_none() {
            "reading…"
        } else {
            "no collection matches the filter"
        };
        let inner = Rect {
            x: table_area.x + 2,
            y: table_area.y + 2,
            width: table_area.width.saturating_sub(4),
            height: 1,
        };
        f.render_widget(Paragraph::new(msg).fg(Color::DarkGray), inner);
    }
    if let Some(d) = detail_area {
        super::views::segments::draw(f, app, d, compact);
    }
}

pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    r
}

fn amount(unit: Unit, n: u64) -> String {
    match unit {
        Unit::Bytes => bytes(n),
        Unit::Rows => format!("{} rows", count(n)),
        Unit::Checks => format!("{n} checks"),
        Unit::Tables => format!("{n} tables"),
        Unit::Elements => format!("{} elements", count(n)),
    }
}

fn draw_running(f: &mut Frame, app: &App, area: Rect, now: Instant) {
    let Some(job) = &app.job else { return };
    let block = Block::bordered().title(if job.plan.rows() == 0 && !job.plan.indexes.is_empty() {
        format!(" rebuilding {} index(es) ", job.plan.indexes.len())
    } else {
        format!(" pruning {} rows ", count(job.plan.rows()))
    });
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut constraints: Vec<Constraint> =
        job.steps.iter().map(|_| Constraint::Length(2)).collect();
    constraints.push(Constraint::Min(1));
    let areas = Layout::vertical(constraints).split(inner);
    for (s, a) in job.steps.iter().zip(areas.iter()) {
        let (label, color) = match s.status {
            StepStatus::Pending => ("pending", Color::DarkGray),
            StepStatus::Running => ("running", Color::Yellow),
            StepStatus::Done => ("done", Color::Green),
            StepStatus::Skipped => ("skipped", Color::DarkGray),
            StepStatus::Failed => ("FAILED", Color::Red),
        };
        let elapsed = step_elapsed(s, now)
            .map(|d| seconds(d.as_secs_f64()))
            .unwrap_or_default();
        let [name, gauge, time] = Layout::horizontal([
            Constraint::Length(22),
            Constraint::Min(10),
            Constraint::Length(12),
        ])
        .areas(Rect { height: 1, ..*a });
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::raw(format!("{:<10}", s.step.name())),
                Span::styled(label, Style::new().fg(color)),
            ])),
            name,
        );
        let (ratio, text) = match (s.status, s.total) {
            (StepStatus::Skipped, _) => (0.0, s.note.clone().unwrap_or_default()),
            (StepStatus::Failed, _) => (0.0, s.note.clone().unwrap_or_default()),
            (_, Some(t)) if t > 0 => (
                (s.done as f64 / t as f64).clamp(0.0, 1.0),
                format!("{} / {}", amount(s.unit, s.done), amount(s.unit, t)),
            ),
            (StepStatus::Running, _) => (
                0.0,
                "working… (no progress figures from SQLite for this step)".into(),
            ),
            (StepStatus::Done, _) => (1.0, "done".into()),
            _ => (0.0, String::new()),
        };
        f.render_widget(
            Gauge::default()
                .ratio(ratio)
                .label(text)
                .gauge_style(Style::new().fg(color).bg(Color::Black)),
            gauge,
        );
        f.render_widget(Paragraph::new(elapsed), time);
    }
    if let Some(last) = areas.last() {
        let msg = if job.confirm_cancel {
            Line::from("Cancel the prune? y: cancel (the dir stays untouched or exactly pruned)   n: keep going".fg(Color::Yellow).bold())
        } else if job.cancel_sent {
            Line::from("cancelling…".fg(Color::Yellow))
        } else {
            Line::from(format!(
                "total {}",
                seconds(now.saturating_duration_since(job.started).as_secs_f64())
            ))
            .fg(Color::DarkGray)
        };
        f.render_widget(Paragraph::new(msg), *last);
    }
}

fn draw_result(f: &mut Frame, app: &App, area: Rect) {
    let Some(job) = &app.job else { return };
    let mut lines: Vec<Line> = Vec::new();
    match &job.outcome {
        Some(Ok(r)) => {
            let headline = if let Some(l) = r.leftovers_removed {
                format!(
                    "Scrubbed: {} WAL rows, {} rows nothing pointed to, {} index(es) rebuilt.",
                    count(r.rows_deleted),
                    count(l.total()),
                    r.indexes.len()
                )
            } else if r.rows_deleted == 0 && !r.indexes.is_empty() {
                format!("Rebuilt {} index(es).", r.indexes.len())
            } else {
                format!("Pruned {} rows.", count(r.rows_deleted))
            };
            lines.push(Line::from(headline.fg(Color::Green).bold()));
            lines.push(Line::from(""));
            lines.push(Line::from(format!(
                "  chroma.sqlite3   {:>12} -> {:>12}   ({})",
                bytes(r.sqlite_bytes_before),
                bytes(r.sqlite_bytes_after),
                delta(r.sqlite_bytes_before, r.sqlite_bytes_after)
            )));
            lines.push(Line::from(format!(
                "  whole dir        {:>12} -> {:>12}   ({})",
                bytes(r.dir_bytes_before),
                bytes(r.dir_bytes_after),
                delta(r.dir_bytes_before, r.dir_bytes_after)
            )));
            lines.push(Line::from(match (&r.backup_dir, &r.backup) {
                (Some(b), _) | (None, Some(b)) => format!("  backup           {}", b.display()),
                (None, None) => "  backup           none".into(),
            }));
            // The truth about the disk: what the filesystem gained or lost, and what the
            // backup keeps allocated until it is deleted.
            for l in crate::report::disk::report_disk_text(r).lines() {
                lines.push(Line::from(format!("  {l}")));
            }
            lines.push(Line::from(""));
            for t in &r.topics {
                let name = t
                    .collection
                    .as_ref()
                    .map(|(_, n)| n.clone())
                    .unwrap_or_else(|| "(orphan)".into());
                lines.push(Line::from(format!(
                    "  {:<24} {:>10} rows deleted (bound {})",
                    name,
                    count(t.rows_deleted),
                    t.bound.map(|b| b.to_string()).unwrap_or_else(|| "-".into())
                )));
            }
            lines.extend(super::views::indexes::result_lines(r));
            lines.push(Line::from(""));
            lines.push(Line::from(format!("  steps: {}", r.steps_summary())));
            for n in &r.notes {
                lines.push(Line::from(format!("  note: {n}")));
            }
        }
        Some(Err(e)) => {
            lines.push(Line::from(
                format!("The prune stopped: {}", e.error)
                    .fg(Color::Red)
                    .bold(),
            ));
            lines.push(Line::from(""));
            lines.push(Line::from(state_sentence(e)));
            if let Some(b) = &e.backup {
                lines.push(Line::from(format!("Backup: {}", b.display())));
            }
        }
        None => lines.push(Line::from("…")),
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" result ")),
        area,
    );
}

/// The status line and the keys under the table, the keys wrapped to the terminal.
fn footer(app: &App) -> Paragraph<'static> {
    let mut spans: Vec<Span> = Vec::new();
    let searching = app
        .wal_rows
        .as_ref()
        .filter(|_| app.view == View::Rows)
        .and_then(super::views::rows::search_line)
        .or_else(|| {
            app.records
                .as_ref()
                .filter(|_| app.view == View::Records)
                .and_then(super::views::records::search_line)
        });
    if let Some(line) = searching {
        spans.extend(line.spans);
    } else if app.filter_editing {
        spans.push(Span::styled(
            format!("filter: {}▏", app.filter),
            Style::new().fg(Color::Yellow),
        ));
        spans.push(Span::raw("   Enter keep · Esc clear"));
    } else {
        for (k, what) in keymap::footer(app.view) {
            spans.push(Span::styled(k, Style::new().fg(Color::Cyan).bold()));
            spans.push(Span::raw(format!(" {what}  ")));
        }
    }
    let (rows, b) = app.marked_totals();
    let rows_message = app
        .wal_rows
        .as_ref()
        .filter(|_| app.view == View::Rows)
        .and_then(|v| v.message.clone())
        .or_else(|| {
            app.records
                .as_ref()
                .filter(|_| app.view == View::Records)
                .and_then(|v| v.message.clone())
        });
    let status = match rows_message.as_ref().or(app.message.as_ref()) {
        Some(m) => Line::from(m.clone()).fg(Color::Yellow),
        None if app.view == View::Main => Line::from(format!(
            "marked: {} collection(s), {} rows, ~{}",
            app.marked.len(),
            count(rows),
            bytes(b)
        )),
        None => Line::from(""),
    };
    Paragraph::new(vec![status, Line::from(spans)]).wrap(Wrap { trim: false })
}
