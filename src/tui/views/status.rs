//! A collection's status in the table's last column, fitted to the room it has: the whole
//! sentence where it fits, else a short form of the common ones, else cut with "…". The
//! segments pane (Enter) always says it whole.

use unicode_width::UnicodeWidthChar;
use unicode_width::UnicodeWidthStr;

/// Short forms of the statuses that every dir shows, longest first where one starts another.
const SHORT: &[(&str, &str)] = &[
    ("vector index not yet persisted", "not persisted"),
    (
        "metadata segment has recorded no max_seq_id yet",
        "no position yet",
    ),
    ("collection deleted: all rows may go", "deleted: may go"),
    ("checking its folders…", "checking…"),
];

/// `text` in at most `width` columns (a damaged collection's reason is cut, not replaced: its
/// first words say the most).
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    // A truth note comes first ("412 records unreachable by search · ok"): its number first.
    let text = text.replace(" records unreachable by search", " unreachable");
    if text.width() <= width {
        return text;
    }
    for (long, short) in SHORT {
        if let Some(at) = text.find(long) {
            let s = format!("{}{short}{}", &text[..at], &text[at + long.len()..]);
            if s.width() <= width {
                return s;
            }
            return cut(&s, width);
        }
    }
    cut(&text, width)
}

/// The first columns of `s` that fit in `width` with a "…" after them.
fn cut(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_shortens_or_cuts() {
        assert_eq!(fit("ok", 10), "ok");
        assert_eq!(fit("vector index not yet persisted", 20), "not persisted");
        assert_eq!(
            fit("412 records unreachable by search · ok", 20),
            "412 unreachable · ok"
        );
        assert_eq!(
            fit(
                "DAMAGED: segment 3ed21282: index_metadata.pickle is cut",
                16
            ),
            "DAMAGED: segmen…"
        );
        let c = fit("a status nobody shortened, long enough", 10);
        assert_eq!(c.width(), 10);
        assert!(c.ends_with('…'));
    }
}
