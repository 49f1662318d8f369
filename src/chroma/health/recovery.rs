//! What to do about a damaged segment, in words, era by era.

use crate::chroma::replay::{self, DirFacts};

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
