//! A segment's health: a verdict computed from facts already read (the recorded position, the
//! pickle, the index folder, the WAL's highest seq_id), never a side effect of reading them.
//!
//! The rule it serves: the WAL is the recovery path. A collection whose index Chroma could not
//! load, or whose recorded position is impossible, keeps its whole WAL.

use super::hnsw::links::Links;
use super::hnsw::{Header, IndexFolder};
use super::pickle::{PickleFacts, Shape};
use super::replay::{self, DirFacts};
use super::schema::Era;

/// The verdict on one segment. Two questions, two answers: can Chroma read the index
/// correctly ([`Health::Damaged`], [`Health::Incomplete`]), and must the collection keep its
/// whole WAL ([`Health::keeps_whole_wal`], true for those and for [`Health::Replays`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// No index persisted yet: the normal state below `hnsw:sync_threshold`.
    NotPersisted,
    /// Chroma loads it, but what it serves lives in the WAL beyond what the recorded position
    /// says (1.x replays an index it never persisted from seq_id 0; a position above the
    /// WAL's top): it reads correctly while the whole WAL stays. The reason.
    Replays(String),
    /// Chroma loads the files, but some records are in no index it can read (their ids map to
    /// elements deleted or absent, or the index lacks them): get() fails for them and no
    /// query returns them. The reason.
    Incomplete(String),
    /// Chroma cannot load it; the reason.
    Damaged(String),
}

impl Health {
    pub fn key(&self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::NotPersisted => "not_persisted",
            Health::Replays(_) => "keeps_wal",
            Health::Incomplete(_) | Health::Damaged(_) => "damaged",
        }
    }

    /// Chroma cannot read this index correctly.
    pub fn is_damaged(&self) -> bool {
        matches!(self, Health::Damaged(_) | Health::Incomplete(_))
    }

    /// Chroma cannot load the index files at all (the reason), as opposed to loading them
    /// and missing records.
    pub fn unloadable(&self) -> Option<&str> {
        match self {
            Health::Damaged(r) => Some(r),
            _ => None,
        }
    }

    /// The collection must keep its whole WAL.
    pub fn keeps_whole_wal(&self) -> bool {
        matches!(
            self,
            Health::Damaged(_) | Health::Incomplete(_) | Health::Replays(_)
        )
    }

    /// Why it is damaged (`None`: it is not).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Health::Damaged(r) | Health::Incomplete(r) => Some(r),
            _ => None,
        }
    }

    /// Why the whole WAL must stay, for an index that loads (`None`: no such reason).
    pub fn replays(&self) -> Option<&str> {
        match self {
            Health::Replays(r) => Some(r),
            _ => None,
        }
    }
}

/// What the verdict needs of the dir beside the segment: the WAL's highest seq_id (`None`:
/// the WAL is empty) and the era.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirView {
    pub wal_max: Option<i64>,
    pub era: Era,
}

/// Everything the verdict on a segment looks at.
pub struct Facts<'a> {
    /// `VECTOR` or `METADATA`.
    pub scope: &'a str,
    /// An HNSW segment that persists to a folder (the others have no folder to judge).
    pub persisted_kind: bool,
    /// The position Chroma recorded for the segment (sqlite row, else pickle), if any.
    pub position: Option<i64>,
    /// `index_metadata.pickle`: absent (`None`), unreadable (`Some(Err)`), or its facts.
    pub pickle: Option<&'a Result<PickleFacts, String>>,
    /// The folder, when it exists (`Err`: it could not be listed).
    pub folder: Option<&'a Result<IndexFolder, String>>,
    /// The highest seq_id in the WAL (`None`: the WAL is empty).
    pub wal_max: Option<i64>,
    /// `link_lists.bin` walked as hnswlib loads it ([`super::hnsw::links::walk`]), for a
    /// persisted index whose header is plausible and whose files are long enough.
    pub links: Option<&'a Result<Links, String>>,
    /// The dir's era: 1.x loads an index without a pickle by replaying the WAL from 0.
    pub era: Era,
}

