//! `chroma-wal rows`: a topic's WAL rows, oldest first, as a table or JSON Lines. Streams
//! page by page (keyset on seq_id), so memory does not grow with the topic.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use chroma_wal::chroma::rows::{self, RowState, TopicView, WalRow, PAGE};
use chroma_wal::chroma::{db, Snapshot, TopicOwner};
use chroma_wal::{units, Error};

use super::Outcome;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["collection", "topic"])))]
pub struct RowsArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// The collection whose rows to show, by name or id.
    #[arg(long, value_name = "NAME_OR_ID")]
    pub collection: Option<String>,

    /// The WAL topic whose rows to show, exactly as stored (an orphan topic, say).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,

    /// Only the rows a prune keeps (at or above the bound).
    #[arg(long, conflicts_with = "prunable")]
    pub held: bool,

    /// Only the rows a prune of this collection or topic deletes (below the bound; every
    /// row of an orphan topic). Exactly what `prune --collection`/`--topic` would take.
    #[arg(long)]
    pub prunable: bool,

    /// Stop after N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub jsonl: bool,
}

/// The topics to read: a topic as given, or a collection's (stored or computed; the WAL is
/// searched by the collection's uuid only when that topic has no rows).
fn choose(snap: &Snapshot, args: &RowsArgs) -> Result<(Vec<String>, Option<usize>), Error> {
    if let Some(t) = &args.topic {
        let owner = match snap.owner_of(t) {
            TopicOwner::Collection(i) => Some(i),
            TopicOwner::Orphan => None,
        };
        return Ok((vec![t.clone()], owner));
    }
    let name = args.collection.as_deref().unwrap_or_default();
    let i = snap.find_collection(name)?;
    Ok((vec![snap.collections[i].default_topic()], Some(i)))
}

fn search_topics(
    conn: &rusqlite::Connection,
    snap: &Snapshot,
    i: usize,
) -> Result<Vec<String>, Error> {
    let mut st = conn.prepare("SELECT DISTINCT topic FROM embeddings_queue")?;
    let all = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(all
        .into_iter()
        .filter(|t| snap.owner_of(t) == TopicOwner::Collection(i))
        .collect())
}

/// One line of the table.
fn line(r: &WalRow) -> String {
    let keys = r
        .metadata
        .as_ref()
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    let dim = r
        .vector_dim()
        .map(|d| d.to_string())
        .unwrap_or_else(|| "-".into());
    let mut doc = units::one_line(r.document.as_deref().unwrap_or(""), 40);
    if !r.malformed.is_empty() {
        doc = format!("MALFORMED: {}", r.malformed.join("; "));
    }
    format!(
        "{:>10}  {:<19}  {:<7}  {:<20}  {:<8}  {:>5}  {:<40}  {}",
        r.seq_id,
        units::one_line(r.created_at.as_deref().unwrap_or("-"), 19),
        r.operation.name(),
        units::one_line(&r.id, 20),
        r.state.key(),
        dim,
        doc,
        units::one_line(&keys, 40)
    )
}

pub fn run(args: &RowsArgs) -> Outcome {
    let fail = |e: Error| (e, None);
    let snap = Snapshot::open(&args.path).map_err(fail)?;
    let conn = db::open_read_only(&snap.sqlite_path).map_err(fail)?;
    let (mut topics, owner) = choose(&snap, args).map_err(fail)?;
    let mut view = TopicView::of(&snap, &conn, &topics).map_err(fail)?;
    // Where to start and stop (ascending): --held starts at the bound, --prunable stops there.
    let bound = view.bound;
    let start = match (args.held, bound) {
        (true, Some(b)) => b.saturating_sub(1),
        _ => i64::MIN,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let table = !args.jsonl;
    let tty = std::io::stdout().is_terminal();
    let header = format!(
        "{:>10}  {:<19}  {:<7}  {:<20}  {:<8}  {:>5}  {:<40}  {}",
        "seq_id", "created_at", "op", "id", "state", "dim", "document", "metadata keys"
    );
    let limit = args.limit.unwrap_or(u64::MAX);
    let (mut shown, mut malformed, mut cursor, mut seen_any) = (0u64, 0u64, start, false);
    'pages: loop {
        let page = rows::page_after(&conn, &view, cursor, PAGE).map_err(fail)?;
        if page.is_empty() {
            // A collection whose computed topic has no rows: its WAL may use other settings
            // for tenant and namespace; find its topics by uuid, once.
            if !seen_any && args.topic.is_none() && cursor == start {
                if let Some(i) = owner {
                    let found = search_topics(&conn, &snap, i).map_err(fail)?;
                    if !found.is_empty() && found != topics {
                        topics = found;
                        view = TopicView::of(&snap, &conn, &topics).map_err(fail)?;
                        continue 'pages;
                    }
                }
            }
            break;
        }
        seen_any = true;
        for r in &page {
            cursor = r.seq_id;
            if args.prunable && r.state == RowState::Held {
                // Ascending: every row from the first held one on is held too.
                break 'pages;
            }
            if args.held && r.state.goes() {
                continue;
            }
            if !r.malformed.is_empty() {
                malformed += 1;
            }
            if table && shown == 0 {
                let _ = writeln!(out, "{header}");
            }
            let written = if table {
                writeln!(out, "{}", line(r))
            } else {
                writeln!(out, "{}", r.to_json())
            };
            if written.is_err() {
                // The reader went away (a closed pipe): stop quietly.
                return Ok(());
            }
            shown += 1;
            if shown >= limit {
                break 'pages;
            }
        }
    }
    if owner.is_none() && args.topic.is_some() && !seen_any {
        return Err(fail(Error::Usage(format!(
            "no WAL rows have topic `{}`",
            args.topic.as_deref().unwrap_or_default()
        ))));
    }
    if table && shown == 0 {
        let _ = writeln!(out, "{header}");
    }
    let _ = out.flush();
    drop(out);
    if table && tty {
        let what = match owner {
            Some(i) => format!("collection {}", snap.collections[i].name),
            None => "orphan topic".into(),
        };
        eprintln!(
            "{} rows of {what}; bound {}",
            units::count(shown),
            bound
                .map(|b| if b == i64::MAX {
                    "none (every row may go)".to_string()
                } else {
                    b.to_string()
                })
                .unwrap_or_else(|| "unknown: every row is held".into())
        );
    }
    if malformed > 0 {
        return Err(fail(Error::failed(format!(
            "{malformed} of the rows shown are malformed (marked MALFORMED, or \"malformed\" in JSON)"
        ))));
    }
    Ok(())
}
