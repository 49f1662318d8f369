//! `info --json`, written while it is made. A dir of 20,000 collections makes 40 MB of JSON; a
//! tree of `serde_json::Value`s for it cost about ten times that in memory and half a second in
//! the allocator. Each object here borrows from the snapshot and is serialized in place.
//!
//! Keys are declared in alphabetical order: that is the order `serde_json::Value` printed them
//! in before, and scripts and diffs of earlier output keep working.

use std::io::Write;

use serde::ser::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::chroma::truth::IndexTruth;
use crate::chroma::{Bound, Collection, Segment, Snapshot, TopicOwner, TopicStats, WalStats};
use crate::report::{collection_wal, main_topic};

/// What the command adds beside the snapshot and the counts.
pub struct InfoExtras {
    pub counts_may_lag: bool,
    pub live_note: Option<String>,
    pub backups: Value,
    pub space: Value,
}

/// Write `info --json` (pretty-printed, then a newline) to `out`.
pub fn write_info_json(
    out: impl Write,
    snap: &Snapshot,
    wal: &WalStats,
    extras: &InfoExtras,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let doc = info(snap, wal, extras);
    serde_json::to_writer_pretty(&mut out, &doc).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The document as a `Value` (tests and small dirs; the command streams it).
pub fn info_value(snap: &Snapshot, wal: &WalStats, extras: &InfoExtras) -> Value {
    serde_json::to_value(info(snap, wal, extras)).unwrap_or(Value::Null)
}

fn info<'a>(snap: &'a Snapshot, wal: &'a WalStats, extras: &'a InfoExtras) -> Info<'a> {
    Info {
        automatically_purge: snap.automatically_purge,
        backups: &extras.backups,
        chroma_wal_version: env!("CARGO_PKG_VERSION"),
        collections: Collections { snap, wal },
        counts_may_lag: extras.counts_may_lag,
        dir_bytes: snap.sizes.dir,
        free_bytes: snap.free_bytes(),
        holders: snap
            .holders
            .list
            .iter()
            .map(|h| json!({"pid": h.pid, "command": h.command}))
            .collect(),
        holders_checked: snap.holders.checked,
        journal_bytes: snap.sizes.journal,
        journal_hot: snap.sizes.journal_hot,
        live_note: extras.live_note.as_deref(),
        orphan_segment_dirs: OrphanDirs(snap),
        orphan_topics: OrphanTopics(wal),
        persist_dir: snap.persist_dir.display().to_string(),
        prunable_bytes_estimate: wal.prunable_bytes(),
        prunable_rows: wal.prunable(),
        prune_blockers: snap.prune_blockers(),
        schema: schema_json(snap),
        shm_bytes: snap.sizes.shm,
        space: &extras.space,
        sqlite_bytes: snap.sizes.sqlite,
        wal_file_bytes: snap.sizes.wal,
        wal_max_seq_id: snap.wal_max_seq_id,
        wal_rows: wal.rows(),
        wal_topics: Topics { snap, wal },
        warnings: &snap.warnings,
    }
}

fn schema_json(snap: &Snapshot) -> Value {
    let s = &snap.schema;
    json!({
        "era": s.era.key(),
        "era_label": s.era.label(),
        "migrations": s.migrations,
        "journal_mode": s.journal_mode,
        "page_size": s.page_size,
        "prune_allowed": s.prune_blocker.is_none(),
        "prune_blocker": s.prune_blocker,
        "releases": s.releases().map(|r| json!({"first": r.first, "last": r.last})),
        "releases_note": s.releases_sentence(),
    })
}

#[derive(serde::Serialize)]
struct Info<'a> {
    automatically_purge: Option<bool>,
    backups: &'a Value,
    chroma_wal_version: &'static str,
    collections: Collections<'a>,
    counts_may_lag: bool,
    dir_bytes: u64,
    free_bytes: u64,
    holders: Vec<Value>,
    holders_checked: bool,
    journal_bytes: Option<u64>,
    journal_hot: bool,
    live_note: Option<&'a str>,
    orphan_segment_dirs: OrphanDirs<'a>,
    orphan_topics: OrphanTopics<'a>,
    persist_dir: String,
    prunable_bytes_estimate: u64,
    prunable_rows: u64,
    prune_blockers: Vec<String>,
    schema: Value,
    shm_bytes: Option<u64>,
    space: &'a Value,
    sqlite_bytes: u64,
    wal_file_bytes: Option<u64>,
    wal_max_seq_id: Option<i64>,
    wal_rows: u64,
    wal_topics: Topics<'a>,
    warnings: &'a [String],
}

