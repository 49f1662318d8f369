//! `chroma-wal restore`: put a persist dir back as it was before a prune.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use chroma_wal::backup::restore;
use chroma_wal::jobs::prune::BackupTarget;
use chroma_wal::units::bytes;
use chroma_wal::Error;

use super::{print_json, Outcome};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// One prune's backup folder, or a folder of backups (the newest backup of PATH in it)
    /// [default: the newest in chroma-wal-backups/ beside the persist dir].
    #[arg(long, value_name = "BACKUP")]
    pub from: Option<PathBuf>,

    /// Restore even though Chroma wrote to chroma.sqlite3 since the prune (those writes are
    /// lost from the dir; the current file is kept in the backup folder).
    #[arg(long)]
    pub force: bool,

    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RestoreArgs) -> Outcome {
    let fail = |e: Error| (e, None);
    let default = BackupTarget::Default
        .folder(&args.path)
        .unwrap_or_else(|| PathBuf::from("chroma-wal-backups"));
    let plan = restore::plan(&args.path, args.from.as_deref(), &default).map_err(fail)?;
    let mut what = format!(
        "Restore {} from the backup of {} ({}, {}):\n",
        args.path.display(),
        plan.backup.manifest.created,
        plan.backup.manifest.method,
        plan.backup.folder.display()
    );
    if let Some(s) = &plan.sqlite {
        what += &format!(
            "  chroma.sqlite3  {} ({})\n",
            bytes(plan.sqlite_bytes),
            s.display()
        );
    }
    for (name, _, b) in &plan.dirs {
        what += &format!("  folder {name}  {}\n", bytes(*b));
    }
    for (name, _, b) in &plan.indexes {
        what += &format!(
            "  index folder {name}  {} (the rebuilt one goes into the backup folder)\n",
            bytes(*b)
        );
    }
    for name in &plan.missing {
        what += &format!(
            "  folder {name}  already in the persist dir or not in the backup; left as it is\n"
        );
    }
    if let Some(why) = &plan.index_changed {
        what += &format!(
            "  warning: {why}; {}\n",
            if args.force {
                "the current folder is kept in the backup folder"
            } else {
                "restore refuses without --force"
            }
        );
    }
    if let Some(why) = &plan.changed {
        what += &format!(
            "  warning: {why}; {}\n",
            if args.force {
                "the current file is kept in the backup folder"
            } else {
                "restore refuses without --force"
            }
        );
    }
    if plan.sqlite.is_none() && plan.dirs.is_empty() && plan.indexes.is_empty() {
        return Err(fail(Error::refused(format!("{}nothing to put back", what))));
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(fail(Error::refused(
                "refusing to restore without confirmation: stdin is not a terminal (pass --yes)",
            )));
        }
        eprint!("{what}Put these back (the current chroma.sqlite3 is replaced)? [y/N] ");
        super::yes_or_refuse().map_err(fail)?;
    }
    let done =
        restore::run(&plan, args.force, &mut |step| eprintln!("restore: {step}")).map_err(fail)?;
    if args.json {
        print_json(&json!({
            "persist_dir": args.path.display().to_string(),
            "backup": plan.backup.folder.display().to_string(),
            "sqlite_restored": done.sqlite_restored,
            "dirs_restored": done.dirs_restored,
            "sqlite_bytes_before": done.sizes_before.sqlite,
            "sqlite_bytes_after": done.sizes_after.sqlite,
            "dir_bytes_before": done.sizes_before.dir,
            "dir_bytes_after": done.sizes_after.dir,
        }));
    } else {
        print!("{what}");
        println!(
            "Restored: chroma.sqlite3 {} -> {}, whole dir {} -> {}. The backup stays in {}.",
            bytes(done.sizes_before.sqlite),
            bytes(done.sizes_after.sqlite),
            bytes(done.sizes_before.dir),
            bytes(done.sizes_after.dir),
            plan.backup.folder.display()
        );
    }
    Ok(())
}
