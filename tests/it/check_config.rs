//! `check-config` runs exactly the checks `run` makes before it starts, and
//! lists every problem: a file it passes, `run` starts with; a file it
//! rejects, `run` rejects too, before it creates anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `pbxbridge ARGS [FILE]` in `cwd`.
fn pbxbridge(cwd: &Path, args: &[&str], file: Option<&Path>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .current_dir(cwd)
        .args(args)
        .args(file)
        // The environment must not fill in what a file lacks.
        .env_remove("PBXBRIDGE_DATABASE_URL")
        .output()
        .expect("run pbxbridge")
}

fn examples(prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".toml"))
        })
        .collect();
    files.sort();
    files
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_bad_example_fails_check_config_and_run_before_run_creates_anything() {
    let bad = examples("bad-");
    assert!(bad.len() >= 19, "{bad:?}");
    for file in &bad {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let cwd = tempfile::tempdir().unwrap();
        let check = pbxbridge(cwd.path(), &["check-config"], Some(file));
        let check_err = String::from_utf8_lossy(&check.stderr).into_owned();
        assert_eq!(check.status.code(), Some(2), "{name}: {check_err}");
        assert!(check_err.contains(&name), "{name}: {check_err}");
        assert!(check.stdout.is_empty(), "{name}: no ok");

        let run = pbxbridge(cwd.path(), &["run", "--config"], Some(file));
        let run_err = String::from_utf8_lossy(&run.stderr).into_owned();
        assert_eq!(run.status.code(), Some(2), "{name}: {run_err}");
        assert_eq!(
            run_err, check_err,
            "{name}: run and check-config report the same problems"
        );
        assert!(
            entries(cwd.path()).is_empty(),
            "{name}: run created {:?} (database, state or recordings)",
            entries(cwd.path())
        );
    }
}

#[test]
fn good_examples_pass_check_config() {
    let mut good = examples("good-");
    good.push(root().join("config/loopback.toml"));
    for file in &good {
        let cwd = tempfile::tempdir().unwrap();
        let out = pbxbridge(cwd.path(), &["check-config"], Some(file));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {err}", file.display());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text, format!("{}: ok\n", file.display()));
        assert!(entries(cwd.path()).is_empty(), "check-config only looks");
    }
}

#[test]
fn several_problems_are_all_listed_one_line_each() {
    let file = root().join("tests/config/bad-several.toml");
    let out = pbxbridge(root(), &["check-config"], Some(&file));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let expected = [
        "pbx.extension_pattern: \"^[0-9\" is not a regular expression: unclosed character class",
        "pbx.default_country: \"Narnia\" is not an ISO 3166",
        "tracker.rtp_timeout_secs: 0 must be between 1 and 604800 seconds",
        "capture.interfaces[1]: no such interface \"eht0\"",
        "database.url: \"oracle://scott:***@db/orcl\"",
        "storage.s3.bucket: is required for the s3 backend",
        "storage.s3.endpoint: \"ftp://s3.example.com\" must start with https:// or http://",
        "capture.folder: /nonexistent/pbxbridge-captures is not a readable directory",
        "capture.filter: \"udp port 5060 and and\": ",
        "admin.listen: 127.0.0.1:9091 is also hep.listen (127.0.0.1:9091)",
    ];
    assert_eq!(lines.len(), expected.len(), "{err}");
    for want in expected {
        let prefix = format!("error: {}: {want}", file.display());
        assert!(
            lines.iter().any(|l| l.starts_with(&prefix)),
            "missing {prefix:?} in:\n{err}"
        );
    }
    assert!(!err.contains("tiger"), "the password never shows: {err}");
}

#[test]
fn the_shipped_example_and_the_defaults_need_only_a_capture_source() {
    let cwd = tempfile::tempdir().unwrap();
    let file = root().join("config/pbxbridge.toml");
    let out = pbxbridge(cwd.path(), &["check-config"], Some(&file));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err,
        format!(
            "error: {}: capture: nothing to capture from: set capture.interfaces, capture.folder or hep.enabled\n",
            file.display()
        )
    );
    // `run` on the embedded defaults says the same, and creates nothing.
    let out = pbxbridge(cwd.path(), &["run", "--db", "sqlite://calls.db"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: embedded defaults (no --config): capture: nothing to capture from"),
        "{err}"
    );
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));
}

#[test]
fn run_db_overrides_the_config_and_is_checked_like_it() {
    let cwd = tempfile::tempdir().unwrap();
    let file = root().join("config/loopback.toml");
    let args = ["run", "--db", "oracle://scott:tiger@db/orcl", "--config"];
    let out = pbxbridge(cwd.path(), &args, Some(&file));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("database.url: \"oracle://scott:***@db/orcl\""),
        "{err}"
    );
    assert!(entries(cwd.path()).is_empty());
}

#[test]
fn folders_run_would_create_must_not_be_files() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("state"), "a file, not a folder").unwrap();
    std::fs::write(cwd.path().join("rec"), "").unwrap();
    let file = cwd.path().join("p.toml");
    std::fs::write(
        &file,
        "[hep]\nenabled = true\n[daemon]\nstate_dir = \"state\"\n[recording]\ndir = \"rec/calls\"\n",
    )
    .unwrap();
    let out = pbxbridge(cwd.path(), &["check-config"], Some(&file));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let f = file.display();
    assert_eq!(
        err,
        format!(
            "error: {f}: daemon.state_dir: state is not a directory\n\
             error: {f}: recording.dir: rec is not a directory\n"
        )
    );
}