/// The collections, each made as it is written.
struct Collections<'a> {
    snap: &'a Snapshot,
    wal: &'a WalStats,
}

impl Serialize for Collections<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.snap
                .collections
                .iter()
                .enumerate()
                .map(|(i, c)| collection(c, self.wal, i)),
        )
    }
}

#[derive(serde::Serialize)]
struct CollectionJson<'a> {
    database: Option<&'a str>,
    dimension: Option<i64>,
    health: &'static str,
    held_rows: u64,
    id: &'a str,
    index_truth: Option<TruthJson<'a>>,
    name: &'a str,
    prunable_bytes_estimate: u64,
    prunable_rows: u64,
    prune_bound: Option<i64>,
    recovery: Option<&'a str>,
    /// A damaged collection: what `compact --repair` would do now (its dry run).
    repair: Option<&'a crate::chroma::preview::RepairPreview>,
    segments: Vec<SegmentJson<'a>>,
    status: String,
    tenant: Option<&'a str>,
    topic: String,
    topics: Vec<&'a str>,
    wal_rows: u64,
}

fn collection<'a>(c: &'a Collection, wal: &'a WalStats, i: usize) -> CollectionJson<'a> {
    let cw = collection_wal(wal, i);
    CollectionJson {
        database: c.database.as_deref(),
        dimension: c.dimension,
        health: c.health(),
        held_rows: cw.rows - cw.prunable,
        id: &c.id,
        index_truth: c.truth.as_deref().map(truth),
        name: &c.name,
        prunable_bytes_estimate: cw.prunable_bytes,
        prunable_rows: cw.prunable,
        prune_bound: c.bound.value(),
        recovery: match &c.bound {
            Bound::Damaged { recovery, .. } => Some(recovery),
            _ => None,
        },
        repair: c.repair.as_deref(),
        segments: c.segments.iter().map(segment).collect(),
        status: c.status(),
        tenant: c.tenant.as_deref(),
        topic: main_topic(c, &cw),
        wal_rows: cw.rows,
        topics: cw.topics,
    }
}

/// `index_truth` (`info --deep`): the contract in `docs/` and the README.
#[derive(serde::Serialize)]
struct TruthJson<'a> {
    ghost_bytes: Option<u64>,
    ghosts: Option<u64>,
    ghosts_on_disk: Option<u64>,
    in_index: Option<u64>,
    missing: Option<u64>,
    missing_sample: &'a [String],
    note: Option<&'a str>,
    rebuild_after_prune: Option<&'static str>,
    rebuild_from_wal: &'static str,
    rebuild_loses: Option<u64>,
    records: u64,
    stale_ids: Option<u64>,
}

fn truth(t: &IndexTruth) -> TruthJson<'_> {
    TruthJson {
        ghost_bytes: t.ghost_bytes,
        ghosts: t.ghosts,
        ghosts_on_disk: t.ghosts_on_disk,
        in_index: t.in_index,
        missing: t.missing(),
        missing_sample: &t.missing_sample,
        note: t.note.as_deref(),
        rebuild_after_prune: t.rebuild_after_prune.map(|r| r.key()),
        rebuild_from_wal: t.rebuild.key(),
        rebuild_loses: t.rebuild.loses(),
        records: t.records,
        stale_ids: t.stale_ids,
    }
}

#[derive(serde::Serialize)]
struct SegmentJson<'a> {
    dir_bytes: Option<u64>,
    health: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<IndexJson<'a>>,
    max_seq_id: Option<i64>,
    max_seq_id_source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pickle: Option<PickleJson<'a>>,
    problem: Option<&'a str>,
    scope: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(serde::Serialize)]
