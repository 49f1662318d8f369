//! The `?` overlay: every key, the current view's first, the others grouped by view, in a
//! box that scrolls when the terminal is shorter than the list.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::app::{Action, View};
use crate::tui::keymap::{self, Binding};

/// The overlay's state: open or not, and how far it is scrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Help {
    pub open: bool,
    pub scroll: u16,
}

/// What an action does while the overlay is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It scrolled (or did nothing); the overlay stays.
    Stay,
    /// The overlay closed.
    Closed,
    /// Quit the explorer.
    Quit,
}

impl Help {
    pub fn open(&mut self) {
        *self = Help {
            open: true,
            scroll: 0,
        };
    }

    /// Moving keys scroll; `q` quits; any other key closes the overlay.
    pub fn update(&mut self, action: Action) -> Outcome {
        let page = 10;
        match action {
            Action::Up => self.scroll = self.scroll.saturating_sub(1),
            Action::Down => self.scroll = self.scroll.saturating_add(1),
            Action::PageUp => self.scroll = self.scroll.saturating_sub(page),
            Action::PageDown => self.scroll = self.scroll.saturating_add(page),
            Action::Top => self.scroll = 0,
            Action::Bottom => self.scroll = u16::MAX,
            Action::Quit => {
                self.open = false;
                return Outcome::Quit;
            }
            _ => {
                self.open = false;
                return Outcome::Closed;
            }
        }
        Outcome::Stay
    }
}

/// The views in the order their groups are listed after the current one.
const ORDER: &[View] = &[
    View::Main,
    View::Rows,
    View::Records,
    View::Space,
    View::Confirm,
    View::Running,
    View::Result,
];

fn name(v: View) -> &'static str {
    match v {
        View::Main => "the collections table",
        View::Rows => "the WAL rows view (w)",
        View::Records => "the records view (e)",
        View::Space => "the space map (m)",
        View::Confirm => "the confirm dialog",
        View::Running => "while a prune runs",
        View::Result => "the result",
    }
}

fn key_line(b: &Binding, width: u16) -> Vec<Line<'static>> {
    let label = format!("  {:<8}", b.label);
    // The description takes the rest of the line and wraps under itself: at 80 columns the
    // help says everything it says at 120.
    let indent = label.chars().count();
    let room = (width as usize).saturating_sub(indent).max(20);
    let mut out = Vec::new();
    for (i, part) in textwrap::wrap(b.help, room).into_iter().enumerate() {
        let head = if i == 0 {
            Span::styled(label.clone(), Style::new().fg(Color::Cyan))
        } else {
            Span::raw(" ".repeat(indent))
        };
        out.push(Line::from(vec![head, Span::raw(part.into_owned())]));
    }
    out
}

/// Every line of the overlay for `current`, `width` columns inside the box.
pub fn lines(current: View, width: u16) -> Vec<Line<'static>> {
    let heading = |t: String| Line::from(t.bold());
    let mut out = vec![
        heading(format!("Keys in {}", name(current))),
        Line::from(""),
    ];
    let in_view = |v: View| {
        keymap::BINDINGS
            .iter()
            .filter(move |b| b.views.contains(&v))
    };
    // This help and quit first: on a short terminal they are on the first screen.
    let general = |b: &&Binding| matches!(b.action, Action::Help | Action::Quit);
    out.extend(
        in_view(current)
            .filter(general)
            .flat_map(|b| key_line(b, width)),
    );
    out.extend(
        in_view(current)
            .filter(|b| !general(b))
            .flat_map(|b| key_line(b, width)),
    );
    for &v in ORDER.iter().filter(|&&v| v != current) {
        out.push(Line::from(""));
        out.push(heading(format!("In {}", name(v))).fg(Color::DarkGray));
        out.extend(in_view(v).flat_map(|b| key_line(b, width)));
    }
    out.push(Line::from(""));
    out.push(Line::from(
        "  ↑/↓, PgUp/PgDn scroll this help; q quits; any other key closes it".fg(Color::DarkGray),
    ));
    out
}

/// Draw the overlay over `area`, scrolled as `help` says (kept within the list).
pub fn draw(f: &mut Frame, help: &Help, current: View, area: Rect) {
    let w = area.width.min(96);
    let inner_w = w.saturating_sub(2);
    let all = lines(current, inner_w);
    let h = (all.len() as u16).saturating_add(2).min(area.height);
    let r = super::super::ui::centered(area, w, h);
    let visible = h.saturating_sub(2);
    let most = (all.len() as u16).saturating_sub(visible);
    let scroll = help.scroll.min(most);
    let title = if most > 0 {
        format!(
            " help · {}–{} of {} ",
            scroll + 1,
            scroll + visible,
            all.len()
        )
    } else {
        " help ".to_string()
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(all)
            .scroll((scroll, 0))
            .block(Block::bordered().title(title)),
        r,
    );
}
