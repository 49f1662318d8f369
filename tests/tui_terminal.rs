//! The built binary in a real terminal (tmux): filter to one collection, mark it, prune it,
//! read the before/after sizes off the screen, and check the database.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn prune_one_collection_in_a_real_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return;
    }
    let (_t, dir) = fixture_copy("v0_4_22");
    let papers = expected_collection("v0_4_22", "papers");
    let topic = papers["wal_topics"][0].as_str().unwrap().to_string();
    let before = topic_counts(&dir);
    let session = format!("cw{}", std::process::id());
    let socket = format!("cw-test-{}", std::process::id());
    let cmd = format!(
        "{} {} --no-backup; sleep 30",
        env!("CARGO_BIN_EXE_chroma-wal"),
        dir.display()
    );
    let t = |args: &[&str]| {
        let mut a = vec!["-L", socket.as_str()];
        a.extend_from_slice(args);
        tmux(&a)
    };
    t(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "130",
        "-y",
        "32",
        &cmd,
    ]);
    let sc = |s: &str| {
        let out = Command::new("tmux")
            .args(["-L", &socket, "capture-pane", "-p", "-t", s])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let wait = |what: &str| {
        let t0 = Instant::now();
        loop {
            let s = sc(&session);
            if s.contains(what) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "waited for {what:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = wait("prunable 498");
    assert!(first.contains("collections (5)"), "{first}");
    t(&["send-keys", "-t", &session, "/", "papers", "Enter"]);
    wait("collections (1)");
    t(&["send-keys", "-t", &session, "Space"]);
    wait("[x] papers");
    t(&["send-keys", "-t", &session, "p"]);
    wait("confirm prune");
    t(&["send-keys", "-t", &session, "y"]);
    let result = wait("Pruned 199 rows");
    t(&["kill-server"]);
    // Sizes before and after, in human units, as shown.
    let line = result
        .lines()
        .find(|l| l.contains("chroma.sqlite3") && l.contains("->"))
        .unwrap_or_else(|| panic!("no size line:\n{result}"));
    assert!(line.contains("KiB") || line.contains("MiB"), "{line}");
    let after = topic_counts(&dir);
    for (tp, v) in &before {
        if *tp == topic {
            assert_eq!(after[tp].0, v.0 - 199);
        } else {
            assert_eq!(after[tp], *v);
        }
    }
}