struct IndexJson<'a> {
    deleted: Option<u64>,
    dimensionality: Option<u64>,
    elements: Option<u64>,
    files: &'a std::collections::BTreeMap<String, u64>,
    /// The bytes `link_lists.bin` takes on disk (a sparse file takes fewer than its length).
    link_lists_allocated: Option<u64>,
    max_elements: Option<u64>,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum PickleJson<'a> {
    Readable {
        bytes: u64,
        labels: Option<u64>,
        readable: bool,
        shape: &'static str,
    },
    Unreadable {
        problem: &'a str,
        readable: bool,
    },
}

fn segment(s: &Segment) -> SegmentJson<'_> {
    SegmentJson {
        dir_bytes: s.dir_bytes,
        health: s.health.key(),
        id: &s.id,
        index: s.index.as_ref().map(|f| {
            let h = f.parsed();
            IndexJson {
                deleted: f.deleted,
                dimensionality: h.map(|h| h.dimensionality()),
                elements: h.map(|h| h.cur_element_count),
                files: &f.files,
                link_lists_allocated: f.links_allocated,
                max_elements: h.map(|h| h.max_elements),
            }
        }),
        max_seq_id: s.max_seq_id,
        max_seq_id_source: s.source.key(),
        pickle: s.pickle.as_ref().map(|p| match p {
            Ok(p) => PickleJson::Readable {
                bytes: p.bytes,
                labels: p.labels,
                readable: true,
                shape: p.shape.key(),
            },
            Err(why) => PickleJson::Unreadable {
                problem: why,
                readable: false,
            },
        }),
        problem: s.problem.as_deref(),
        scope: &s.scope,
        kind: &s.kind,
    }
}

/// Every WAL topic, with its owner's id.
struct Topics<'a> {
    snap: &'a Snapshot,
    wal: &'a WalStats,
}

#[derive(serde::Serialize)]
struct TopicJson<'a> {
    bytes_estimate: u64,
    collection_id: Option<&'a str>,
    held_rows: u64,
    max_seq_id: i64,
    min_seq_id: i64,
    orphan: bool,
    prunable_rows: u64,
    prune_bound: Option<i64>,
    topic: &'a str,
    wal_rows: u64,
}

impl Serialize for Topics<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.wal.topics.iter().map(|t| TopicJson {
            bytes_estimate: t.bytes,
            collection_id: match t.owner {
                TopicOwner::Collection(i) => self.snap.collections.get(i).map(|c| c.id.as_str()),
                TopicOwner::Orphan => None,
            },
            held_rows: t.held(),
            max_seq_id: t.max_seq_id,
            min_seq_id: t.min_seq_id,
            orphan: t.owner == TopicOwner::Orphan,
            prunable_rows: t.prunable,
            prune_bound: t.bound,
            topic: &t.topic,
            wal_rows: t.rows,
        }))
    }
}

/// The topics no collection reads any more.
struct OrphanTopics<'a>(&'a WalStats);

#[derive(serde::Serialize)]
struct OrphanTopicJson<'a> {
    max_seq_id: i64,
    min_seq_id: i64,
    prunable_rows: u64,
    prune_bound: Option<i64>,
    topic: &'a str,
    wal_rows: u64,
}

impl Serialize for OrphanTopics<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.orphans().map(|t: &TopicStats| OrphanTopicJson {
            max_seq_id: t.max_seq_id,
            min_seq_id: t.min_seq_id,
            prunable_rows: t.prunable,
            prune_bound: t.bound,
            topic: &t.topic,
            wal_rows: t.rows,
        }))
    }
}

/// Segment-looking folders no segment uses.
struct OrphanDirs<'a>(&'a Snapshot);

#[derive(serde::Serialize)]
struct OrphanDirJson<'a> {
    bytes: u64,
    keep_reason: Option<&'a str>,
    name: &'a str,
    path: String,
    reclaimable: bool,
    stale_max_seq_id_row: bool,
}

impl Serialize for OrphanDirs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.orphan_segment_dirs.iter().map(|o| OrphanDirJson {
            bytes: o.bytes,
            keep_reason: o.keep.as_deref(),
            name: &o.name,
            path: o.path.display().to_string(),
            reclaimable: o.reclaimable(),
            stale_max_seq_id_row: o.stale_row,
        }))
    }
}
