//! The persist dir's folders as data. The top level is listed once; each vector segment's
//! folder is listed once and its `header.bin` (and pickle) read, on every core: a dir of 20,000
//! collections has 20,000 folders, and the time to read them is almost all system calls.
//!
//! Everything a dir's total size needs comes from these same listings, so no folder is
//! walked twice.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::catalog::{
    compute_bound, looks_like_uuid, FolderWork, OrphanDir, PendingPickle, Resolved, Segment,
    SeqIdSource, Sizes, Snapshot,
};
use super::health;
use super::hnsw::{self, IndexFolder};
use super::pickle::{self, PickleSeqId};
use super::procs;
use super::seqid::Decoded;
use super::{fsinfo, HNSW_PERSISTED, INDEX_METADATA};

/// The entries directly under the persist dir.
#[derive(Debug, Default)]
pub struct TopLevel {
    /// Where it was listed from; `None` when it could not be listed (each folder is then
    /// looked up by name, which needs only search permission).
    dir: Option<PathBuf>,
    /// Folders (not symlinks to folders), by name.
    dirs: Vec<OsString>,
    /// The same folders' names that are UTF-8, for lookups by segment id.
    utf8_dirs: HashSet<String>,
    /// Symlinks to folders, by name (UTF-8 names only).
    linked_dirs: HashSet<String>,
    /// Bytes of the regular files directly under the persist dir.
    file_bytes: u64,
}

impl TopLevel {
    /// List `dir` once. A dir that cannot be listed whole is marked unlisted: each folder is
    /// then looked up by name, as SQLite's own view of the dir would not change.
    pub fn read(dir: &Path) -> TopLevel {
        let unlisted = TopLevel::default();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return unlisted;
        };
        let mut top = TopLevel {
            dir: Some(dir.to_path_buf()),
            ..TopLevel::default()
        };
        for e in rd {
            let Ok(e) = e else { return unlisted };
            // The entry's type comes with the listing on most filesystems (no stat).
            let Ok(t) = e.file_type() else {
                return unlisted;
            };
            if t.is_dir() {
                let name = e.file_name();
                if let Some(s) = name.to_str() {
                    top.utf8_dirs.insert(s.to_string());
                }
                top.dirs.push(name);
            } else if t.is_file() {
                top.file_bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            } else if t.is_symlink() && e.path().is_dir() {
                // A segment folder moved elsewhere and linked back: Chroma follows the link,
                // so its folder is there. (Not walked for the dir's size, not an orphan.)
                if let Some(s) = e.file_name().to_str() {
                    top.linked_dirs.insert(s.to_string());
                }
            }
        }
        top
    }

    /// Whether `name` is a folder directly under the persist dir (`dir`).
    pub fn has_dir(&self, dir: &Path, name: &str) -> bool {
        match self.dir {
            Some(_) => self.utf8_dirs.contains(name) || self.linked_dirs.contains(name),
            None => dir.join(name).is_dir(),
        }
    }

    /// Bytes of everything under the persist dir, as [`fsinfo::tree_bytes`] would count them,
    /// taking the folders already measured from `known` instead of walking them again.
    pub fn total_bytes(&self, dir: &Path, known: &HashMap<&str, u64>) -> u64 {
        if self.dir.is_none() {
            return fsinfo::tree_bytes(dir);
        }
        let mut total = self.file_bytes;
        for name in &self.dirs {
            total += match name.to_str().and_then(|s| known.get(s)) {
                Some(&b) => b,
                None => fsinfo::tree_bytes(&dir.join(name)),
            };
        }
        total
    }
}

/// What one segment row of the catalog needs to be judged.
pub struct SegmentRow<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub scope: &'a str,
}

