//! `chroma-wal man`: the man page (roff), generated from the clap definitions.

use chroma_wal::Error;
use clap::CommandFactory;

use super::Outcome;
use crate::cli::Cli;

pub fn run() -> Outcome {
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = Vec::new();
    page.render(&mut out).map_err(|e| {
        (
            Error::failed(format!("cannot render the man page: {e}")),
            None,
        )
    })?;
    use std::io::Write;
    std::io::stdout().write_all(&out).map_err(|e| {
        (
            Error::failed(format!("cannot write the man page: {e}")),
            None,
        )
    })
}
