//! `chroma-wal completions SHELL`: a completion script generated from the clap definitions.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Outcome;
use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> Outcome {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "chroma-wal", &mut std::io::stdout());
    Ok(())
}
