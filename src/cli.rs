//! Command-line definitions (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::commands::check::CheckArgs;
pub use crate::commands::compact::CompactArgs;
pub use crate::commands::completions::CompletionsArgs;
pub use crate::commands::info::InfoArgs;
pub use crate::commands::prune::PruneArgs;
pub use crate::commands::records::RecordsArgs;
pub use crate::commands::restore::RestoreArgs;
pub use crate::commands::rows::RowsArgs;
pub use crate::commands::scrub::ScrubArgs;

const AFTER_HELP: &str = "\
Exit codes:
  0    ok
  1    error (one line on stderr)
  2    usage error
  3    refused for safety: Chroma holds the dir, hot journal, unknown schema,
       not enough disk, read-only dir, or no confirmation
  4    check: a collection's index is damaged (which, why, what a repair brings back)
  130  interrupted (Ctrl-C); the dir is left untouched or exactly pruned

Examples:
  chroma-wal                                 explore ./chroma, or the bundled demo dir
  chroma-wal --demo                          explore a copy of the bundled demo dir
  chroma-wal ./chroma                        explore a persist dir
  chroma-wal info ./chroma --json            describe it as JSON
  chroma-wal prune ./chroma --all --dry-run  show what would go
  chroma-wal prune ./chroma --collection docs --yes
  chroma-wal compact ./chroma --all --dry-run   which indexes hold deleted vectors";

