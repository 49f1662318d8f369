//! Rebuilding vector indexes without their ghosts (`compact`): the plan (which indexes, what
//! each would lose and keep) and the job that carries it out, one index at a time.
//!
//! For each index: a new folder is written beside the old one (`.<segment>.chroma-wal-new`)
//! and every file fsynced, read back and judged ([`crate::index::rebuild`]); then, with
//! no process holding the folder and chroma.sqlite3's write lock held, the two are exchanged
//! in one `renameat2(RENAME_EXCHANGE)` and the folder fsynced, so a kill at any moment leaves
//! the old index or the new one under the segment's name, never a mix and never neither. The
//! old folder then goes into the backup (`dirs/<segment>/`, recorded in the manifest's
//! `indexes` before the exchange), or is deleted with `--no-backup`. `restore` puts it back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

mod notes;
pub mod preview;
pub mod rebuilt;

use crate::backup::files::{exchange, move_dir, sync_dir};
use crate::chroma::hnsw::{self, Space};
use crate::chroma::{db, fsinfo, procs, Snapshot};
use crate::error::{Error, Result};
use crate::index::rebuild::{self, Phase, RebuildError};
use crate::jobs::runner::{Canceller, Ctx, DirState, Event, JobError, Step, Unit};
use notes::{allocated_tree, cut_parts, repaired_notes};
pub use rebuilt::{IndexResult, PlanIndex};

/// What `compact` would do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexPlan {
    pub indexes: Vec<PlanIndex>,
    /// What the plan leaves out and why.
    pub notes: Vec<String>,
    /// `--repair`: per collection, records missing from the index whose vector is nowhere on
    /// disk (collection, count, up to ten ids).
    pub unrecoverable: Vec<(String, u64, Vec<String>)>,
}