/// Whether the folder's index must be whole: Chroma loads it (it has a pickle, or a position
/// is recorded). An unpersisted folder holds hnswlib's empty files, and Chroma ignores them.
pub fn must_be_whole(pickle_present: bool, position: Option<i64>) -> bool {
    pickle_present || position.is_some_and(|p| p > 0)
}

/// Judge one segment.
pub fn judge(f: &Facts<'_>) -> Health {
    let files = judge_files(f);
    let impossible = f.position.filter(|&p| match f.wal_max {
        Some(top) => p > top,
        None => p > 0,
    });
    match (files, impossible) {
        (h @ Health::Damaged(_), _) => h,
        (_, Some(p)) => Health::Replays(format!(
            "its recorded position {p} is above the WAL's highest seq_id ({}): Chroma loads \
             the index, but would hand out seq_ids it believes it has applied",
            f.wal_max
                .map(|m| m.to_string())
                .unwrap_or_else(|| "none, the WAL is empty".into())
        )),
        (h, None) => h,
    }
}

/// A vector segment with a recorded position whose folder or pickle is missing (or whose
/// pickle names no label). 1.x loads it as uninitialized and replays every row still in the
/// WAL into an empty index (the files are not read until it persists again): it serves what
/// the WAL holds. Python releases replay only above the position: the index lacks the rest.
fn without_files(f: &Facts<'_>, why: &str) -> Health {
    if f.era == Era::V1 {
        Health::Replays(format!(
            "{why}: Chroma 1.x loads it by replaying every row of the collection still in the \
             WAL from seq_id 0"
        ))
    } else {
        Health::Damaged(why.to_string())
    }
}

/// The verdict on the segment's own files, whatever the WAL holds.
fn judge_files(f: &Facts<'_>) -> Health {
    if f.scope != "VECTOR" || !f.persisted_kind {
        return if f.position.is_some() {
            Health::Ok
        } else {
            Health::NotPersisted
        };
    }
    let recorded = f.position.is_some_and(|p| p > 0);
    let folder = match f.folder {
        None if recorded => {
            return without_files(
                f,
                "its index folder is missing while a position is recorded",
            )
        }
        None => return Health::NotPersisted,
        Some(Err(e)) => return Health::Damaged(format!("its index folder cannot be read: {e}")),
        Some(Ok(folder)) => folder,
    };
    if let Some(Err(why)) = f.pickle {
        return Health::Damaged(format!("index_metadata.pickle {why}"));
    }
    let pickle = f.pickle.and_then(|p| p.as_ref().ok());
    if recorded && f.era == Era::V1 {
        match pickle {
            None => {
                return without_files(
                    f,
                    "index_metadata.pickle is missing while a position is recorded",
                )
            }
            Some(p) if p.labels == Some(0) => {
                return without_files(f, "index_metadata.pickle names no vector")
            }
            _ => {}
        }
    }
    let header: Option<&Header> = match &folder.header {
        Some(Err(why)) => return Health::Damaged(why.clone()),
        Some(Ok(h)) => Some(h),
        None if pickle.is_some() || recorded => {
            return Health::Damaged("header.bin is missing".into())
        }
        None => None,
    };
    if let Some(h) = header {
        if let Some(why) = h.implausible() {
            return Health::Damaged(why);
        }
        // Only a persisted index must be whole; an unpersisted folder holds hnswlib's
        // empty files (and Chroma ignores them without a pickle).
        if pickle.is_some() || recorded {
            if let Some(why) = folder.short_file(h) {
                return Health::Damaged(why);
            }
            match f.links {
                Some(Err(why)) => return Health::Damaged(why.clone()),
                Some(Ok(l)) => {
                    if let Some(why) = l.disagreement(h) {
                        return Health::Damaged(why);
                    }
                }
                None => {}
            }
        }
        if let Some(p) = pickle {
            if let Some(why) = added_disagrees(h, p) {
                return Health::Damaged(why);
            }
            if let Some(labels) = p.labels {
                if labels > h.cur_element_count {
                    return Health::Damaged(format!(
                        "index_metadata.pickle names {labels} vectors but the index holds {} elements",
                        h.cur_element_count
                    ));
                }
            }
            match p.dimensionality {
                // Python's loader builds the index with this dimension: None crashes it.
                Some(None)
                    if p.shape == Shape::PersistentData
                        && (h.cur_element_count > 0 || p.labels.unwrap_or(0) > 0) =>
                {
                    return Health::Damaged(
                        "index_metadata.pickle has dimensionality None while the index has elements"
                            .into(),
                    )
                }
                Some(Some(d)) if h.cur_element_count > 0 && d as u64 != h.dimensionality() => {
                    return Health::Damaged(format!(
                        "index_metadata.pickle says dimensionality {d}, the index is laid out for {}",
                        h.dimensionality()
                    ))
                }
                _ => {}
            }
        }
    }
    if pickle.is_none() && !recorded {
        Health::NotPersisted
    } else if pickle.is_none() {
        without_files(
            f,
            "index_metadata.pickle is missing while a position is recorded",
        )
    } else {
        Health::Ok
    }
}

