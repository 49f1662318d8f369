//! `chroma-wal records`: a collection's records as Chroma's `get()` returns them (documents,
//! metadata, embeddings), read-only, in every era, as a table or JSON Lines. Streams page by
//! page: memory grows with the index's labels, never with the vectors.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use rayon::prelude::*;

use chroma_wal::chroma::records::{Filter, Reader, Record};
use chroma_wal::chroma::Snapshot;
use chroma_wal::jobs::prune::{Canceller, Unit};
use chroma_wal::{units, Error};

use super::{bar, Outcome};

#[derive(Debug, Args)]
pub struct RecordsArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH", default_value = "./chroma")]
    pub path: PathBuf,

    /// The collection whose records to show, by name or id.
    #[arg(long, value_name = "NAME_OR_ID")]
    pub collection: String,

    /// One JSON object per record and line: id, document, metadata, embedding, source.
    #[arg(long)]
    pub jsonl: bool,

    /// Stop after N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Leave the embeddings out (each record still says where its vector is).
    #[arg(long)]
    pub no_embeddings: bool,

    /// Only the records no query can return and no repair can bring back: their vector is
    /// nowhere on disk (not in the index, not in a WAL row). Re-add them (id, document,
    /// metadata) with your own embedding function.
    #[arg(long)]
    pub unreachable: bool,
}

/// Records per page: one short statement each.
const PAGE: usize = 1000;

pub fn run(args: &RecordsArgs, cancel: &Canceller) -> Outcome {
    let snap = Snapshot::open(&args.path).map_err(|e| (e, None))?;
    let ci = snap
        .find_collection(&args.collection)
        .map_err(|e| (e, None))?;
    let mut reader = Reader::open(&snap, ci).map_err(|e| (e, None))?;
    reader.load_vectors(&snap, ci).map_err(|e| (e, None))?;
    if let Some(p) = reader.problem() {
        eprintln!("chroma-wal: collection {}: {p}", reader.collection);
    }
    // The records whose vector is nowhere: what a repair names (`compact --repair`).
    let only: Option<std::collections::HashSet<String>> = if args.unreachable {
        let c = &snap.collections[ci];
        let dim = c
            .dimension
            .and_then(|d| usize::try_from(d).ok())
            .or_else(|| {
                c.segments
                    .iter()
                    .find_map(|s| s.index.as_ref()?.parsed())
                    .map(|h| h.dimensionality() as usize)
            })
            .unwrap_or(0);
        let found = chroma_wal::index::putback::find(&snap, ci, dim).map_err(|e| (e, None))?;
        Some(found.unrecoverable_ids.into_iter().collect())
    } else {
        None
    };
    let total = reader.count().map_err(|e| (e, None))?;
    // With --unreachable every record is read, and --limit counts the ones written.
    let total = match (&only, args.limit) {
        (None, Some(l)) => l.min(total),
        _ => total,
    };
    let mut left = args.limit.unwrap_or(u64::MAX);
    let pb = bar("records", Some(total), Unit::Rows);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let with_embeddings = !args.no_embeddings;
    let mut after = i64::MIN;
    let mut done = 0u64;
    let write_err =
        |e: std::io::Error| (Error::failed(format!("cannot write to stdout: {e}")), None);
    if !args.jsonl {
        writeln!(
            out,
            "{:<24} {:<6} {:<44} {:<36} embedding",
            "id", "source", "document", "metadata"
        )
        .map_err(write_err)?;
    }
    while done < total {
        if cancel.is_cancelled() {
            return Err((
                Error::Interrupted("cancelled; nothing was changed".into()),
                None,
            ));
        }
        let want = ((total - done) as usize).min(PAGE);
        let page = reader
            .page(after, want, &Filter::All, with_embeddings)
            .map_err(|e| (e, None))?;
        let Some(last) = page.last() else { break };
        after = last.rowid;
        done += page.len() as u64;
        let mut page: Vec<Record> = match &only {
            Some(ids) => page.into_iter().filter(|r| ids.contains(&r.id)).collect(),
            None => page,
        };
        page.truncate(usize::try_from(left).unwrap_or(usize::MAX));
        left -= page.len() as u64;
        if args.jsonl {
            // Formatting the floats is most of the work: each record on its own core.
            let lines: Vec<Vec<u8>> = page
                .par_iter()
                .map(|r| {
                    let mut b =
                        Vec::with_capacity(64 + r.embedding.as_ref().map_or(0, |e| e.len() * 22));
                    r.json_line(with_embeddings, &mut b);
                    b
                })
                .collect();
            for l in lines {
                out.write_all(&l).map_err(write_err)?;
            }
        } else {
            for r in &page {
                writeln!(out, "{}", text_line(r)).map_err(write_err)?;
            }
        }
        pb.set_position(done);
        if left == 0 {
            break;
        }
    }
    out.flush().map_err(write_err)?;
    pb.finish_and_clear();
    if !args.jsonl && std::io::stdout().is_terminal() {
        println!("{} of {} records", units::count(done), units::count(total));
    }
    Ok(())
}

/// `s` on one line, cut or padded to `n` characters.
fn cut(s: &str, n: usize) -> String {
    format!("{:<n$}", units::one_line(s, n))
}

fn text_line(r: &Record) -> String {
    let emb = match &r.embedding {
        Some(v) => format!("{} dims [{}]", v.len(), units::floats(v, 3, 4)),
        None if r.source.is_none() => "none: no query returns it".into(),
        None => "-".into(),
    };
    format!(
        "{} {:<6} {} {} {emb}",
        cut(&r.id, 24),
        r.source.map_or("-", |s| s.key()),
        cut(r.document.as_deref().unwrap_or("-"), 44),
        cut(
            &r.metadata
                .as_ref()
                .map(|m| serde_json::Value::Object(m.clone()).to_string())
                .unwrap_or_else(|| "-".into()),
            36
        ),
    )
}
