//! The disk side of a prune, for both front ends' batch output: the orphan folders it
//! reclaims, what it does to the filesystem's free space, and the backups that keep space
//! allocated. (Split from report.rs, which holds the WAL side.)

use serde_json::{json, Value};

use crate::backup::BackupInfo;
use crate::jobs::prune::job::Report;
use crate::jobs::prune::Plan;
use crate::units::{bar_cells, bytes, count, delta, one_line};

/// `orphan_dirs[]` of a plan.
pub fn plan_dirs_json(plan: &Plan) -> Value {
    json!(plan
        .dirs
        .iter()
        .map(|d| json!({"name": d.name, "bytes": d.bytes}))
        .collect::<Vec<_>>())
}

/// The plan's folders and its effect on free space, as text lines.
pub fn plan_disk_text(plan: &Plan, backup: bool) -> String {
    let mut out = String::new();
    for d in &plan.dirs {
        out += &format!("Orphan folder   {}  {}\n", d.name, bytes(d.bytes));
    }
    out += &format!("Disk            {}\n", disk_sentence(plan, backup));
    out
}

/// "frees ~405 MiB once the backup is deleted; until then the disk has ~200 MiB less free".
pub fn disk_sentence(plan: &Plan, backup: bool) -> String {
    let (now, later) = plan.disk_effect(backup);
    if !backup {
        return format!("frees ~{} (no backup)", bytes(later));
    }
    let until = if now < 0 {
        format!(
            "until then the disk has ~{} less free",
            bytes(now.unsigned_abs())
        )
    } else {
        "until then free space stays about the same".to_string()
    };
    format!(
        "frees ~{} once the backup is deleted; {until}",
        bytes(later)
    )
}

/// The report's disk keys.
pub fn report_disk_json(r: &Report, v: &mut Value) {
    v["orphan_dirs_removed"] = json!(r
        .dirs_removed
        .iter()
        .map(|d| json!({
            "name": d.name,
            "bytes": d.bytes,
            "moved_to": d.moved_to.as_ref().map(|p| p.display().to_string()),
        }))
        .collect::<Vec<_>>());
    v["indexes_rebuilt"] = json!(r
        .indexes
        .iter()
        .map(|i| json!({
            "collection": i.plan.collection,
            "segment": i.plan.segment,
            "ghosts_removed": i.rebuilt.ghosts_removed,
            "restored": i.rebuilt.restored,
            "elements_after": i.rebuilt.elements_after,
        }))
        .collect::<Vec<_>>());
    v["fs_free_before"] = json!(r.fs_free_before);
    v["fs_free_after"] = json!(r.fs_free_after);
    v["backup_dir"] = json!(r.backup_dir.as_ref().map(|p| p.display().to_string()));
    v["backup_bytes"] = json!(r.backup_bytes);
}

/// The report's disk lines: folders, free space, and what deleting the backup gives back.
pub fn report_disk_text(r: &Report) -> String {
    let mut out = String::new();
    for d in &r.dirs_removed {
        out += &format!(
            "Folder          {} ({}) {}\n",
            d.name,
            bytes(d.bytes),
            match &d.moved_to {
                Some(p) => format!("moved to {}", p.display()),
                None => "deleted".into(),
            }
        );
    }
    if let (Some(a), Some(b)) = (r.fs_free_before, r.fs_free_after) {
        out += &format!(
            "Free space      {} -> {} ({})\n",
            bytes(a),
            bytes(b),
            delta(a, b)
        );
    }
    if let (Some(dir), Some(kept)) = (&r.backup_dir, r.backup_bytes) {
        out += &format!(
            "Backup holds    {} on disk; deleting it gives them back: rm -r '{}' (explorer: m, then D); to undo the prune instead: chroma-wal restore {}\n",
            bytes(kept),
            dir.display(),
            r.persist_dir.display()
        );
    }
    out
}

