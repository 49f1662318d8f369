//! `info --deep`'s text about the index truth: one line per collection with a vector index,
//! what a query can return, the deleted vectors on disk and what a rebuild from the WAL brings
//! back, with a bar of reachable records (people would rather look than read).

use std::io::{self, Write};

use crate::chroma::truth::Rebuild;
use crate::chroma::Snapshot;
use crate::units::{bytes, count};

use super::table::{self, Columns};

const BAR: usize = 20;

/// Write the table, when any collection has a truth.
pub fn write_text(out: &mut dyn Write, snap: &Snapshot) -> io::Result<()> {
    let rows: Vec<usize> = snap
        .collections
        .iter()
        .enumerate()
        .filter(|(_, c)| c.truth.is_some())
        .map(|(i, _)| i)
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nIndex truth (what a query can return; rebuild = remove the folder, let Chroma replay the WAL)")?;
    let cols = Columns {
        titles: &[
            "collection",
            "records",
            "reachable",
            "",
            "unreachable",
            "deleted vectors on disk",
            "rebuild from WAL",
        ],
        right: &[false, true, true, false, true, true, false],
    };
    table::write(out, &cols, rows.len(), &|k| {
        let c = &snap.collections[rows[k]];
        let Some(t) = &c.truth else {
            return vec![c.name.clone()];
        };
        let bar = match t.in_index {
            Some(n) if t.records > 0 => {
                let full = ((n as u128 * BAR as u128) / t.records as u128) as usize;
                format!("{}{}", "█".repeat(full), "·".repeat(BAR - full.min(BAR)))
            }
            _ => String::new(),
        };
        vec![
            c.name.clone(),
            count(t.records),
            t.in_index.map(count).unwrap_or_else(|| "unknown".into()),
            bar,
            t.missing().map(count).unwrap_or_else(|| "unknown".into()),
            match (t.ghosts, t.ghost_bytes) {
                (Some(g), Some(b)) => format!("{} ({})", count(g), bytes(b)),
                _ => "unknown".into(),
            },
            match t.rebuild {
                Rebuild::Lossless => "lossless".into(),
                Rebuild::Loses(n) => format!("LOSES {}", count(n)),
                Rebuild::Unknown => "unknown".into(),
            },
        ]
    })
}
