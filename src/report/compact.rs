//! `compact`'s plan and report, as text and as the JSON contract
//! (`{persist_dir, dry_run, indexes[], unrecoverable[], backup_dir, notes[], fs_free_before,
//! fs_free_after}`). A dry run prints the same keys with the plan's estimates.

use std::path::Path;

use serde_json::{json, Value};

use crate::jobs::compact::{IndexPlan, IndexReport, IndexResult};
use crate::units::{bytes, count, seconds};

fn path(p: Option<&Path>) -> Value {
    p.map(|p| json!(p.display().to_string()))
        .unwrap_or(Value::Null)
}

/// The plan as JSON (`--dry-run --json`).
pub fn plan_json(persist_dir: &Path, plan: &IndexPlan, backup: Option<&Path>) -> Value {
    let free = crate::chroma::fsinfo::free_space(persist_dir).map(|f| f.0);
    json!({
        "persist_dir": persist_dir.display().to_string(),
        "dry_run": true,
        "indexes": plan.indexes.iter().map(|i| json!({
            "collection": i.collection,
            "collection_id": i.collection_id,
            "segment": i.segment,
            "space": i.space.key(),
            "elements_before": i.elements,
            "elements_after": i.elements_after(),
            "ghosts_removed": i.ghosts,
            "restored": i.put_back.len(),
            "norms_from_wal": i.renorm.len(),
            "direction_only": i.direction_only,
            "damaged": i.damaged,
            "bytes_before": i.bytes_before,
            "bytes_after": i.bytes_after_estimate,
            "seconds": 0.0,
        })).collect::<Vec<_>>(),
        "unrecoverable": unrecoverable(plan),
        "backup_dir": path(backup),
        "notes": plan.notes,
        "fs_free_before": free,
        "fs_free_after": free,
    })
}

/// Records missing from an index whose vector is nowhere on disk, per collection.
fn unrecoverable(plan: &IndexPlan) -> Vec<Value> {
    plan.unrecoverable
        .iter()
        .map(|(collection, count, sample)| {
            json!({
                "collection": collection,
                "ids_sample": sample,
                "count": count,
            })
        })
        .collect()
}

/// What `compact` did, as JSON.
pub fn report_json(r: &IndexReport, plan: &IndexPlan) -> Value {
    json!({
        "persist_dir": r.persist_dir.display().to_string(),
        "dry_run": false,
        "indexes": r.indexes.iter().map(|i| json!({
            "collection": i.plan.collection,
            "collection_id": i.plan.collection_id,
            "segment": i.plan.segment,
            "space": i.plan.space.key(),
            "elements_before": i.rebuilt.elements_before,
            "elements_after": i.rebuilt.elements_after,
            "ghosts_removed": i.rebuilt.ghosts_removed,
            "restored": i.rebuilt.restored,
            "norms_from_wal": i.plan.renorm.len(),
            "direction_only": i.rebuilt.norms_lost,
            "elements_cut": i.rebuilt.elements_cut,
            "bytes_before": i.plan.bytes_before,
            "bytes_after": i.bytes_after,
            "seconds": i.seconds,
            "recall_before": i.rebuilt.recall_before,
            "recall_after": i.rebuilt.recall_after,
            "recall_queries": i.rebuilt.queries,
        })).collect::<Vec<_>>(),
        "unrecoverable": unrecoverable(plan),
        "backup_dir": path(r.backup_dir.as_deref()),
        "notes": r.notes,
        "fs_free_before": r.fs_free_before,
        "fs_free_after": r.fs_free_after,
    })
}

/// The plan as text (the question, and `--dry-run`).
pub fn plan_text(plan: &IndexPlan, backup: Option<&Path>) -> String {
    let mut s = String::new();
    if plan.indexes.is_empty() {
        s.push_str("No index to rebuild.\n");
    }
    for i in &plan.indexes {
        let ghosts = i.ghosts.map_or("an unknown number of".to_string(), count);
        let back = if i.put_back.is_empty() {
            String::new()
        } else {
            format!(
                ", {} record(s) put back from the WAL",
                count(i.put_back.len() as u64)
            )
        };
        let damaged = i
            .damaged
            .as_deref()
            .map(|d| format!("; DAMAGED ({d}), rebuilt from its whole parts"))
            .unwrap_or_default();
        s.push_str(&format!(
            "  {} ({}): {} elements, {ghosts} ghost(s) to remove{back}, {} space; folder {} -> about {}{damaged}\n",
            i.collection,
            i.segment.chars().take(8).collect::<String>(),
            count(i.elements),
            i.space.key(),
            bytes(i.bytes_before),
            bytes(i.bytes_after_estimate),
        ));
    }
    match backup {
        Some(b) => s.push_str(&format!(
            "The old folders go into a backup in {} (restore puts them back).\n",
            b.display()
        )),
        None => s.push_str("No backup: the old folders are deleted (no undo).\n"),
    }
    s
}

/// One rebuilt index in words (the batch report and the explorer's result).
pub fn result_line(i: &IndexResult) -> String {
    format!(
        "{}: {} -> {} elements ({} ghosts gone, {} put back), {} -> {}, recall@10 {:.3}{}, {}",
        i.plan.collection,
        count(i.rebuilt.elements_before),
        count(i.rebuilt.elements_after),
        count(i.rebuilt.ghosts_removed),
        count(i.rebuilt.restored),
        bytes(i.plan.bytes_before),
        bytes(i.bytes_after),
        i.rebuilt.recall_after,
        i.rebuilt
            .recall_before
            .map(|b| format!(" (was {b:.3})"))
            .unwrap_or_default(),
        seconds(i.seconds),
    )
}

/// What `compact` did, as text.
pub fn report_text(r: &IndexReport) -> String {
    let mut s = String::new();
    for i in &r.indexes {
        s.push_str(&result_line(i));
        s.push('\n');
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    if let Some(b) = &r.backup_dir {
        s.push_str(&format!(
            "Backup: {} (chroma-wal restore puts the old folders back)\n",
            b.display()
        ));
    }
    s
}