/// `backups[]` of `info --json`.
pub fn backups_json(list: &[BackupInfo]) -> Value {
    json!(list
        .iter()
        .map(|b| json!({
            "path": b.folder.display().to_string(),
            "created": b.manifest.created,
            "method": b.manifest.method,
            "bytes": b.bytes,
            "allocated_bytes": b.allocated,
            "dirs": b.manifest.dirs.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}

/// The backups, as `info` text lines.
pub fn backups_text(list: &[BackupInfo]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nBackups (newest first; chroma-wal restore puts one back)\n");
    for b in list {
        out += &format!(
            "  {}  {}  {} on disk ({} of files)  {}\n",
            b.manifest.created,
            b.manifest.method,
            bytes(b.allocated),
            bytes(b.bytes),
            b.folder.display()
        );
    }
    out
}

/// `space` of `info --deep`.
pub fn space_json(m: &crate::chroma::space::SpaceMap) -> Value {
    json!({
        "tables": m.tables.iter().map(|t| json!({"name": t.name, "bytes": t.bytes})).collect::<Vec<_>>(),
        "free_bytes": m.free_bytes,
        "side_files_bytes": m.side_bytes,
        "index_dirs_bytes": m.index_dirs_bytes,
        "orphan_dirs_bytes": m.orphan_dirs_bytes,
        "other_bytes": m.other_bytes,
        "dir_bytes": m.dir_bytes,
        "estimated": m.estimated,
        "deleted_data": deleted_json(&m.deleted, m),
    })
}

/// Deleted data still on disk that no record owns (`scrub` removes it).
fn deleted_json(
    d: &crate::chroma::space::DeletedData,
    m: &crate::chroma::space::SpaceMap,
) -> Value {
    json!({
        "free_bytes": m.free_bytes,
        "orphan_rows": d.rows,
        "orphan_dirs_bytes": m.orphan_dirs_bytes,
        "index_leftover_bytes": d.index_bytes(),
        "index_text_runs": d.text_runs(),
        "index": d.index.iter().map(|(seg, name, l)| json!({
            "segment": seg, "collection": name, "bytes": l.bytes, "text_runs": l.text_runs,
        })).collect::<Vec<_>>(),
    })
}

/// What of deleted data is still on disk, as text lines (empty when nothing is).
pub fn deleted_text(m: &crate::chroma::space::SpaceMap) -> String {
    let d = &m.deleted;
    let rows = d.rows.unwrap_or_default();
    if m.free_bytes == 0 && rows.total() == 0 && d.index_bytes() == 0 && m.orphan_dirs_bytes == 0 {
        return String::new();
    }
    let mut out = String::from(
        "\nDeleted data still on disk, no record owns it (chroma-wal scrub --all removes it)\n",
    );
    if m.free_bytes > 0 {
        out += &format!(
            "  free pages in chroma.sqlite3        {:>11}  old rows stay readable in them\n",
            bytes(m.free_bytes)
        );
    }
    if rows.total() > 0 {
        out += &format!(
            "  rows nothing points to              {:>11}  {} record(s), {} metadata, {} full-text, {} collection/segment metadata\n",
            count(rows.total()),
            count(rows.records),
            count(rows.metadata),
            count(rows.fulltext),
            count(rows.catalog)
        );
    }
    if d.rows.is_none() {
        out += "  rows nothing points to              not counted on a live dir\n";
    }
    for (_, name, l) in &d.index {
        out += &format!(
            "  {:<35} {:>11}  leftover bytes in its index files{}\n",
            one_line(name, 35),
            bytes(l.bytes),
            if l.text_runs > 0 {
                format!(", {} run(s) of readable text", count(l.text_runs))
            } else {
                String::new()
            }
        );
    }
    if m.orphan_dirs_bytes > 0 {
        out += &format!(
            "  orphan index folders                {:>11}  vectors of deleted collections\n",
            bytes(m.orphan_dirs_bytes)
        );
    }
    out
}

/// A bar of `width` cells for `part` of `whole`.
pub fn bar(part: u64, whole: u64, width: usize) -> String {
    let n = bar_cells(part, whole, width);
    format!("{}{}", "█".repeat(n), "·".repeat(width - n))
}

/// The space map as text lines: the eight largest b-trees, the rest summed, then the rest of
/// the dir.
pub fn space_text(m: &crate::chroma::space::SpaceMap, wal_prunable: u64) -> String {
    let whole = m.dir_bytes.max(1);
    let mut out = String::from("\nWhere the space goes (whole dir; --json lists every b-tree)\n");
    let mut line = |label: &str, b: u64, note: &str| {
        out += &format!(
            "  {:<36} {:>11}  {}  {note}\n",
            one_line(label, 36),
            bytes(b),
            bar(b, whole, 30)
        );
    };
    for t in m.tables.iter().take(8) {
        let note = if t.name == "embeddings_queue" && wal_prunable > 0 {
            format!("the WAL; ~{} prunable", bytes(wal_prunable))
        } else {
            String::new()
        };
        line(&t.name, t.bytes, &note);
    }
    let rest: u64 = m.tables.iter().skip(8).map(|t| t.bytes).sum();
    if rest > 0 {
        line(
            &format!("{} more tables and indexes", m.tables.len() - 8),
            rest,
            "",
        );
    }
    // What gives the bytes back, said only when there are some.
    let reclaimable = |bytes: u64, how: &'static str| if bytes > 0 { how } else { "" };
    line(
        "free pages in chroma.sqlite3",
        m.free_bytes,
        reclaimable(m.free_bytes, "reclaimable (compaction)"),
    );
    line("journals and leftovers", m.side_bytes, "");
    line("index folders", m.index_dirs_bytes, "");
    line(
        "orphan folders",
        m.orphan_dirs_bytes,
        reclaimable(m.orphan_dirs_bytes, "reclaimable (prune --orphan-dirs)"),
    );
    line("everything else", m.other_bytes, "");
    out
}