/// Inspect and safely prune the write-ahead log of a local Chroma persist dir.
///
/// Chroma keeps every write in the `embeddings_queue` table of chroma.sqlite3. chroma-wal
/// deletes only the rows Chroma's own purge rule allows (below the lowest max_seq_id of all
/// the collection's segments), inside a transaction, after a verified backup, and never
/// changes the schema, migrations, config, segments or pickles.
#[derive(Debug, Parser)]
#[command(name = "chroma-wal", version, about, long_about, after_help = AFTER_HELP)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Persist dir to explore in the full-screen explorer. Without it: ./chroma when that
    /// holds a chroma.sqlite3, otherwise a copy of the bundled demo dir.
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// Explore a copy of the bundled demo persist dir (written by chromadb 0.4.22).
    #[arg(long)]
    pub demo: bool,

    #[command(flatten)]
    pub backup: BackupArgs,

    /// Do not compact chroma.sqlite3 after deleting (faster; space stays free inside the file).
    #[arg(long)]
    pub no_vacuum: bool,

    /// Prune inside chroma.sqlite3 (DELETE, then VACUUM) instead of writing a compacted copy
    /// and renaming it over the original. Slower and needs more disk; keeps the file's inode.
    #[arg(long, conflicts_with = "no_vacuum")]
    pub in_place: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe a persist dir: era, sizes, collections, segments, WAL rows and what is prunable.
    ///
    /// Opens chroma.sqlite3 read-only and changes nothing, not even a modification time.
    Info(InfoArgs),
    /// Delete the WAL rows Chroma no longer needs, then compact the file.
    ///
    /// Steps: preflight (refuses while Chroma runs, on a hot journal, an unknown schema, a
    /// read-only dir or too little disk), backup (on by default: a hard link of the untouched
    /// original, or a verified copy on another filesystem), delete (the kept rows go into a
    /// new file), compact (every other table), verify (quick_check, schema, header and row
    /// counts of the new file), swap (fsync and an atomic rename over chroma.sqlite3).
    /// With --in-place or --no-vacuum: delete (one transaction), compact (VACUUM), verify.
    Prune(PruneArgs),
    /// Rebuild vector indexes without their ghosts: the deleted vectors hnswlib keeps on disk
    /// and the elements no record reaches.
    ///
    /// For each index: the elements Chroma can reach are read (labels and vectors kept bit for
    /// bit), a fresh graph is built with the index's own M and ef_construction, every file is
    /// written new beside the old folder, fsynced, read back and checked (links, levels,
    /// labels, vectors, and recall@10 against exact search, not below the old graph's), then
    /// exchanged with the old folder in one atomic rename. The old folder goes into a backup
    /// that `restore` puts back; the pickle, the max_seq_id and every table stay Chroma's.
    /// Refuses while Chroma runs and when the disk cannot hold the new folder.
    Compact(CompactArgs),
    /// Remove every byte of deleted data that Chroma's own rules let go: WAL rows Chroma no
    /// longer needs, rows nothing points to (a deleted collection's records, the full-text
    /// rows of deleted records), free pages and the unused space inside pages, deleted
    /// vectors and leftover bytes in every selected index, and (with --all) orphan folders.
    ///
    /// Steps: preflight (as prune's), backup (on by default: it then holds everything the
    /// scrub removes), delete (one transaction, the full-text index written anew), compact
    /// (VACUUM: every page written fresh), verify, then each selected index rebuilt as
    /// `compact` rebuilds it, ghosts or not, putting nothing back. What stays (deleted
    /// records' WAL rows that the next load replays) is counted and named.
    Scrub(ScrubArgs),
    /// Whether every vector index loads as the dir's release would load it: exit 0, or 4 with
    /// each damaged collection, why, and what `compact --repair` would bring back.
    ///
    /// For an app to run before it opens the dir: a crash in Chroma's index loader takes the
    /// app's process with it. Opens chroma.sqlite3 read-only and changes nothing; about as
    /// fast as plain `info`.
    Check(CheckArgs),
    /// List a collection's (or a topic's) WAL rows, oldest first: operation, id, document,
    /// metadata, vector size, and whether a prune takes each one (prunable, held, orphan).
    ///
    /// Opens chroma.sqlite3 read-only and streams: memory does not grow with the topic.
    /// Exits 1 after listing when rows are malformed (they are shown, marked as such).
    Rows(RowsArgs),
    /// List a collection's records as Chroma's get() returns them: id, document, metadata
    /// (with Chroma's value types) and embedding, taken from the index or from the WAL rows
    /// Chroma has yet to apply, in every era and without Chroma.
    ///
    /// Read-only (no byte and no modification time changes) and streamed: memory grows with
    /// the index's labels, never with the vectors. A record whose vector is nowhere (no query
    /// returns it) has source and embedding null; a damaged index gives every embedding null
    /// and says why on stderr. An unknown collection exits 2.
    Records(RecordsArgs),
    /// Undo a prune: put chroma.sqlite3 and every folder the prune moved back, from its
    /// backup (the newest one of this dir by default). Refuses while Chroma runs.
    ///
    /// The file is replaced by one atomic rename of a verified copy, so a kill leaves either
    /// the pruned dir or the restored one; the backup stays where it is.
    Restore(RestoreArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell) on stdout.
    ///
    /// bash: `chroma-wal completions bash > ~/.local/share/bash-completion/completions/chroma-wal`;
    /// zsh: into a folder on $fpath as `_chroma-wal`; fish: `~/.config/fish/completions/chroma-wal.fish`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: `chroma-wal man > ~/.local/share/man/man1/chroma-wal.1`.
    Man,
}

#[derive(Debug, Args, Clone)]
pub struct BackupArgs {
    /// Where the backup of chroma.sqlite3 goes
    /// [default: chroma-wal-backups/ beside the persist dir].
    #[arg(long, value_name = "DIR", conflicts_with = "no_backup")]
    pub backup_dir: Option<PathBuf>,

    /// Skip the backup (not recommended: the prune then has no undo).
    #[arg(long)]
    pub no_backup: bool,
}

impl BackupArgs {
    pub fn target(&self) -> chroma_wal::jobs::prune::BackupTarget {
        use chroma_wal::jobs::prune::BackupTarget;
        match (&self.backup_dir, self.no_backup) {
            (_, true) => BackupTarget::Off,
            (Some(d), false) => BackupTarget::Dir(d.clone()),
            (None, false) => BackupTarget::Default,
        }
    }
}
