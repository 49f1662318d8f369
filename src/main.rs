//! `chroma-wal`: parse the command line, pick the front end, map errors to exit codes.

mod batch;
mod cli;

use std::process::ExitCode;

use clap::Parser;

use chroma_wal::prune::Canceller;
use chroma_wal::{report, Error};

fn main() -> ExitCode {
    // A panic is a bug; say so in one line, no backtrace. Decoders of untrusted bytes run
    // under a guard that turns their panics into "unreadable" and stay quiet here.
    std::panic::set_hook(Box::new(|info| {
        if chroma_wal::chroma::pickle::in_guard() {
            return;
        }
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("chroma-wal: internal error: {msg} (please report this); nothing was changed by this failure");
    }));

    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };

    let cancel = Canceller::new();
    {
        let c = cancel.clone();
        // Ctrl-C cancels the running step; the job leaves the dir untouched or exactly pruned.
        let _ = ctrlc::set_handler(move || c.cancel());
    }

    let json = match &cli.command {
        Some(cli::Command::Info(a)) => a.json,
        Some(cli::Command::Prune(a)) => a.json,
        None => false,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &cli.command {
        Some(cli::Command::Info(a)) => batch::info(a, &cancel),
        Some(cli::Command::Prune(a)) => batch::prune(a, &cancel),
        None => explore(&cli, &cancel),
    }));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err((e, job))) => {
            let code = e.exit_code() as i32;
            if json {
                let v = report::error_json(&e.to_string(), code, job.as_ref());
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            eprintln!("chroma-wal: {e}");
            ExitCode::from(code as u8)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// No subcommand: the full-screen explorer. Until it lands, show the `info` view.
fn explore(cli: &cli::Cli, cancel: &Canceller) -> batch::Outcome {
    if cli.demo {
        return Err((
            Error::Usage("--demo needs the full-screen explorer, which is not built yet".into()),
            None,
        ));
    }
    let args = cli::InfoArgs {
        path: cli.path.clone(),
        json: false,
    };
    batch::info(&args, cancel)
}
