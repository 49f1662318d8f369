//! Text tables and JSON for the batch front end. Both are built from the same engine values:
//! `info` as text and the plan and report here, `info --json` in [`info`], the disk side
//! (folders, free space, backups, the space map) in [`disk`], long tables in [`table`]. Only
//! the front ends use this room; the engine never does.

pub mod compact;
pub mod disk;
pub mod info;
pub mod scrub;
pub mod table;
pub mod truth;

use std::io::Write;

use comfy_table::{Cell, CellAlignment};
use serde_json::{json, Value};

use crate::chroma::{Collection, Segment, Snapshot, TopicOwner, WalStats};
use crate::jobs::preflight::SpaceCheck;
use crate::jobs::prune::job::{JobError, Report};
use crate::jobs::prune::Plan;
use crate::units::{bytes, count, delta, seconds};
use table::Columns;

fn opt<T: serde::Serialize>(v: Option<T>) -> Value {
    v.map(|x| json!(x)).unwrap_or(Value::Null)
}

/// The per-collection WAL numbers: rows, prunable, held, prunable bytes, topics.
pub struct CollectionWal<'a> {
    pub rows: u64,
    pub prunable: u64,
    pub prunable_bytes: u64,
    pub topics: Vec<&'a str>,
}

pub fn collection_wal<'a>(wal: &'a WalStats, idx: usize) -> CollectionWal<'a> {
    let mut c = CollectionWal {
        rows: 0,
        prunable: 0,
        prunable_bytes: 0,
        topics: Vec::new(),
    };
    let mut ts: Vec<_> = wal.of_collection(idx).collect();
    ts.sort_by_key(|t| std::cmp::Reverse(t.rows));
    for t in ts {
        c.rows += t.rows;
        c.prunable += t.prunable;
        c.prunable_bytes += t.prunable_bytes;
        c.topics.push(&t.topic);
    }
    c
}

/// The topic shown for a collection: the busiest WAL topic it owns, else the stored or
/// default one.
pub fn main_topic(c: &Collection, cw: &CollectionWal<'_>) -> String {
    cw.topics
        .first()
        .map(|s| s.to_string())
        .unwrap_or_else(|| c.default_topic())
}

fn right(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

fn purge_words(p: Option<bool>) -> &'static str {
    match p {
        Some(true) => "on (Chroma purges the WAL itself once segments are flushed)",
        Some(false) => "off (the WAL grows until pruned)",
        None => "not available (this Chroma version keeps the WAL forever)",
    }
}