impl IndexPlan {
    /// Count and name the records of `collection` whose vector is nowhere on disk.
    fn name_unrecoverable(&mut self, collection: &str, count: u64, sample: &[String]) {
        if count == 0 {
            return;
        }
        self.unrecoverable
            .push((collection.to_string(), count, sample.to_vec()));
        self.notes.push(format!(
            "{collection}: {count} record(s) have no vector anywhere on disk (e.g. {}): \
             re-add them from your own source",
            sample
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// Why the vectors of a damaged index cannot be read whole, if they cannot: a repair rebuilds
/// only an index whose header, elements and pickle are whole (a cut `link_lists.bin` or
/// `length.bin` loses nothing a new graph needs).
fn unreadable_parts(
    persist_dir: &std::path::Path,
    v: &crate::chroma::Segment,
    space: Space,
) -> Option<String> {
    let Some(h) = v.index.as_ref().and_then(|f| f.parsed()).copied() else {
        return Some("its header.bin cannot be read".into());
    };
    if let Some(why) = h.implausible() {
        return Some(why);
    }
    let dir = persist_dir.join(&v.id);
    // A cut data_level0.bin or cosine length.bin is repaired from what is whole (see
    // `cut_parts`); only files that leave nothing to read refuse.
    let _ = space;
    let have = std::fs::metadata(dir.join(hnsw::DATA_LEVEL0))
        .map(|m| m.len())
        .unwrap_or(0);
    if h.cur_element_count > 0 && h.whole_in(have).cur_element_count == 0 {
        return Some(format!(
            "{} holds no element whole: there are no vectors to rebuild from",
            hnsw::DATA_LEVEL0
        ));
    }
    match crate::chroma::pickle::read_labels(&dir.join(crate::chroma::INDEX_METADATA)) {
        Ok((_, m)) if m.unread == 0 && !m.pairs.is_empty() => None,
        Ok(_) => Some("its pickle names no label".into()),
        Err(e) => Some(format!("its pickle cannot be read ({e})")),
    }
}

impl IndexPlan {
    /// The plan for the collections `names` (when `None`: every collection with ghosts, and
    /// with `repair` every one missing records or damaged too), from a snapshot whose index
    /// truth has been read (`info --deep`'s).
    pub fn build(snap: &Snapshot, names: Option<&[String]>, repair: bool) -> Result<IndexPlan> {
        let mut chosen: Vec<usize> = Vec::new();
        match names {
            Some(list) => {
                for n in list {
                    let i = snap.find_collection(n)?;
                    if !chosen.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
            None => chosen = (0..snap.collections.len()).collect(),
        }
        let conn = db::open_read_only(&snap.sqlite_path)?;
        let mut plan = IndexPlan::default();
        for i in chosen {
            let c = &snap.collections[i];
            let by_name = names.is_some();
            let Some(v) = c.segments.iter().find(|s| s.scope == "VECTOR") else {
                if by_name {
                    plan.notes
                        .push(format!("{}: no vector segment; nothing to rebuild", c.name));
                }
                continue;
            };
            let Some(t) = c.truth.as_ref() else {
                if by_name {
                    plan.notes
                        .push(format!("{}: its index was not read", c.name));
                }
                continue;
            };
            let Some(h) = v.index.as_ref().and_then(|f| f.parsed()).copied() else {
                if by_name {
                    plan.notes.push(format!(
                        "{}: no index persisted; nothing to rebuild",
                        c.name
                    ));
                }
                continue;
            };
            let damaged = v.health.unloadable().map(|r| r.to_string());
            let records_segment = c
                .segments
                .iter()
                .find(|s| s.scope == "METADATA")
                .filter(|m| matches!((m.max_seq_id, v.max_seq_id), (Some(a), Some(b)) if a >= b))
                .map(|m| m.id.clone());
            // With the records known to be ahead of the index, ids deleted since its last
            // persist leave with it; otherwise only the elements no id reaches in the files.
            let ghosts = if records_segment.is_some() && t.ghosts_on_disk.is_some() {
                t.ghosts
            } else {
                t.ghosts_on_disk
            };
            if ghosts.is_none() && !(repair && damaged.is_some()) {
                if by_name || c.is_damaged() {
                    plan.notes.push(format!(
                        "skipped {}: {}{}",
                        c.name,
                        t.note
                            .as_deref()
                            .unwrap_or("its index cannot be read whole"),
                        if damaged.is_some() {
                            " (--repair rebuilds a damaged index whose vectors are whole)"
                        } else {
                            ""
                        }
                    ));
                }
                continue;
            }
            let space = hnsw::space::read(&conn, &c.id, &v.id);
            if let Some(why) = damaged
                .as_ref()
                .and_then(|_| unreadable_parts(&snap.persist_dir, v, space))
            {
                plan.notes.push(format!(
                    "skipped {}: its index is damaged and cannot be rebuilt: {why}; its WAL stays whole",
                    c.name
                ));
                continue;
            }
            if repair && damaged.is_some() {
                plan.notes
                    .extend(cut_parts(&snap.persist_dir, &c.name, v, &h));
            }
            let missing = t.missing().unwrap_or(0);
            if !crate::chroma::replay::loads_files(&v.replay_facts()) {
                // No release reads these files: 1.x replays the WAL from 0 into an empty
                // index. A repair names what no row holds; it does not yet write an index and
                // a pickle for such a folder, so it says how many more a WAL row could give.
                if repair && missing > 0 {
                    let found = crate::index::putback::find(snap, i, h.dimensionality() as usize)?;
                    plan.name_unrecoverable(&c.name, found.unrecoverable, &found.sample);
                    if !found.put_back.is_empty() {
                        plan.notes.push(format!(
                            "{}: {} more record(s) have their vector only in a WAL row the \
                             replay skips (an update of an id the index lacks); chroma-wal does \
                             not yet rebuild an index that has no pickle, so they stay out of \
                             every query",
                            c.name,
                            found.put_back.len()
                        ));
                    }
                }
                if ghosts.unwrap_or(0) > 0 || by_name {
                    plan.notes.push(format!(
                        "skipped {}: no release loads this folder (its pickle is missing or \
                         names no label); Chroma rebuilds it from the WAL on its next load",
                        c.name
                    ));
                }
                continue;
            }
            let (mut put_back, mut unrecoverable, mut sample) = (Vec::new(), 0, Vec::new());
            let (mut renorm, mut direction_only) = (Vec::new(), 0);
            if repair && (missing > 0 || damaged.is_some()) {
                let found = crate::index::putback::find(snap, i, h.dimensionality() as usize)?;
                plan.name_unrecoverable(&c.name, found.unrecoverable, &found.sample);
                if found.direction_only > 0 {
                    plan.notes.push(format!(
                        "{}: {} record(s) lost their norm in {} and no WAL row holds their vector \
                         (e.g. {}): they keep their direction, so queries find them, and get() \
                         will return them as unit vectors",
                        c.name,
                        crate::units::count(found.direction_only),
                        hnsw::LENGTH,
                        found.direction_only_sample.join(", ")
                    ));
                }
                put_back = found.put_back;
                unrecoverable = found.unrecoverable;
                sample = found.sample;
                renorm = found.renorm;
                direction_only = found.direction_only;
            }
            let work = ghosts.unwrap_or(0) > 0 || !put_back.is_empty() || damaged.is_some();
            if !work && !by_name {
                continue;
            }
            let after =
                h.cur_element_count.saturating_sub(ghosts.unwrap_or(0)) + put_back.len() as u64;
            let links_estimate = after.saturating_mul(4 + 2 * (h.max_m * 4 + 4) / h.m.max(2));
            let bytes_before = v.dir_bytes.unwrap_or(0);
            let pickle = v
                .index
                .as_ref()
                .and_then(|f| f.files.get(crate::chroma::INDEX_METADATA))
                .copied()
                .unwrap_or(0);
            let pending = t.ghosts.unwrap_or(0).saturating_sub(ghosts.unwrap_or(0));
            if pending > 0 {
                plan.notes.push(format!(
                    "{}: {pending} more vector(s) belong to ids deleted since the index was last \
                     persisted: Chroma marks them deleted when it next loads the collection, and a \
                     compaction after that removes them",
                    c.name
                ));
            }
            if missing > 0 && !repair {
                plan.notes.push(format!(
                    "{}: {missing} record(s) are in no index and stay so: add --repair to put back \
                     those whose vector the WAL still holds",
                    c.name
                ));
            }
            plan.indexes.push(PlanIndex {
                collection: c.name.clone(),
                collection_id: c.id.clone(),
                segment: v.id.clone(),
                space,
                elements: h.cur_element_count,
                ghosts,
                missing,
                put_back,
                unrecoverable,
                unrecoverable_sample: sample,
                renorm,
                direction_only,
                damaged,
                records_segment,
                bytes_before,
                bytes_after_estimate: after
                    .saturating_mul(h.size_data_per_element.saturating_add(4))
                    .saturating_add(links_estimate)
                    .saturating_add(pickle)
                    .saturating_add(100),
            });
        }
        Ok(plan)
    }

    pub fn ghosts(&self) -> u64 {
        self.indexes.iter().filter_map(|i| i.ghosts).sum()
    }

    pub fn restored(&self) -> u64 {
        self.indexes.iter().map(|i| i.put_back.len() as u64).sum()
    }

    /// The disk the work needs: with a backup on the same filesystem every old folder stays,
    /// so every new one is added; without one, each old folder goes before the next is
    /// written, so the largest new one.
    pub fn disk_needed(&self, backup_here: bool) -> u64 {
        let sizes = self.indexes.iter().map(|i| i.bytes_after_estimate);
        if backup_here {
            sizes.sum()
        } else {
            sizes.max().unwrap_or(0)
        }
    }
}

/// What a finished `compact` did.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexReport {
    pub persist_dir: PathBuf,
    pub indexes: Vec<IndexResult>,
    pub notes: Vec<String>,
    pub backup_dir: Option<PathBuf>,
    pub fs_free_before: Option<u64>,
    pub fs_free_after: Option<u64>,
}

/// The name of the new folder while it is written (and, for a moment after the exchange, of
/// the old one).
pub fn side_name(segment: &str) -> String {
    format!(".{segment}.chroma-wal-new")
}

/// The name of the old folder after the exchange, until it is in the backup.
pub fn old_name(segment: &str) -> String {
    format!(".{segment}.chroma-wal-old")
}

/// A folder an interrupted compact left beside the segment's: a new folder never swapped in
/// is deleted; the old index (its files as a backup manifest recorded them before the
/// exchange, or under the old name) is moved into that backup, never deleted.
fn settle_leftovers(persist_dir: &Path, segment: &str, backups: Option<&Path>) -> Result<()> {
    let side = persist_dir.join(side_name(segment));
    let old = persist_dir.join(old_name(segment));
    let owner = |stamp: Option<String>| -> Option<PathBuf> {
        let stamp = stamp?;
        let parent = backups?.parent()?.to_path_buf();
        crate::backup::list(&parent, persist_dir)
            .into_iter()
            .chain(crate::backup::list(backups?, persist_dir))
            .find(|b| {
                b.manifest
                    .indexes
                    .iter()
                    .any(|i| i.name == segment && i.old.as_deref() == Some(stamp.as_str()))
            })
            .map(|b| b.folder)
    };
    for (path, surely_old) in [(&old, true), (&side, false)] {
        if !path.exists() {
            continue;
        }
        match owner(crate::backup::folder_stamp(path)) {
            Some(b) => {
                move_dir(path, &b.join(crate::backup::DIRS).join(segment))?;
            }
            None if surely_old => {
                return Err(Error::refused(format!(
                    "an interrupted compact left the old index of segment {segment} at {}: \
                     move it back or into its backup before compacting again",
                    path.display()
                )))
            }
            None => std::fs::remove_dir_all(path)?,
        }
    }
    sync_dir(persist_dir)?;
    Ok(())
}

/// Give the new folder and its files the owner and mode of the old ones (a Chroma running as
/// another user than this tool must go on writing them). Not being allowed to is no error: then
/// no one else could have owned them either.
fn like_old(old: &Path, new: &Path) {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    let copy = |from: &std::fs::Metadata, to: &Path| {
        let _ = chown(to, Some(from.uid()), Some(from.gid()));
        let _ = std::fs::set_permissions(to, std::fs::Permissions::from_mode(from.mode() & 0o7777));
    };
    let Ok(dir) = std::fs::metadata(old) else {
        return;
    };
    copy(&dir, new);
    let Ok(entries) = std::fs::read_dir(new) else {
        return;
    };
    for e in entries.flatten() {
        let meta = std::fs::metadata(old.join(e.file_name())).unwrap_or_else(|_| dir.clone());
        let file_like = |m: &std::fs::Metadata| {
            if m.is_dir() {
                // A file made where the old folder had none: the folder's owner, rw for them.
                None
            } else {
                Some(m.clone())
            }
        };
        match file_like(&meta) {
            Some(m) => copy(&m, &e.path()),
            None => {
                let _ = chown(e.path(), Some(dir.uid()), Some(dir.gid()));
            }
        }
    }
}

/// Run `plan` on the persist dir; progress through `events`.
pub fn run(
    persist_dir: &Path,
    plan: &IndexPlan,
    backup_folder: Option<&Path>,
    cancel: &Canceller,
    events: &mut dyn FnMut(Event),
) -> std::result::Result<IndexReport, JobError> {
    let mut ctx = Ctx::new(events, cancel);
    let fs_free_before = fsinfo::free_space(persist_dir).map(|f| f.0);
    let snap = ctx.timed(Step::Preflight, Some(1), Unit::Checks, |c| {
        let snap = Snapshot::open(persist_dir)?;
        if let Some(b) = snap.prune_blockers().into_iter().next() {
            return Err(Error::refused(b));
        }
        if let Some(b) = backup_folder {
            crate::backup::check_backup_folder(persist_dir, b)?;
        }
        let same_fs = |a: &Path, b: &Path| {
            use std::os::unix::fs::MetadataExt;
            let dev = |p: &Path| {
                p.ancestors()
                    .find_map(|q| std::fs::metadata(q).ok())
                    .map(|m| m.dev())
            };
            dev(a) == dev(b)
        };
        let backup_here = backup_folder.is_some_and(|b| same_fs(b, persist_dir));
        let need = plan.disk_needed(backup_here);
        if let Some(b) = backup_folder.filter(|_| !backup_here) {
            // The old folders are copied there, their data only: a sparse link_lists.bin
            // (grown by seeking past its end) needs its blocks, not its length.
            let old: u64 = plan
                .indexes
                .iter()
                .map(|i| allocated_tree(&persist_dir.join(&i.segment)))
                .sum();
            let free = b
                .ancestors()
                .find_map(|q| fsinfo::free_space(q).map(|f| f.0));
            if free.is_some_and(|f| f < old) {
                return Err(Error::refused(format!(
                    "not enough disk in the backup folder's filesystem for the old index folders ({})",
                    crate::units::bytes(old)
                )));
            }
        }
        if let Some(free) = fs_free_before {
            // The new folder, and room to spare for Chroma (as the prune's preflight keeps).
            let margin = 64 << 20;
            if free < need + margin {
                return Err(Error::refused(format!(
                    "not enough disk: the largest new index needs about {} and {} is free",
                    crate::units::bytes(need + margin),
                    crate::units::bytes(free)
                )));
            }
        }
        (c.events)(Event::Progress {
            step: Step::Preflight,
            done: 1,
            total: Some(1),
        });
        Ok((snap, None))
    })?;
    let folder = match backup_folder {
        Some(b) => Some(
            crate::backup::folder_only(persist_dir, b).map_err(|e| ctx.fail(Step::Backup, e))?,
        ),
        None => {
            ctx.skip(Step::Backup, "--no-backup");
            None
        }
    };
    let (results, notes) = run_plan(&mut ctx, &snap, plan, folder.as_deref())?;
    Ok(IndexReport {
        persist_dir: persist_dir.to_path_buf(),
        indexes: results,
        notes,
        backup_dir: folder,
        fs_free_before,
        fs_free_after: fsinfo::free_space(persist_dir).map(|f| f.0),
    })
}

/// The rebuilds of a prune's plan (collections by id, marked in the explorer): each index is
/// read again and planned here, on the job's thread, with `--repair`'s rules when `repair`
/// (a scrub's rebuilds put nothing back).
pub(super) fn run_requested(
    ctx: &mut Ctx<'_>,
    persist_dir: &Path,
    ids: &[String],
    folder: Option<&Path>,
    repair: bool,
) -> std::result::Result<(Vec<IndexResult>, Vec<String>), JobError> {
    let mut snap = Snapshot::open(persist_dir).map_err(|e| ctx.fail(Step::Rebuild, e))?;
    let chosen: Vec<usize> = ids
        .iter()
        .filter_map(|id| snap.find_collection(id).ok())
        .collect();
    let cancel = ctx.cancel.clone();
    let found = crate::chroma::truth::read(&snap, &|i| chosen.contains(&i), true, &mut |_, _| {
        !cancel.is_cancelled()
    })
    .map_err(|e| ctx.fail(Step::Rebuild, e))?;
    crate::chroma::truth::apply(&mut snap, found);
    let names: Vec<String> = chosen
        .iter()
        .map(|&i| snap.collections[i].id.clone())
        .collect();
    let plan =
        IndexPlan::build(&snap, Some(&names), repair).map_err(|e| ctx.fail(Step::Rebuild, e))?;
    run_plan(ctx, &snap, &plan, folder)
}

/// Rebuild every index of `plan`, one at a time, under chroma.sqlite3's write lock.
fn run_plan(
    ctx: &mut Ctx<'_>,
    snap: &Snapshot,
    plan: &IndexPlan,
    folder: Option<&Path>,
) -> std::result::Result<(Vec<IndexResult>, Vec<String>), JobError> {
    let persist_dir = snap.persist_dir.as_path();
    // The write lock on chroma.sqlite3 for the whole job: no Chroma that starts meanwhile can
    // write a position or a segment while an index is exchanged.
    let conn = db::open_read_write(&snap.sqlite_path).map_err(|e| ctx.fail(Step::Preflight, e))?;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|_| {
        ctx.fail(
            Step::Preflight,
            Error::refused("another process is writing to chroma.sqlite3; stop Chroma first"),
        )
    })?;
    let mut results = Vec::new();
    let mut notes = plan.notes.clone();
    let mut failure = None;
    for p in &plan.indexes {
        match one(ctx, &conn, persist_dir, p, folder) {
            Ok(r) => {
                notes.extend(repaired_notes(&r));
                results.push(r)
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let _ = conn.execute_batch("ROLLBACK");
    drop(conn);
    if let Some(e) = failure {
        if !results.is_empty() {
            notes.push(format!(
                "{} index(es) were rebuilt before the failure and stay rebuilt",
                results.len()
            ));
        }
        return Err(e);
    }
    Ok((results, notes))
}

/// The ids of metadata segment `segment`'s records, hashed.
fn record_ids(
    conn: &rusqlite::Connection,
    segment: &str,
) -> Result<std::collections::HashSet<crate::chroma::idhash::IdHash>> {
    let mut st = conn.prepare("SELECT embedding_id FROM embeddings WHERE segment_id = ?1")?;
    let mut rows = st.query([segment])?;
    let mut out = std::collections::HashSet::new();
    while let Some(r) = rows.next()? {
        let h = match r.get_ref(0)? {
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                crate::chroma::idhash::IdHash::of(t)
            }
            _ => continue,
        };
        out.insert(h);
    }
    Ok(out)
}

/// Rebuild, check and swap one index.
fn one(
    ctx: &mut Ctx<'_>,
    conn: &rusqlite::Connection,
    persist_dir: &Path,
    p: &PlanIndex,
    folder: Option<&Path>,
) -> std::result::Result<IndexResult, JobError> {
    let t0 = Instant::now();
    let live = persist_dir.join(&p.segment);
    let side = persist_dir.join(side_name(&p.segment));
    let total = p.elements_after();
    let stop = Arc::new(AtomicBool::new(false));
    let rebuilt = ctx.timed(Step::Rebuild, Some(total), Unit::Elements, |c| {
        settle_leftovers(persist_dir, &p.segment, folder)?;
        // Read under the lock: the records as they are now.
        let records = match &p.records_segment {
            Some(seg) => Some(record_ids(conn, seg)?),
            None => None,
        };
        std::fs::create_dir(&side)?;
        let cancel = c.cancel.clone();
        let mut throttle = crate::jobs::runner::Throttle::new();
        let mut last_phase = None;
        let r = {
            let events = &mut c.events;
            rebuild::rebuild(
                &live,
                &side,
                rebuild::Job {
                    space: p.space,
                    put_back: &p.put_back,
                    renorm: &p.renorm,
                    repair: p.damaged.is_some(),
                    records: records.as_ref(),
                },
                &mut |phase, done, all| {
                    if cancel.is_cancelled() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if last_phase != Some(phase) || throttle.ready() {
                        last_phase = Some(phase);
                        (events)(Event::Progress {
                            step: Step::Rebuild,
                            done: if phase == Phase::Building {
                                done
                            } else {
                                done.min(all)
                            },
                            total: Some(all),
                        });
                    }
                },
                &stop,
            )
        };
        match r {
            Ok(r) => {
                let d = format!(
                    "{}: {} elements, {} ghosts gone, {} put back, recall@10 {:.3}{}",
                    p.collection,
                    r.elements_after,
                    r.ghosts_removed,
                    r.restored,
                    r.recall_after,
                    r.recall_before
                        .map(|b| format!(" (was {b:.3})"))
                        .unwrap_or_default()
                );
                Ok((r, Some(d)))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&side);
                Err(match e {
                    RebuildError::Cancelled => Error::Interrupted(format!(
                        "cancelled while rebuilding {}'s index",
                        p.collection
                    )),
                    RebuildError::Failed(w) => {
                        Error::failed(format!("{}'s index: {w}", p.collection))
                    }
                })
            }
        }
    })?;
    ctx.timed(Step::Swap, Some(1), Unit::Checks, |c| {
        c.check_cancel(Step::Swap)?;
        let holders = procs::find(&live);
        if !holders.list.is_empty() {
            let _ = std::fs::remove_dir_all(&side);
            return Err(Error::refused(format!(
                "{}'s index is open in {}: stop Chroma first",
                p.collection,
                holders.describe()
            )));
        }
        like_old(&live, &side);
        sync_dir(&side)?;
        // Recorded before the exchange, both folders as they are (a rename changes no file):
        // whatever a kill leaves, restore and the next compact can tell the two apart.
        if let Some(f) = folder {
            crate::backup::Manifest::note_index(
                f,
                &p.segment,
                p.bytes_before,
                crate::backup::folder_stamp(&live),
                crate::backup::folder_stamp(&side),
            )?;
        }
        exchange(&side, &live).map_err(|e| {
            let _ = std::fs::remove_dir_all(&side);
            Error::failed(format!(
                "cannot exchange the new index with the old one ({e}); the old one is in place"
            ))
        })?;
        c.state = DirState::Rebuilt;
        c.backup = folder.map(Path::to_path_buf);
        sync_dir(persist_dir)?;
        let old = persist_dir.join(old_name(&p.segment));
        std::fs::rename(&side, &old)?;
        sync_dir(persist_dir)?;
        Ok(((), None))
    })?;
    // The old folder is now under the old name: into the backup, or gone.
    let old = persist_dir.join(old_name(&p.segment));
    let moved_to = match folder {
        Some(f) => {
            let to = f.join(crate::backup::DIRS).join(&p.segment);
            move_dir(&old, &to).map_err(|e| ctx.fail(Step::Swap, e))?;
            Some(to)
        }
        None => {
            std::fs::remove_dir_all(&old).map_err(|e| ctx.fail(Step::Swap, e.into()))?;
            None
        }
    };
    let _ = sync_dir(persist_dir);
    Ok(IndexResult {
        plan: p.clone(),
        rebuilt,
        bytes_after: fsinfo::tree_bytes(&live),
        seconds: t0.elapsed().as_secs_f64(),
        moved_to,
    })
}
