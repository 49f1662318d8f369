//! A scrub's plan and report, as text and `--json`: what deleted data goes, what stays and
//! why, and where the backup that holds all of it is.

use std::path::Path;

use serde_json::{json, Value};

use crate::chroma::Snapshot;
use crate::jobs::compact::IndexPlan;
use crate::jobs::prune::Report;
use crate::jobs::scrub::ScrubPlan;
use crate::units::{bytes, count};

fn indexes_json(indexes: &IndexPlan) -> Value {
    json!(indexes
        .indexes
        .iter()
        .map(|i| json!({
            "collection": i.collection,
            "segment": i.segment,
            "space": i.space.key(),
            "elements": i.elements,
            "deleted_vectors": i.ghosts,
        }))
        .collect::<Vec<_>>())
}

/// `--dry-run --json`.
pub fn plan_json(
    snap: &Snapshot,
    plan: &ScrubPlan,
    indexes: &IndexPlan,
    backup: Option<&Path>,
) -> Value {
    let p = &plan.plan;
    json!({
        "dry_run": true,
        "persist_dir": snap.persist_dir.display().to_string(),
        "wal_rows": p.rows(),
        "topics": p.effective().map(|t| json!({
            "topic": t.topic,
            "collection": t.collection.as_ref().map(|(_, n)| n.clone()),
            "rows": t.rows,
            "prune_bound": t.bound,
        })).collect::<Vec<_>>(),
        "leftovers": p.scrub.flatten().unwrap_or_default(),
        "free_bytes": snap.free_bytes(),
        "sqlite_bytes": snap.sizes.sqlite,
        "indexes": indexes_json(indexes),
        "index_notes": indexes.notes,
        "orphan_dirs": p.dirs.iter().map(|d| json!({"name": d.name, "bytes": d.bytes})).collect::<Vec<_>>(),
        "kept": plan.kept,
        "notes": p.notes,
        "backup_dir": backup.map(|b| b.display().to_string()),
    })
}

/// The plan as text: what goes, then what stays.
pub fn plan_text(
    snap: &Snapshot,
    plan: &ScrubPlan,
    indexes: &IndexPlan,
    backup: Option<&Path>,
) -> String {
    let p = &plan.plan;
    let l = p.scrub.flatten().unwrap_or_default();
    let mut s = format!("Scrub {}\n", snap.persist_dir.display());
    s += &format!(
        "  WAL rows Chroma no longer needs: {} in {} topic(s)\n",
        count(p.rows()),
        p.effective().count()
    );
    s += &format!(
        "  rows nothing points to: {} record(s), {} metadata, {} full-text, {} collection/segment metadata\n",
        count(l.records),
        count(l.metadata),
        count(l.fulltext),
        count(l.catalog)
    );
    s += &format!(
        "  chroma.sqlite3 ({}) written anew: {} of free pages and every page's unused space\n",
        bytes(snap.sizes.sqlite),
        bytes(snap.free_bytes())
    );
    let ghosts: u64 = indexes.indexes.iter().filter_map(|i| i.ghosts).sum();
    s += &format!(
        "  vector indexes rebuilt: {} ({} deleted vector(s) on disk, and the leftover bytes of every file)\n",
        indexes.indexes.len(),
        count(ghosts)
    );
    for i in &indexes.indexes {
        s += &format!(
            "    {} ({}): {} element(s), {} deleted\n",
            i.collection,
            i.space.key(),
            count(i.elements),
            i.ghosts.map_or("?".into(), count)
        );
    }
    if !p.dirs.is_empty() {
        s += &format!(
            "  orphan index folders: {} ({})\n",
            p.dirs.len(),
            bytes(p.dir_bytes_total())
        );
    }
    if plan.kept.is_empty() && indexes.notes.is_empty() {
        s += "  stays: nothing of deleted data that chroma-wal can see\n";
    }
    s += &kept_lines(plan, "stays");
    for n in &indexes.notes {
        s += &format!("  stays: {n}\n");
    }
    s += &match backup {
        Some(b) => format!(
            "  backup: {} (it will hold everything this scrub removes)\n",
            b.display()
        ),
        None => "  backup: none (--no-backup)\n".into(),
    };
    s
}

/// What stays of deleted data, one line per collection, under `label`.
fn kept_lines(plan: &ScrubPlan, label: &str) -> String {
    plan.kept
        .iter()
        .map(|k| {
            format!(
                "  {label}: {}: {} WAL row(s) of deleted records, {}\n",
                k.collection,
                count(k.wal_rows),
                k.why
            )
        })
        .collect()
}

/// `--json` after a scrub: the prune's report (its `indexes_rebuilt` and
/// `orphan_dirs_removed` included), with what only a scrub does.
pub fn report_json(r: &Report, plan: &ScrubPlan) -> Value {
    let mut v = super::report_json(r);
    v["leftovers_removed"] = json!(r.leftovers_removed.unwrap_or_default());
    v["kept"] = json!(plan.kept);
    v["delete_backup"] = json!(r
        .backup_dir
        .as_ref()
        .map(|b| format!("rm -rf '{}'", b.display())));
    v
}

/// A finished scrub as text.
pub fn report_text(r: &Report, plan: &ScrubPlan) -> String {
    let l = r.leftovers_removed.unwrap_or_default();
    let mut s = format!(
        "Scrubbed {}: {} WAL row(s), {} row(s) nothing pointed to, {} index(es) rebuilt ({} deleted vector(s)), {} orphan folder(s)\n",
        r.persist_dir.display(),
        count(r.rows_deleted),
        count(l.total()),
        r.indexes.len(),
        count(r.indexes.iter().filter_map(|i| i.plan.ghosts).sum()),
        r.dirs_removed.len()
    );
    s += &format!(
        "  chroma.sqlite3: {} -> {}; the dir: {} -> {}\n",
        bytes(r.sqlite_bytes_before),
        bytes(r.sqlite_bytes_after),
        bytes(r.dir_bytes_before),
        bytes(r.dir_bytes_after)
    );
    s += &kept_lines(plan, "still on disk");
    for n in &r.notes {
        s += &format!("  note: {n}\n");
    }
    s += &format!("  steps: {}\n", r.steps_summary());
    match &r.backup_dir {
        Some(b) => {
            s += &format!(
                "The backup {} holds everything this scrub removed (`chroma-wal restore` puts it back).\n\
                 To be rid of it too: rm -rf '{}'\n",
                b.display(),
                b.display()
            );
        }
        None => s += "No backup was kept (--no-backup).\n",
    }
    s
}
