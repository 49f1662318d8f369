//! The built binary in a real terminal (tmux): filter to one collection, mark it, prune it,
//! read the before/after sizes off the screen, and check the database. Also what a bare
//! `chroma-wal` opens.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills a tmux server when dropped, so that a failed assertion leaves no explorer running.
struct Server(String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .output();
    }
}

fn have_tmux() -> bool {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return false;
    }
    true
}

/// Runs `chroma-wal` with no argument in `cwd` and returns the screen once `what` shows
/// (or after 30 s).
fn bare_run_screen(cwd: &std::path::Path, tag: &str, what: &str) -> String {
    let socket = format!("cw-bare-{tag}-{}", std::process::id());
    let _server = Server(socket.clone());
    let cmd = format!(
        "cd '{}' && {}; sleep 30",
        cwd.display(),
        env!("CARGO_BIN_EXE_chroma-wal")
    );
    tmux(&[
        "-L",
        &socket,
        "new-session",
        "-d",
        "-s",
        "bare",
        "-x",
        "130",
        "-y",
        "32",
        &cmd,
    ]);
    let t0 = Instant::now();
    let screen = loop {
        let s = tmux(&["-L", &socket, "capture-pane", "-p", "-t", "bare"]);
        if s.contains(what) || t0.elapsed() > Duration::from_secs(30) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    tmux(&["-L", &socket, "send-keys", "-t", "bare", "q"]);
    tmux(&["-L", &socket, "kill-server"]);
    screen
}

#[test]
fn bare_command_opens_the_demo_or_the_chroma_folder() {
    if !have_tmux() {
        return;
    }
    // No ./chroma here: the newcomer's first run shows the bundled demo (a copy).
    let empty = tempfile::tempdir().unwrap();
    let s = bare_run_screen(empty.path(), "demo", "support-tickets");
    assert!(s.contains("support-tickets"), "{s}");
    assert!(
        s.contains("chroma-wal-demo-"),
        "the demo copy's path is shown:\n{s}"
    );
    // A persist dir at ./chroma is what a bare run opens.
    let (t, dir) = fixture_copy("v0_4_22");
    std::fs::rename(&dir, t.path().join("chroma")).unwrap();
    let s = bare_run_screen(t.path(), "dot", "collections (7)");
    assert!(s.contains("collections (7)") && s.contains("papers"), "{s}");
    assert!(!s.contains("support-tickets"), "{s}");
}

#[test]
fn prune_one_collection_in_a_real_terminal() {
    if !have_tmux() {
        return;
    }
    let (_t, dir) = fixture_copy("v0_4_22");
    let papers = expected_collection("v0_4_22", "papers");
    let topic = papers["wal_topics"][0].as_str().unwrap().to_string();
    let before = topic_counts(&dir);
    let session = format!("cw{}", std::process::id());
    let socket = format!("cw-test-{}", std::process::id());
    let _server = Server(socket.clone());
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
    let first = wait("prunable 896");
    assert!(first.contains("collections (7)"), "{first}");
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

#[test]
fn read_the_wal_rows_in_a_real_terminal() {
    if !have_tmux() {
        return;
    }
    let (_t, dir) = fixture_copy("v0_4_22");
    let socket = format!("cw-rows-{}", std::process::id());
    let _server = Server(socket.clone());
    let cmd = format!(
        "{} {} --no-backup; sleep 30",
        env!("CARGO_BIN_EXE_chroma-wal"),
        dir.display()
    );
    tmux(&[
        "-L",
        &socket,
        "new-session",
        "-d",
        "-s",
        "r",
        "-x",
        "130",
        "-y",
        "32",
        &cmd,
    ]);
    let wait = |what: &str| {
        let t0 = Instant::now();
        loop {
            let s = tmux(&["-L", &socket, "capture-pane", "-p", "-t", "r"]);
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
    let send = |keys: &[&str]| {
        let mut a = vec!["-L", socket.as_str(), "send-keys", "-t", "r"];
        a.extend_from_slice(keys);
        tmux(&a);
    };
    wait("prunable 896");
    send(&["w"]);
    let s = wait("bound M 300");
    let s = if s.contains("held") { s } else { wait("held") };
    assert!(s.contains("WAL rows of big") && s.contains("420"), "{s}");
    send(&["/", "id42", "Enter"]);
    wait("match 1 of");
    send(&["Enter"]);
    let s = wait("dimensions");
    assert!(s.contains("id42"), "{s}");
    // One Escape at a time: two sent back to back can reach the app as one key (ESC ESC is
    // also how a terminal spells Alt+Esc), and the second view would never close.
    send(&["Escape"]);
    let t0 = Instant::now();
    loop {
        let s = tmux(&["-L", &socket, "capture-pane", "-p", "-t", "r"]);
        if !s.contains("dimensions") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the row stayed open:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    send(&["Escape"]);
    wait("collections (7)");
    send(&["q"]);
    tmux(&["-L", &socket, "kill-server"]);
}