/// `info` as text.
/// `info` as text, written as it is made: a dir of 20,000 collections has 60,000 table rows.
pub fn write_info_text(
    out: &mut dyn Write,
    snap: &Snapshot,
    wal: &WalStats,
) -> std::io::Result<()> {
    let mut text = String::new();
    let migr = snap
        .schema
        .migrations
        .iter()
        .map(|(d, v)| format!("{d} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let side = [
        (
            if snap.sizes.journal_hot {
                "HOT journal"
            } else {
                "retired journal"
            },
            snap.sizes.journal,
        ),
        ("-wal", snap.sizes.wal),
        ("-shm", snap.sizes.shm),
    ]
    .iter()
    .filter_map(|(n, s)| s.map(|b| format!("{n} {}", bytes(b))))
    .collect::<Vec<_>>();
    text += &format!("Persist dir     {}\n", snap.persist_dir.display());
    text += &format!("Chroma era      {} ({migr})\n", snap.schema.era.label());
    text += &format!("Opens           {}\n", snap.schema.releases_sentence());
    text += &format!(
        "chroma.sqlite3  {}{}\n",
        bytes(snap.sizes.sqlite),
        if side.is_empty() {
            String::new()
        } else {
            format!("  (+ {})", side.join(", "))
        }
    );
    text += &format!("Whole dir       {}\n", bytes(snap.sizes.dir));
    if snap.free_bytes() > 0 {
        text += &format!(
            "Free inside     {} (given back by a compaction)\n",
            bytes(snap.free_bytes())
        );
    }
    text += &format!(
        "WAL             {} rows, {} prunable (~{})\n",
        count(wal.rows()),
        count(wal.prunable()),
        bytes(wal.prunable_bytes())
    );
    text += &format!(
        "Auto purge      {}\n",
        purge_words(snap.automatically_purge)
    );
    let procs = if !snap.holders.checked {
        "could not be checked on this system".to_string()
    } else if snap.holders.list.is_empty() {
        "none hold the dir open".to_string()
    } else {
        format!("IN USE by {}", snap.holders.describe())
    };
    text += &format!("Processes       {procs}\n");
    for b in snap.prune_blockers() {
        text += &format!("Prune refused   {b}\n");
    }

    out.write_all(text.as_bytes())?;

    let orphans: Vec<&crate::chroma::TopicStats> = wal.orphans().collect();
    let n = snap.collections.len();
    writeln!(out, "\nCollections ({n})")?;
    let collection_row = |i: usize| -> Vec<String> {
        let Some(c) = snap.collections.get(i) else {
            let o = orphans[i - n];
            return vec![
                "(orphan topic)".into(),
                o.topic.clone(),
                "-".into(),
                count(o.rows),
                count(o.prunable),
                count(o.held()),
                o.bound.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                "collection deleted: every row may go".into(),
            ];
        };
        let cw = collection_wal(wal, i);
        vec![
            c.name.clone(),
            format!(
                "{}/{}",
                c.tenant.as_deref().unwrap_or("-"),
                c.database.as_deref().unwrap_or("-")
            ),
            c.dimension
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            count(cw.rows),
            count(cw.prunable),
            count(cw.rows - cw.prunable),
            c.bound
                .value()
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-".into()),
            c.status(),
        ]
    };
    table::write(
        out,
        &Columns {
            titles: &[
                "collection",
                "tenant/database",
                "dim",
                "WAL rows",
                "prunable",
                "held",
                "bound M",
                "status",
            ],
            right: &[false, false, true, true, true, true, true, false],
        },
        n + orphans.len(),
        &collection_row,
    )?;

    let segs: Vec<(&crate::chroma::Collection, &Segment)> = snap
        .collections
        .iter()
        .flat_map(|c| c.segments.iter().map(move |s| (c, s)))
        .collect();
    writeln!(out, "\nSegments")?;
    let segment_row = |i: usize| -> Vec<String> {
        let (c, seg) = segs[i];
        vec![
            c.name.clone(),
            seg.scope.clone(),
            seg.id.clone(),
            seg.max_seq_id
                .map(|v| v.to_string())
                .unwrap_or_else(|| "unknown".into()),
            seg.source.key().into(),
            seg.health.key().into(),
            index_elements(seg),
            seg.dir_bytes.map(bytes).unwrap_or_else(|| "-".into()),
        ]
    };
    table::write(
        out,
        &Columns {
            titles: &[
                "collection",
                "scope",
                "segment",
                "max_seq_id",
                "from",
                "health",
                "index elements",
                "folder",
            ],
            right: &[false, false, false, true, false, false, true, true],
        },
        segs.len(),
        &segment_row,
    )?;
    if !snap.orphan_segment_dirs.is_empty() {
        writeln!(out, "\nFolders with no segment")?;
        for o in &snap.orphan_segment_dirs {
            writeln!(out, "  {}  {}", o.name, bytes(o.bytes))?;
        }
    }
    truth::write_text(out, snap)?;
    // For each damaged index, what the repair does now comes first; the era's manual
    // procedure follows in the warnings.
    let repairs: Vec<_> = snap
        .collections
        .iter()
        .filter_map(|c| Some((c, c.repair.as_deref()?)))
        .collect();
    if !repairs.is_empty() {
        writeln!(
            out,
            "\nDamaged indexes: what compact --repair does now (a dry run)"
        )?;
        for (c, p) in repairs {
            writeln!(
                out,
                "  - {}: {}",
                c.name,
                p.sentence(&snap.persist_dir, &c.id)
            )?;
        }
    }
    if !snap.warnings.is_empty() {
        writeln!(out, "\nWarnings")?;
        for w in &snap.warnings {
            writeln!(out, "  - {w}")?;
        }
    }
    Ok(())
}

/// "340 (12 deleted) of 1,000" for a segment's index, or "-".
pub fn index_elements(seg: &Segment) -> String {
    let Some(h) = seg.index.as_ref().and_then(|f| f.parsed()) else {
        return "-".into();
    };
    let deleted = seg
        .index
        .as_ref()
        .and_then(|f| f.deleted)
        .map(|d| format!(" ({} deleted)", count(d)))
        .unwrap_or_default();
    format!(
        "{}{deleted} of {}",
        count(h.cur_element_count),
        count(h.max_elements)
    )
}

fn plan_topics_json(plan: &Plan) -> Vec<Value> {
    plan.topics
        .iter()
        .map(|t| {
            json!({
                "topic": t.topic,
                "collection": t.collection.as_ref().map(|(_, n)| n.clone()),
                "collection_id": t.collection.as_ref().map(|(id, _)| id.clone()),
                "orphan": t.is_orphan(),
                "rows_deleted": t.rows,
                "wal_rows": t.rows.max(t.wal_rows),
                "prune_bound": t.bound,
                "bytes_estimate": t.bytes,
                "note": t.note,
            })
        })
        .collect()
}

/// `prune --dry-run --json`.
pub fn plan_json(
    snap: &Snapshot,
    plan: &Plan,
    backup: Option<&std::path::Path>,
    space: &SpaceCheck,
    vacuum: bool,
) -> Value {
    json!({
        "dry_run": true,
        "persist_dir": snap.persist_dir.display().to_string(),
        "rows_deleted": plan.rows(),
        "bytes_estimate": plan.bytes(),
        "sqlite_bytes_before": plan.sqlite_bytes,
        "sqlite_bytes_after": if vacuum { plan.estimated_sqlite_after() } else { plan.sqlite_bytes },
        "sqlite_bytes_after_is_estimate": true,
        "dir_bytes_before": plan.dir_bytes,
        "dir_bytes_after": if vacuum { plan.dir_bytes.saturating_sub(plan.bytes()) } else { plan.dir_bytes },
        "backup": opt(backup.map(|p| p.display().to_string())),
        "vacuum": vacuum,
        "free_space_ok": space.ok,
        "free_space": space.summary(),
        "refusals": snap.prune_blockers(),
        "topics": plan_topics_json(plan),
        "orphan_dirs": crate::report::disk::plan_dirs_json(plan),
        "disk": crate::report::disk::disk_sentence(plan, backup.is_some()),
        "notes": plan.notes,
        "steps": [],
    })
}

/// The plan as text (dry run and confirmation).
pub fn plan_text(
    snap: &Snapshot,
    plan: &Plan,
    backup: Option<&std::path::Path>,
    space: &SpaceCheck,
    vacuum: bool,
) -> String {
    let mut t = table::table();
    t.set_header(vec![
        "collection",
        "topic",
        "bound M",
        "rows to delete",
        "of WAL rows",
        "note",
    ]);
    for p in &plan.topics {
        t.add_row(vec![
            Cell::new(p.label()),
            Cell::new(&p.topic),
            right(p.bound.map(|m| m.to_string()).unwrap_or_else(|| "-".into())),
            right(count(p.rows)),
            right(count(p.wal_rows)),
            Cell::new(p.note.as_deref().unwrap_or("")),
        ]);
    }
    let mut out = format!("Plan for {}\n{t}\n", snap.persist_dir.display());
    out += &format!(
        "Total           {} rows (~{})\n",
        count(plan.rows()),
        bytes(plan.bytes())
    );
    out += &format!(
        "chroma.sqlite3  {} now, {}{} after{}\n",
        bytes(plan.sqlite_bytes),
        if vacuum { "at most " } else { "" },
        bytes(if vacuum {
            plan.estimated_sqlite_after()
        } else {
            plan.sqlite_bytes
        }),
        if vacuum {
            " compaction"
        } else {
            " (--no-vacuum: the file keeps its size)"
        }
    );
    out += &match backup {
        Some(b) => format!("Backup          {}\n", b.display()),
        None => "Backup          NONE (--no-backup): the prune cannot be undone\n".to_string(),
    };
    out += &format!(
        "Free space      {} ({})\n",
        if space.ok { "ok" } else { "NOT ENOUGH" },
        space.summary()
    );
    for b in snap.prune_blockers() {
        out += &format!("Refused         {b}\n");
    }
    out += &crate::report::disk::plan_disk_text(plan, backup.is_some());
    for n in &plan.notes {
        out += &format!("Note            {n}\n");
    }
    out
}

/// `prune --json` after a run.
pub fn report_json(r: &Report) -> Value {
    let mut v = json!({
        "dry_run": false,
        "persist_dir": r.persist_dir.display().to_string(),
        "rows_deleted": r.rows_deleted,
        "sqlite_bytes_before": r.sqlite_bytes_before,
        "sqlite_bytes_after": r.sqlite_bytes_after,
        "dir_bytes_before": r.dir_bytes_before,
        "dir_bytes_after": r.dir_bytes_after,
        "backup": opt(r.backup.as_ref().map(|p| p.display().to_string())),
        "topics": r.topics.iter().map(|t| json!({
            "topic": t.topic,
            "collection": t.collection.as_ref().map(|(_, n)| n.clone()),
            "collection_id": t.collection.as_ref().map(|(id, _)| id.clone()),
            "orphan": t.collection.is_none(),
            "rows_deleted": t.rows_deleted,
            "prune_bound": t.bound,
        })).collect::<Vec<_>>(),
        "steps": r.steps.iter().map(|s| json!({
            "name": s.step.name(), "seconds": s.seconds, "skipped": s.skipped
        })).collect::<Vec<_>>(),
        "notes": r.notes,
        "method": r.method,
    });
    crate::report::disk::report_disk_json(r, &mut v);
    v
}

/// A finished prune as text.
pub fn report_text(r: &Report) -> String {
    let mut t = table::table();
    t.set_header(vec!["collection", "topic", "bound M", "rows deleted"]);
    for x in &r.topics {
        t.add_row(vec![
            Cell::new(
                x.collection
                    .as_ref()
                    .map(|(_, n)| n.as_str())
                    .unwrap_or("(orphan)"),
            ),
            Cell::new(&x.topic),
            right(x.bound.map(|m| m.to_string()).unwrap_or_else(|| "-".into())),
            right(count(x.rows_deleted)),
        ]);
    }
    let total: f64 = r.steps.iter().map(|s| s.seconds).sum();
    let mut out = format!(
        "Pruned {} rows from {} in {}.\n{t}\n",
        count(r.rows_deleted),
        r.persist_dir.display(),
        seconds(total)
    );
    out += &format!(
        "chroma.sqlite3  {} -> {} ({})\n",
        bytes(r.sqlite_bytes_before),
        bytes(r.sqlite_bytes_after),
        delta(r.sqlite_bytes_before, r.sqlite_bytes_after)
    );
    out += &format!(
        "Whole dir       {} -> {} ({})\n",
        bytes(r.dir_bytes_before),
        bytes(r.dir_bytes_after),
        delta(r.dir_bytes_before, r.dir_bytes_after)
    );
    out += &match (&r.backup, &r.backup_dir) {
        (_, Some(d)) | (Some(d), None) => format!(
            "Backup          {}\n                to undo: chroma-wal restore {} (stop Chroma first)\n",
            d.display(),
            r.persist_dir.display()
        ),
        (None, None) if r.method == "nothing" => {
            "Backup          none (nothing was changed)\n".to_string()
        }
        (None, None) => "Backup          none (--no-backup)\n".to_string(),
    };
    out += &format!(
        "Method          {}\n",
        match r.method {
            "copy" => "kept rows copied into a new file, renamed over the original",
            "in_place" => "DELETE, then VACUUM inside the file",
            "none" => "no WAL row selected: only folders reclaimed",
            "nothing" => "none: no selected topic has rows below its bound",
            _ => "DELETE only (--no-vacuum)",
        }
    );
    out += &crate::report::disk::report_disk_text(r);
    out += &format!("Steps           {}\n", r.steps_summary());
    for n in &r.notes {
        out += &format!("Note            {n}\n");
    }
    out
}

/// `--json` output of a failed command: still one object on stdout.
pub fn error_json(message: &str, exit_code: i32, job: Option<&JobError>) -> Value {
    json!({
        "error": message,
        "exit_code": exit_code,
        "state": job.map(|j| j.state.sentence()),
        "backup": opt(job.and_then(|j| j.backup.as_ref()).map(|p| p.display().to_string())),
    })
}

/// Owner label of a topic for progress lines.
pub fn owner_label(snap: &Snapshot, owner: TopicOwner) -> String {
    match owner {
        TopicOwner::Collection(i) => snap.collections[i].name.clone(),
        TopicOwner::Orphan => "(orphan)".into(),
    }
}
