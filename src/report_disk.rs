//! The disk side of a prune, for both front ends' batch output: the orphan folders it
//! reclaims, what it does to the filesystem's free space, and the backups that keep space
//! allocated. (Split from report.rs, which holds the WAL side.)

use serde_json::{json, Value};

use crate::prune::backups::BackupInfo;
use crate::prune::job::Report;
use crate::prune::Plan;
use crate::units::{bytes, delta};

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
            "Backup holds    {} on disk; deleting it gives them back: rm -r '{}' (undo instead: chroma-wal restore {})\n",
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
