//! A segment's health: a verdict computed from facts already read (the recorded position, the
//! pickle, the index folder, the WAL's highest seq_id), never a side effect of reading them.
//!
//! The rule it serves: the WAL is the recovery path. A collection whose index Chroma could not
//! load, or whose recorded position is impossible, keeps its whole WAL.

use super::hnsw::links::Links;
use super::hnsw::{Header, IndexFolder};
use super::pickle::{PickleFacts, Shape};
use super::schema::Era;

mod reason;
mod recovery;

pub use reason::{Part, Reason};
pub use recovery::recovery;

/// Can Chroma read the index correctly? The first of the verdict's two questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    /// It loads, and serves every record.
    Ok,
    /// No index persisted yet: the normal state below `hnsw:sync_threshold`.
    NotPersisted,
    /// Chroma loads the files, but some records are in no index it can read (their ids map
    /// to elements deleted or absent, or the index lacks them): get() fails for them and no
    /// query returns them.
    Incomplete(Reason),
    /// Chroma cannot load the index files.
    Unloadable(Reason),
}

/// Must the collection keep its whole WAL? The verdict's second question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wal {
    /// No: the purge rule's bound applies.
    Bounded,
    /// Yes: Chroma cannot read the index correctly ([`Load::Incomplete`], [`Load::Unloadable`])
    /// and rebuilds it from the WAL.
    WholeToRebuild,
    /// Yes, for an index Chroma loads: what it serves lives in the WAL beyond what the
    /// recorded position says (1.x replays an index it never persisted from seq_id 0; a
    /// position above the WAL's top). It reads correctly while the whole WAL stays.
    WholeToReplay(Reason),
}

/// The verdict on one segment: one answer per question. Built only by its constructors, so
/// the two answers agree (an index Chroma cannot read keeps its whole WAL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    load: Load,
    wal: Wal,
}

impl Health {
    pub const OK: Health = Health {
        load: Load::Ok,
        wal: Wal::Bounded,
    };
    pub const NOT_PERSISTED: Health = Health {
        load: Load::NotPersisted,
        wal: Wal::Bounded,
    };

    /// Chroma loads it, from the WAL beyond its position.
    pub fn replays(why: Reason) -> Health {
        Health {
            load: Load::Ok,
            wal: Wal::WholeToReplay(why),
        }
    }

    /// Chroma loads it, and some records are in no index it can read.
    pub fn incomplete(why: Reason) -> Health {
        Health {
            load: Load::Incomplete(why),
            wal: Wal::WholeToRebuild,
        }
    }

    /// Chroma cannot load it.
    pub fn damaged(why: Reason) -> Health {
        Health {
            load: Load::Unloadable(why),
            wal: Wal::WholeToRebuild,
        }
    }

