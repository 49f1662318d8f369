//! `chroma-wal info`: describe a persist dir.

use std::path::PathBuf;

use clap::Args;

use chroma_wal::prune::{Canceller, Unit};
use chroma_wal::report;

use super::{bar, open_and_count, print_json, Outcome};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH", default_value = "./chroma")]
    pub path: PathBuf,

    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Also read what takes longer: the elements marked deleted in every vector index (one
    /// byte per element of data_level0.bin).
    #[arg(long)]
    pub deep: bool,
}

pub fn info(args: &InfoArgs, cancel: &Canceller) -> Outcome {
    let (mut snap, wal) = open_and_count(&args.path, cancel).map_err(|e| (e, None))?;
    if args.deep {
        let pb = bar("deleted", None, Unit::Bytes);
        let mut cb = |done: u64, total: u64| {
            pb.set_length(total);
            pb.set_position(done);
            !cancel.is_cancelled()
        };
        let r = chroma_wal::chroma::deep::count_deleted(&mut snap, &mut cb);
        pb.finish_and_clear();
        r.map_err(|e| (e, None))?;
    }
    if args.json {
        print_json(&report::info_json(&snap, &wal));
    } else {
        print!("{}", report::info_text(&snap, &wal));
    }
    Ok(())
}