/// Read and judge many segments, on every core. `groups` lists indexes into `rows` (one group
/// per collection); the segments come back in the same groups, so no second buffer of all of
/// them is ever held. Warnings come with the index of the row that raised them.
pub fn resolve_grouped(
    dir: &Path,
    top: &TopLevel,
    rows: &[SegmentRow<'_>],
    groups: &[Vec<usize>],
    seq_rows: &HashMap<String, Decoded>,
    at: health::DirView,
    deferred: bool,
) -> (Vec<Vec<Segment>>, Vec<(usize, String)>) {
    type Said = Vec<(usize, String)>;
    let (segments, warnings): (Vec<Vec<Segment>>, Vec<Said>) = groups
        .par_iter()
        .with_min_len(16)
        .map(|group| {
            let mut said = Vec::new();
            // Sized to the group: a collected filter_map would reserve room for four
            // segments (1.7 KB) per collection, twice what its two use.
            let mut segs = Vec::with_capacity(group.len());
            for &k in group {
                if let Some(r) = rows.get(k) {
                    let mut w = Vec::new();
                    let seg = resolve_segment(
                        dir,
                        r,
                        top.has_dir(dir, r.id),
                        seq_rows,
                        at,
                        &mut w,
                        deferred,
                    );
                    said.extend(w.into_iter().map(|w| (k, w)));
                    segs.push(seg);
                }
            }
            (segs, said)
        })
        .unzip();
    (segments, warnings.into_iter().flatten().collect())
}

/// Read one segment's folder (when it has one) and judge it. `deferred`: read the pickle only
/// up to its `max_seq_id` (the whole file is validated later).
pub fn resolve_segment(
    dir: &Path,
    row: &SegmentRow<'_>,
    is_dir: bool,
    seq_rows: &HashMap<String, Decoded>,
    at: health::DirView,
    warnings: &mut Vec<String>,
    deferred: bool,
) -> Segment {
    let (id, kind, scope) = (row.id, row.kind, row.scope);
    let seg_dir = dir.join(id);
    let vector = scope == "VECTOR";
    let persisted_kind = kind == HNSW_PERSISTED || kind.is_empty();
    let folder = (vector && is_dir).then(|| IndexFolder::read(&seg_dir).map_err(|e| e.to_string()));
    let pickle_path = seg_dir.join(INDEX_METADATA);
    // The listing says whether the pickle is a regular file; a symlink is followed, as
    // Chroma would.
    let has_pickle = match &folder {
        Some(Ok(f)) => {
            f.files.contains_key(INDEX_METADATA)
                || (f.strangers.iter().any(|s| s == INDEX_METADATA) && pickle_path.is_file())
        }
        Some(Err(_)) => pickle_path.is_file(),
        None => false,
    };
    let pickle = has_pickle.then(|| {
        if deferred {
            pickle::read_prefix(&pickle_path)
        } else {
            pickle::read(&pickle_path)
        }
    });
    let (max_seq_id, source, mut problem) = match seq_rows.get(id) {
        Some(Decoded::Value { seq_id, blob }) => (
            Some(*seq_id),
            if *blob {
                SeqIdSource::SqliteBlob
            } else {
                SeqIdSource::SqliteInteger
            },
            None,
        ),
        Some(Decoded::Invalid(why)) => {
            warnings.push(format!("segment {id}: {why}"));
            (
                None,
                SeqIdSource::Unknown,
                Some(format!("bad max_seq_id in sqlite: {why}")),
            )
        }
        None if vector => match &pickle {
            None => {
                let why = if persisted_kind {
                    "vector index not yet persisted".to_string()
                } else {
                    format!("vector segment type {kind} records no max_seq_id")
                };
                (None, SeqIdSource::Unknown, Some(why))
            }
            Some(Ok(f)) => match &f.max_seq_id {
                PickleSeqId::Value(v) => (Some(*v), SeqIdSource::Pickle, None),
                _ => (
                    None,
                    SeqIdSource::Unknown,
                    Some("vector index not yet persisted".into()),
                ),
            },
            Some(Err(why)) => (
                None,
                SeqIdSource::Unknown,
                Some(format!("index_metadata.pickle {why}")),
            ),
        },
        None => (
            None,
            SeqIdSource::Unknown,
            Some(format!(
                "{} segment has recorded no max_seq_id yet",
                scope.to_lowercase()
            )),
        ),
    };
    // The lists are walked only where the cheap checks pass: a header that is possible and
    // files long enough for its elements (so the walk is bounded by the file).
    let links = match &folder {
        Some(Ok(f)) if vector && health::must_be_whole(pickle.is_some(), max_seq_id) => f
            .parsed()
            .filter(|h| h.implausible().is_none() && f.short_file(h).is_none())
            .map(|h| hnsw::links::walk(&seg_dir, h)),
        _ => None,
    };
    let health = health::judge(&health::Facts {
        scope,
        persisted_kind,
        position: max_seq_id,
        pickle: pickle.as_ref(),
        folder: folder.as_ref(),
        wal_max: at.wal_max,
        links: links.as_ref(),
        era: at.era,
    });
    if let Some(why) = health.reason().or(health.replayed()) {
        problem = Some(why.to_string());
    }
    let index = folder.and_then(|f| f.ok());
    // The folder was listed once already: a flat index folder's bytes are its files'. Only
    // a folder with subfolders (never Chroma's) is walked again.
    let dir_bytes = is_dir.then(|| match &index {
        Some(f) if f.strangers.iter().all(|n| f.files.contains_key(n)) => f.bytes(),
        _ => fsinfo::tree_bytes(&seg_dir),
    });
    if let Some(h) = index.as_ref().and_then(|f| f.parsed().map(|h| (f, h))) {
        if let Some(w) = h.0.bloated_links(h.1) {
            warnings.push(format!("segment {id}: {w}"));
        }
    }
    Segment {
        id: id.to_string(),
        scope: scope.to_string(),
        kind: kind.to_string(),
        max_seq_id,
        source,
        problem,
        dir_bytes,
        health,
        index,
        pickle,
    }
}

/// What keeps a segment-looking folder from being reclaimed: anything but the files an index
/// folder holds (and nothing but regular files).
pub fn orphan_keep_reason(path: &Path) -> Option<String> {
    keep_reason(&IndexFolder::read(path))
}

fn keep_reason(listed: &std::io::Result<IndexFolder>) -> Option<String> {
    match listed {
        Ok(f) if f.strangers.is_empty() => None,
        Ok(f) => Some(format!(
            "holds {} besides index files; left alone",
            f.strangers.join(", ")
        )),
        Err(e) => Some(format!("cannot be listed ({e}); left alone")),
    }
}

/// Folders named like a segment that no segment uses, each listed once (in parallel: a dir
/// whose collections were deleted by 1.x keeps every one of their folders).
pub fn find_orphan_dirs(dir: &Path, top: &TopLevel, segment_ids: &HashSet<&str>) -> Vec<OrphanDir> {
    let mut names: Vec<&str> = top
        .utf8_dirs
        .iter()
        .map(String::as_str)
        .filter(|n| looks_like_uuid(n) && !segment_ids.contains(n))
        .collect();
    names.sort_unstable();
    names
        .par_iter()
        .map(|name| {
            let path: PathBuf = dir.join(name);
            let listed = IndexFolder::read(&path);
            let keep = keep_reason(&listed);
            // A flat folder of regular files (what a reclaimable one is) was measured by its
            // listing; anything else is walked.
            let bytes = match (&listed, &keep) {
                (Ok(f), None) => f.bytes(),
                _ => fsinfo::tree_bytes(&path),
            };
            OrphanDir {
                name: name.to_string(),
                path,
                bytes,
                keep,
                stale_row: false,
            }
        })
        .collect()
}

impl PendingPickle {
    /// Validate the pickle whole and judge the segment again. Touches no snapshot, so it can
    /// run on another thread while the WAL is counted. A folder that lists as it did comes
    /// back without its listing ([`Resolved::same_listing`]).
    pub fn resolve(&self) -> Resolved {
        let mut rows = HashMap::new();
        if let Some(r) = &self.row {
            rows.insert(self.id.clone(), r.clone());
        }
        let mut warnings = Vec::new();
        let row = SegmentRow {
            id: &self.id,
            kind: &self.kind,
            scope: &self.scope,
        };
        let is_dir = self.dir.join(&self.id).is_dir();
        let seg = resolve_segment(
            &self.dir,
            &row,
            is_dir,
            &rows,
            health::DirView {
                wal_max: self.wal_max,
                era: self.era,
            },
            &mut warnings,
            false,
        );
        let listing = seg.index.as_ref().map(IndexFolder::stamp);
        let same_listing = listing.is_some() && listing == self.listing;
        Resolved {
            collection: self.collection,
            segment: if same_listing {
                Segment { index: None, ..seg }
            } else {
                seg
            },
            warnings,
            same_listing,
        }
    }
}

/// Read the folders of a snapshot read by [`Snapshot::open_catalog`]: judge every segment,
/// find the orphan folders, total the dir, find who holds it. Does nothing the second time.
pub fn read_into(snap: &mut Snapshot) {
    let Some(work) = snap.unread.take() else {
        return;
    };
    let FolderWork {
        segments,
        seq_rows,
        deferred,
        writing,
        ..
    } = *work;
    let dir = snap.persist_dir.clone();
    let dir = dir.as_path();
    let wal_max_seq_id = snap.wal_max_seq_id;
    let dir_facts = snap.dir_facts();
    let collections = &mut snap.collections;
    let warnings = &mut snap.warnings;
    let by_id: HashMap<&str, usize> = collections
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    // The top level once, then every segment folder once, on every core.
    let top = TopLevel::read(dir);
    let rows: Vec<SegmentRow<'_>> = segments
        .iter()
        .map(|(id, kind, scope, _)| SegmentRow { id, kind, scope })
        .collect();
    // One group per collection, and a last one of segments no collection owns (read for
    // what they say, then dropped).
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); collections.len() + 1];
    for (k, (_, _, _, coll)) in segments.iter().enumerate() {
        let owner = coll.as_deref().and_then(|c| by_id.get(c)).copied();
        groups[owner.unwrap_or(collections.len())].push(k);
    }
    drop(by_id);
    let (mut resolved, mut said) = resolve_grouped(
        dir,
        &top,
        &rows,
        &groups,
        &seq_rows,
        health::DirView {
            wal_max: wal_max_seq_id,
            era: dir_facts.era,
        },
        deferred,
    );
    let unowned = resolved.pop().unwrap_or_default();
    for (k, seg) in groups.last().into_iter().flatten().zip(&unowned) {
        let coll = segments.get(*k).and_then(|s| s.3.as_deref());
        said.push((
            *k,
            format!(
                "segment {} belongs to no existing collection ({})",
                seg.id,
                coll.unwrap_or("no collection id")
            ),
        ));
    }
    // In the order of the segments' ids, as they were read.
    said.sort_by_key(|(k, _)| *k);
    warnings.extend(said.into_iter().map(|(_, w)| w));
    for (c, segs) in collections.iter_mut().zip(resolved) {
        c.segments = segs;
    }
    // A pickle read only up to its max_seq_id is validated whole later (in segment id
    // order, as the segments were read).
    let mut pending: Vec<PendingPickle> = Vec::new();
    if deferred {
        for (ci, c) in collections.iter().enumerate() {
            for s in c.segments.iter().filter(|s| s.pickle.is_some()) {
                pending.push(PendingPickle {
                    collection: ci,
                    id: s.id.clone(),
                    kind: s.kind.clone(),
                    scope: s.scope.clone(),
                    row: seq_rows.get(&s.id).cloned(),
                    dir: dir.to_path_buf(),
                    wal_max: wal_max_seq_id,
                    era: dir_facts.era,
                    listing: s.index.as_ref().map(IndexFolder::stamp),
                });
            }
        }
        pending.sort_by(|a, b| a.id.cmp(&b.id));
    }
    for c in collections.iter_mut() {
        c.segments
            .sort_by(|a, b| a.scope.cmp(&b.scope).then(a.id.cmp(&b.id)));
        c.bound = compute_bound(&c.segments, &dir_facts);
        warnings.extend(c.bound.warning(&c.name));
    }
    // Folders are named by segment id: any id in `segments`, in every tenant and database,
    // is live (never compare with collection ids). A max_seq_id row alone does not make a
    // folder live: Chroma 0.5.6–0.6.x leave the vector segment's row behind when they delete
    // a collection, and no collection can load a folder whose segment is gone. Such a row is
    // said, and never touched.
    let segment_ids: HashSet<&str> = segments.iter().map(|s| s.0.as_str()).collect();
    let mut orphan_segment_dirs = find_orphan_dirs(dir, &top, &segment_ids);
    for o in &mut orphan_segment_dirs {
        if seq_rows.contains_key(&o.name) {
            o.stale_row = true;
        }
    }
    let mut known_bytes: HashMap<&str, u64> = HashMap::new();
    for s in collections.iter().flat_map(|c| c.segments.iter()) {
        if let Some(b) = s.dir_bytes {
            known_bytes.insert(&s.id, b);
        }
    }
    for o in &orphan_segment_dirs {
        known_bytes.insert(&o.name, o.bytes);
    }
    let dir_bytes = top.total_bytes(dir, &known_bytes);
    drop(known_bytes);
    for o in &orphan_segment_dirs {
        warnings.push(format!(
            "folder {} looks like a segment folder but no segment uses it ({}{}){}",
            o.name,
            crate::units::bytes(o.bytes),
            if o.stale_row {
                "; only a stale max_seq_id row, left by the release that deleted it, names it"
            } else {
                ""
            },
            o.keep
                .as_ref()
                .map(|k| format!(": {k}"))
                .unwrap_or_else(|| "; prune --orphan-dirs reclaims it".into())
        ));
    }
    let leftover = dir.join(super::NEW_FILE);
    if let Ok(m) = std::fs::symlink_metadata(&leftover) {
        warnings.push(format!(
            "{} ({}) was left by an interrupted chroma-wal prune; the next prune removes it",
            super::NEW_FILE,
            crate::units::bytes(m.len())
        ));
    }
    let mut holders = procs::find(dir);
    if let Some(n) = &holders.note {
        warnings.push(n.clone());
    }
    if writing == Some(true) && holders.list.is_empty() {
        holders.unseen_writer = true;
    }
    // Said last, after the folders' warnings (the order `info` has always printed).
    if let Some(b) = &snap.schema.prune_blocker {
        warnings.push(format!("browse only: {b}"));
    }
    snap.sizes = Sizes::with_dir_bytes(dir, dir_bytes);
    snap.holders = holders;
    snap.orphan_segment_dirs = orphan_segment_dirs;
    snap.pending = pending;
}