    /// Can Chroma read it correctly.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// Must the WAL stay whole.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// `ok`, `not_persisted`, `keeps_wal` or `damaged`: both answers in one word.
    pub fn key(&self) -> &'static str {
        match (&self.load, &self.wal) {
            (Load::Incomplete(_) | Load::Unloadable(_), _) => "damaged",
            (_, Wal::WholeToReplay(_) | Wal::WholeToRebuild) => "keeps_wal",
            (Load::NotPersisted, Wal::Bounded) => "not_persisted",
            (Load::Ok, Wal::Bounded) => "ok",
        }
    }

    /// Chroma cannot read this index correctly.
    pub fn is_damaged(&self) -> bool {
        self.reason().is_some()
    }

    /// Chroma cannot load the index files at all (the reason), as opposed to loading them
    /// and missing records.
    pub fn unloadable(&self) -> Option<&Reason> {
        match &self.load {
            Load::Unloadable(r) => Some(r),
            _ => None,
        }
    }

    /// The collection must keep its whole WAL.
    pub fn keeps_whole_wal(&self) -> bool {
        self.wal != Wal::Bounded
    }

    /// Why Chroma cannot read it correctly (`None`: it can).
    pub fn reason(&self) -> Option<&Reason> {
        match &self.load {
            Load::Unloadable(r) | Load::Incomplete(r) => Some(r),
            Load::Ok | Load::NotPersisted => None,
        }
    }

    /// Why the whole WAL must stay, for an index that loads (`None`: no such reason).
    pub fn replayed(&self) -> Option<&Reason> {
        match &self.wal {
            Wal::WholeToReplay(r) => Some(r),
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
    match impossible {
        Some(position) if files.unloadable().is_none() => {
            Health::replays(Reason::PositionAboveWal {
                position,
                wal_max: f.wal_max,
            })
        }
        _ => files,
    }
}

/// A vector segment with a recorded position whose folder or pickle is missing (or whose
/// pickle names no label). 1.x loads it as uninitialized and replays every row still in the
/// WAL into an empty index (the files are not read until it persists again): it serves what
/// the WAL holds. Python releases replay only above the position: the index lacks the rest.
fn without(f: &Facts<'_>, part: Part) -> Health {
    if f.era == Era::V1 {
        Health::replays(Reason::ReplayedFromZero(part))
    } else {
        Health::damaged(Reason::Missing(part))
    }
}

/// The verdict on the segment's own files, whatever the WAL holds.
fn judge_files(f: &Facts<'_>) -> Health {
    if f.scope != "VECTOR" || !f.persisted_kind {
        return if f.position.is_some() {
            Health::OK
        } else {
            Health::NOT_PERSISTED
        };
    }
    let recorded = f.position.is_some_and(|p| p > 0);
    let folder = match f.folder {
        None if recorded => return without(f, Part::Folder),
        None => return Health::NOT_PERSISTED,
        Some(Err(e)) => return Health::damaged(Reason::FolderUnreadable(e.clone())),
        Some(Ok(folder)) => folder,
    };
    if let Some(Err(why)) = f.pickle {
        return Health::damaged(Reason::PickleUnreadable(why.clone()));
    }
    let pickle = f.pickle.and_then(|p| p.as_ref().ok());
    if recorded && f.era == Era::V1 {
        match pickle {
            None => return without(f, Part::Pickle),
            Some(p) if p.labels == Some(0) => return without(f, Part::Labels),
            _ => {}
        }
    }
    let header: Option<&Header> = match &folder.header {
        Some(Err(why)) => return Health::damaged(Reason::Header(why.clone())),
        Some(Ok(h)) => Some(h),
        None if pickle.is_some() || recorded => return Health::damaged(Reason::HeaderMissing),
        None => None,
    };
    if let Some(why) = header.and_then(|h| judge_index(f, folder, h, pickle, recorded)) {
        return Health::damaged(why);
    }
    if pickle.is_none() && !recorded {
        Health::NOT_PERSISTED
    } else if pickle.is_none() {
        without(f, Part::Pickle)
    } else {
        Health::OK
    }
}

/// What is wrong with a folder's index files and pickle, read against its header.
fn judge_index(
    f: &Facts<'_>,
    folder: &IndexFolder,
    h: &Header,
    pickle: Option<&PickleFacts>,
    recorded: bool,
) -> Option<Reason> {
    if let Some(why) = h.implausible() {
        return Some(Reason::Header(why));
    }
    // Only a persisted index must be whole; an unpersisted folder holds hnswlib's
    // empty files (and Chroma ignores them without a pickle).
    if pickle.is_some() || recorded {
        if let Some(short) = folder.short_file(h) {
            return Some(Reason::Short(short));
        }
        match f.links {
            Some(Err(why)) => return Some(Reason::Links(why.clone())),
            Some(Ok(l)) => {
                if let Some(why) = l.disagreement(h) {
                    return Some(Reason::Links(why));
                }
            }
            None => {}
        }
    }
    let p = pickle?;
    if let Some(why) = added_disagrees(h, p) {
        return Some(why);
    }
    let elements = h.cur_element_count;
    if let Some(labels) = p.labels.filter(|&l| l > elements) {
        return Some(Reason::LabelsAboveElements { labels, elements });
    }
    match p.dimensionality {
        // Python's loader builds the index with this dimension: None crashes it.
        Some(None)
            if p.shape == Shape::PersistentData && (elements > 0 || p.labels.unwrap_or(0) > 0) =>
        {
            Some(Reason::DimensionalityNone)
        }
        Some(Some(d)) if elements > 0 && d as u64 != h.dimensionality() => {
            Some(Reason::DimensionalityDiffers {
                pickle: d,
                index: h.dimensionality(),
            })
        }
        _ => None,
    }
}

/// The pickle's `total_elements_added` against the header's element count. Chroma writes the
/// index files first and the pickle after them, so an index with more elements than its
/// pickle says were ever added was persisted without its pickle (a crash mid-persist), and
/// its newest elements have labels the pickle does not know. The other way round is no sign
/// of damage: Python releases count a delete and re-add of an id in one batch (its label
/// reused, no new element) as an add, and `chops hnsw rebuild` sets the count to the capacity.
fn added_disagrees(h: &Header, p: &PickleFacts) -> Option<Reason> {
    let added = u64::try_from(p.total_elements_added?).ok()?;
    let elements = h.cur_element_count;
    (elements > added).then_some(Reason::PersistedWithoutPickle { elements, added })
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
            Health::OK
        );
        assert_eq!(
            judge(&facts(None, None, Some(&folder(0, 172_000)))),
            Health::NOT_PERSISTED
        );
        assert_eq!(judge(&facts(None, None, None)), Health::NOT_PERSISTED);
        assert_eq!(
            judge(&facts(Some(50), Some(&ok_p), None)).load(),
            &Load::Unloadable(Reason::Missing(Part::Folder))
        );
        // A position above the WAL's top: Chroma loads the index; the whole WAL stays.
        let above = judge(&facts(Some(101), Some(&ok_p), Some(&ok_f)));
        assert_eq!(above.load(), &Load::Ok);
        assert_eq!(
            above.wal(),
            &Wal::WholeToReplay(Reason::PositionAboveWal {
                position: 101,
                wal_max: Some(100)
            })
        );
        assert!(above
            .replayed()
            .unwrap()
            .to_string()
            .contains("above the WAL's highest seq_id (100)"));
        // Damaged files win over an impossible position.
        let cut_above = Err("is cut short at byte 9".to_string());
        let both = judge(&facts(Some(101), Some(&cut_above), Some(&ok_f)));
        assert!(both.unloadable().is_some() && both.wal() == &Wal::WholeToRebuild);
        // A missing pickle while a position is recorded: 1.x replays from 0, the Python
        // releases above the position.
        let mut v1 = facts(Some(50), None, Some(&ok_f));
        assert_eq!(judge(&v1), Health::damaged(Reason::Missing(Part::Pickle)));
        v1.era = Era::V1;
        assert_eq!(
            judge(&v1),
            Health::replays(Reason::ReplayedFromZero(Part::Pickle))
        );
        v1.folder = None;
        assert_eq!(judge(&v1).key(), "keeps_wal");
        let cut = Err("is cut short at byte 9".to_string());
        assert!(judge(&facts(Some(50), Some(&cut), Some(&ok_f)))
            .reason()
            .unwrap()
            .to_string()
            .contains("cut short"));
        let short = folder(300, 40_000);
        assert_eq!(
            judge(&facts(Some(50), Some(&ok_p), Some(&short))).reason(),
            Some(&Reason::Short(crate::chroma::hnsw::ShortFile {
                file: "data_level0.bin",
                bytes: Some(40_000),
                need: 300 * 172,
                elements: 300
            }))
        );
        let too_many = pickle(301, Some(8));
        assert_eq!(
            judge(&facts(Some(50), Some(&too_many), Some(&ok_f))).reason(),
            Some(&Reason::LabelsAboveElements {
                labels: 301,
                elements: 300
            })
        );
        let none_dim = pickle(280, None);
        assert_eq!(
            judge(&facts(Some(50), Some(&none_dim), Some(&ok_f))).reason(),
            Some(&Reason::DimensionalityNone)
        );
        let wrong_dim = pickle(280, Some(16));
        assert_eq!(
            judge(&facts(Some(50), Some(&wrong_dim), Some(&ok_f))).reason(),
            Some(&Reason::DimensionalityDiffers {
                pickle: 16,
                index: 8
            })
        );
    }

    #[test]
    fn an_index_persisted_without_its_pickle() {
        let mut p = pickle(280, Some(8));
        if let Ok(p) = &mut p {
            p.total_elements_added = Some(299);
        }
        let f = folder(300, 172_000);
        assert_eq!(
            judge(&facts(Some(50), Some(&p), Some(&f))),
            Health::damaged(Reason::PersistedWithoutPickle {
                elements: 300,
                added: 299
            })
        );
    }
}
