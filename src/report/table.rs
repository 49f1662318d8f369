//! Text tables of any length. Up to a screenful of rows is one comfy table, wrapped to the
//! terminal as before. A longer one (20,000 collections make 20,000 rows, and 40,000 segment
//! rows) is drawn in chunks that share their column widths and borders, so it reads as one
//! table while only one chunk of cells is held at a time: a single table of all of them held
//! about 150 MB of cells.

use std::io::{self, IsTerminal, Write};

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{
    Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, TableComponent, Width,
};
use unicode_width::UnicodeWidthStr;

/// Rows per chunk of a long table.
pub const CHUNK: usize = 1000;

/// A table's columns: titles, and which are aligned right.
pub struct Columns<'a> {
    pub titles: &'a [&'a str],
    pub right: &'a [bool],
}

/// The table the reports draw: borders only, wrapped to the terminal when printing to one.
pub fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    // Wrap to the terminal only when printing to one; piped output keeps whole lines.
    if io::stdout().is_terminal() {
        t.set_content_arrangement(ContentArrangement::Dynamic);
        if let Ok((w, _)) = crossterm::terminal::size() {
            t.set_width(w.max(60));
        }
    }
    t
}

fn cells(cols: &Columns<'_>, row: Vec<String>) -> Vec<Cell> {
    row.into_iter()
        .enumerate()
        .map(|(i, s)| {
            let c = Cell::new(s);
            if cols.right.get(i).copied().unwrap_or(false) {
                c.set_alignment(CellAlignment::Right)
            } else {
                c
            }
        })
        .collect()
}

/// Write a table of `n` rows, `row(i)` giving row `i`'s cells, then a newline.
pub fn write(
    out: &mut dyn Write,
    cols: &Columns<'_>,
    n: usize,
    row: &dyn Fn(usize) -> Vec<String>,
) -> io::Result<()> {
    write_chunked(out, cols, n, row, CHUNK)
}

/// As [`write`], with the chunk size given (the tests draw a long table in small chunks).
pub fn write_chunked(
    out: &mut dyn Write,
    cols: &Columns<'_>,
    n: usize,
    row: &dyn Fn(usize) -> Vec<String>,
    chunk: usize,
) -> io::Result<()> {
    let chunk = chunk.max(1);
    if n <= chunk {
        let mut t = table();
        t.set_header(cols.titles.to_vec());
        for i in 0..n {
            t.add_row(cells(cols, row(i)));
        }
        return writeln!(out, "{t}");
    }
    // Every row once for the widths, then again chunk by chunk: rows are cheap to make,
    // cells are not cheap to hold.
    let mut widths: Vec<usize> = cols.titles.iter().map(|t| t.width()).collect();
    for i in 0..n {
        for (w, s) in widths.iter_mut().zip(row(i)) {
            // Split as comfy-table splits a cell: on '\n' only.
            let longest = s.split('\n').map(|l| l.width()).max().unwrap_or(0);
            *w = (*w).max(longest);
        }
    }
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY);
        t.set_content_arrangement(ContentArrangement::Disabled);
        if start == 0 {
            t.set_header(cols.titles.to_vec());
        } else {
            for c in [
                TableComponent::TopLeftCorner,
                TableComponent::TopBorder,
                TableComponent::TopBorderIntersections,
                TableComponent::TopRightCorner,
            ] {
                t.remove_style(c);
            }
        }
        if end < n {
            for c in [
                TableComponent::BottomLeftCorner,
                TableComponent::BottomBorder,
                TableComponent::BottomBorderIntersections,
                TableComponent::BottomRightCorner,
            ] {
                t.remove_style(c);
            }
        }
        for i in start..end {
            t.add_row(cells(cols, row(i)));
        }
        // Content width plus the one space of padding on each side.
        let fixed = widths.iter().map(|&w| {
            ColumnConstraint::Absolute(Width::Fixed((w + 2).min(u16::MAX as usize) as u16))
        });
        t.set_constraints(fixed);
        writeln!(out, "{t}")?;
        drop(t);
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(n: usize, chunk: usize) -> String {
        let cols = Columns {
            titles: &["name", "rows", "status"],
            right: &[false, true, false],
        };
        let row = |i: usize| {
            vec![
                format!("collection-{}", "x".repeat(i % 7)),
                (i * 37 % 1001).to_string(),
                match i % 3 {
                    0 => "ok".into(),
                    1 => "vector index not yet persisted".into(),
                    // comfy-table splits a cell on '\n' only: the '\r' is part of its width.
                    _ => "two\r\nlines".into(),
                },
            ]
        };
        let mut out = Vec::new();
        write_chunked(&mut out, &cols, n, &row, chunk).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_long_table_in_chunks_reads_as_one_table() {
        // Piped (not a terminal), one table of all rows and the same rows in chunks of 7 are
        // the same text, character for character.
        let whole = draw(50, 1000);
        assert_eq!(draw(50, 7), whole);
        assert_eq!(draw(50, 1), whole);
        assert!(whole.lines().count() > 50 + 4);
        assert!(whole.contains("vector index not yet persisted"));
    }
}