/// The pickle's `total_elements_added` against the header's element count. Chroma writes the
/// index files first and the pickle after them, so an index with more elements than its
/// pickle says were ever added was persisted without its pickle (a crash mid-persist), and
/// its newest elements have labels the pickle does not know. The other way round is no sign
/// of damage: Python releases count a delete and re-add of an id in one batch (its label
/// reused, no new element) as an add, and `chops hnsw rebuild` sets the count to the capacity.
fn added_disagrees(h: &Header, p: &PickleFacts) -> Option<String> {
    let added = u64::try_from(p.total_elements_added?).ok()?;
    let n = h.cur_element_count;
    (n > added).then(|| {
        format!(
            "header.bin counts {n} elements but index_metadata.pickle says only {added} were \
             ever added: the index was persisted and its pickle was not (a crash mid-persist)"
        )
    })
}

/// What to do about a damaged segment, in words: what the release that wrote the dir needs
/// to rebuild it from the WAL ([`replay`]), and what such a rebuild cannot bring back.
/// `row`: the segment's `max_seq_id` row, when the table has one.
pub fn recovery(segment_id: &str, row: Option<i64>, dir: &DirFacts) -> String {
    let era = dir.era.label();
    let purged = if replay::purged(dir) {
        " Automatic purging is on in this dir, so the WAL no longer holds the rows Chroma had \
         already applied: the rebuilt index leaves those records out of every query while \
         count() still counts them. Unless the WAL is known to be whole, re-add them from your \
         own source after the rebuild"
    } else {
        " If this collection's WAL was ever pruned, the records of the pruned rows come back in \
         no query: re-add them from your own source"
    };
    match replay::rebuild_start(dir, row) {
        replay::RebuildStart::EveryRow => format!(
            "stop Chroma, keep a backup, remove the folder {segment_id}/ and start Chroma: {era} \
             rebuilds the index from every row of this collection still in the WAL, which \
             chroma-wal keeps whole for it.{purged}"
        ),
        replay::RebuildStart::AfterRow(at) => format!(
            "stop Chroma, keep a backup, then remove the folder {segment_id}/ AND its row in \
             chroma.sqlite3 (DELETE FROM max_seq_id WHERE segment_id = '{segment_id}'; \
             chroma-wal never edits that table), and start Chroma. With the row left in place, \
             {era} replays nothing at or below seq_id {at} and every record written before \
             it drops out of the index.{purged}"
        ),
        replay::RebuildStart::Unknown => format!(
            "stop Chroma and keep a backup; chroma-wal does not know how a release newer than \
             1.5 rebuilds an index, so it keeps the whole WAL. Removing the folder \
             {segment_id}/ makes 1.x rebuild from the rows still in the WAL"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chroma::pickle::PickleSeqId;
    use std::collections::BTreeMap;

    fn header(cur: u64) -> Header {
        Header {
            version: 1,
            offset_level0: 0,
            max_elements: 1000,
            cur_element_count: cur,
            size_data_per_element: 172,
            label_offset: 164,
            offset_data: 132,
            maxlevel: 1,
            enterpoint_node: 0,
            max_m: 16,
            max_m0: 32,
            m: 16,
            mult: 0.36,
            ef_construction: 100,
        }
    }

    fn folder(cur: u64, dl0: u64) -> Result<IndexFolder, String> {
        let mut files = BTreeMap::new();
        files.insert("header.bin".to_string(), 100);
        files.insert("data_level0.bin".to_string(), dl0);
        files.insert("length.bin".to_string(), 4000);
        files.insert("link_lists.bin".to_string(), 4 * cur);
        Ok(IndexFolder {
            files,
            strangers: vec![],
            header: Some(Ok(header(cur))),
            deleted: None,
            links_allocated: None,
        })
    }

    fn pickle(labels: u64, dim: Option<i64>) -> Result<PickleFacts, String> {
        Ok(PickleFacts {
            shape: Shape::PersistentData,
            max_seq_id: PickleSeqId::Value(10),
            dimensionality: Some(dim),
            labels: Some(labels),
            total_elements_added: Some(300),
            bytes: 100,
        })
    }

    fn facts<'a>(
        position: Option<i64>,
        p: Option<&'a Result<PickleFacts, String>>,
        f: Option<&'a Result<IndexFolder, String>>,
    ) -> Facts<'a> {
        Facts {
            scope: "VECTOR",
            persisted_kind: true,
            position,
            pickle: p,
            folder: f,
            wal_max: Some(100),
            links: None,
            era: Era::V056,
        }
    }

    #[test]
    fn verdicts() {
        let ok_f = folder(300, 172_000);
        let ok_p = pickle(280, Some(8));
        assert_eq!(
            judge(&facts(Some(50), Some(&ok_p), Some(&ok_f))),
            Health::Ok
        );
        assert_eq!(
            judge(&facts(None, None, Some(&folder(0, 172_000)))),
            Health::NotPersisted
        );
        assert_eq!(judge(&facts(None, None, None)), Health::NotPersisted);
        assert!(judge(&facts(Some(50), Some(&ok_p), None)).is_damaged());
        // A position above the WAL's top: Chroma loads the index; the whole WAL stays.
        let above = judge(&facts(Some(101), Some(&ok_p), Some(&ok_f)));
        assert!(!above.is_damaged() && above.keeps_whole_wal(), "{above:?}");
        assert!(above
            .replays()
            .unwrap()
            .contains("above the WAL's highest seq_id (100)"));
        // Damaged files win over an impossible position.
        let cut_above = Err("is cut short at byte 9".to_string());
        assert!(judge(&facts(Some(101), Some(&cut_above), Some(&ok_f))).is_damaged());
        // A missing pickle while a position is recorded: 1.x replays from 0, the Python
        // releases above the position.
        let mut v1 = facts(Some(50), None, Some(&ok_f));
        assert!(judge(&v1).is_damaged());
        v1.era = Era::V1;
        let h = judge(&v1);
        assert!(!h.is_damaged() && h.keeps_whole_wal(), "{h:?}");
        v1.folder = None;
        assert_eq!(judge(&v1).key(), "keeps_wal");
        let cut = Err("is cut short at byte 9".to_string());
        assert!(judge(&facts(Some(50), Some(&cut), Some(&ok_f)))
            .reason()
            .unwrap()
            .contains("cut short"));
        let short = folder(300, 40_000);
        assert!(judge(&facts(Some(50), Some(&ok_p), Some(&short)))
            .reason()
            .unwrap()
            .contains("data_level0.bin"));
        let too_many = pickle(301, Some(8));
        assert!(judge(&facts(Some(50), Some(&too_many), Some(&ok_f))).is_damaged());
        let none_dim = pickle(280, None);
        assert!(judge(&facts(Some(50), Some(&none_dim), Some(&ok_f))).is_damaged());
        let wrong_dim = pickle(280, Some(16));
        assert!(judge(&facts(Some(50), Some(&wrong_dim), Some(&ok_f))).is_damaged());
    }
}
