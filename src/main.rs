//! `chroma-wal`: parse the command line, pick the front end, map errors to exit codes.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use chroma_wal::jobs::prune::Canceller;
use chroma_wal::report;

fn main() -> ExitCode {
    let _ = chroma_wal::tui::STARTED.set(std::time::Instant::now());
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
        Some(cli::Command::Compact(a)) => a.json,
        Some(cli::Command::Scrub(a)) => a.json,
        Some(cli::Command::Restore(a)) => a.json,
        Some(
            cli::Command::Completions(_)
            | cli::Command::Check(_)
            | cli::Command::Man
            | cli::Command::Rows(_)
            | cli::Command::Records(_),
        )
        | None => false,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &cli.command {
        Some(cli::Command::Info(a)) => commands::info::info(a, &cancel),
        Some(cli::Command::Prune(a)) => commands::prune::prune(a, &cancel),
        Some(cli::Command::Compact(a)) => commands::compact::run(a, &cancel),
        Some(cli::Command::Scrub(a)) => commands::scrub::run(a, &cancel),
        Some(cli::Command::Check(a)) => commands::check::run(a, &cancel),
        Some(cli::Command::Rows(a)) => commands::rows::run(a),
        Some(cli::Command::Records(a)) => commands::records::run(a, &cancel),
        Some(cli::Command::Restore(a)) => commands::restore::run(a),
        Some(cli::Command::Completions(a)) => commands::completions::run(a),
        Some(cli::Command::Man) => commands::man::run(),
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

/// No subcommand: the full-screen explorer (on a copy of the demo dir with --demo).
fn explore(cli: &cli::Cli, _cancel: &Canceller) -> commands::Outcome {
    // No PATH: ./chroma when it is a persist dir, otherwise the demo (a newcomer's first run).
    let default_dir = std::path::Path::new("./chroma");
    let chosen = match &cli.path {
        _ if cli.demo => None,
        Some(p) => Some(p.clone()),
        None => default_dir
            .join("chroma.sqlite3")
            .is_file()
            .then(|| default_dir.to_path_buf()),
    };
    // The demo's temporary dir lives until the explorer returns.
    let (_demo, path) = match chosen {
        Some(p) => (None, p),
        None => {
            let (tmp, p) = chroma_wal::tui::demo_copy().map_err(|e| (e, None))?;
            (Some(tmp), p)
        }
    };
    let opts = chroma_wal::tui::Options {
        path,
        // For the demo the default backup folder lands inside its temporary dir.
        backup: cli.backup.target(),
        vacuum: !cli.no_vacuum,
        in_place: cli.in_place,
    };
    chroma_wal::tui::run(opts).map_err(|e| (e, None))
}
