//! A replay whose inputs cannot be read says so once per input and leaves
//! nothing behind: no database, no state folder, no recordings folder.

use std::path::Path;
use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/pcap-fixtures/{name}.pcap", env!("CARGO_MANIFEST_DIR"))
}

/// Replays `files` with the embedded defaults (database, state and recordings
/// all relative to `cwd`): exit code, every stderr line that mentions an
/// error (log lines too), and stdout.
fn replay_in(cwd: &Path, files: &[&Path]) -> (Option<i32>, Vec<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .current_dir(cwd)
        .arg("replay")
        .args(files)
        .output()
        .expect("run pbxbridge");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let errors = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .map(str::to_owned)
        .collect();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), errors, stdout)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_missing_file_a_directory_and_a_non_pcap_are_one_line_each_and_touch_nothing() {
    let inputs = tempfile::tempdir().unwrap();
    let missing = inputs.path().join("missing.pcap");
    let directory = inputs.path().join("captures");
    std::fs::create_dir(&directory).unwrap();
    let text = inputs.path().join("notes.pcap");
    std::fs::write(&text, "these are notes, not packets\n").unwrap();
    let cases: [(&Path, &str); 3] = [
        (&missing, "cannot open: No such file or directory"),
        (&directory, "is a directory"),
        (&text, "not a pcap or pcapng file"),
    ];
    for (path, problem) in cases {
        let cwd = tempfile::tempdir().unwrap();
        let (code, errors, stdout) = replay_in(cwd.path(), &[path]);
        assert_eq!(code, Some(1), "{}: {errors:?}", path.display());
        let want = format!("error: {}: {problem}", path.display());
        assert!(
            errors.len() == 1 && errors[0].starts_with(&want),
            "exactly one line naming the path and the problem, {want:?}: {errors:?}"
        );
        assert!(stdout.is_empty(), "no table for nothing read: {stdout}");
        assert!(
            entries(cwd.path()).is_empty(),
            "{}: replay created {:?}",
            path.display(),
            entries(cwd.path())
        );
    }
}

#[test]
fn one_bad_input_among_good_ones_stops_before_anything_is_written() {
    let cwd = tempfile::tempdir().unwrap();
    let missing = cwd.path().join("typo.pcap");
    let good = fixture("busy_486");
    let (code, errors, stdout) =
        replay_in(cwd.path(), &[Path::new(&good), &missing, Path::new(&good)]);
    assert_eq!(code, Some(1));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("typo.pcap"), "{errors:?}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(entries(cwd.path()), Vec::<String>::new());
}

#[test]
fn good_inputs_still_replay_in_that_folder() {
    let cwd = tempfile::tempdir().unwrap();
    let good = fixture("busy_486");
    let (code, errors, stdout) = replay_in(cwd.path(), &[Path::new(&good)]);
    assert_eq!(code, Some(0), "{errors:?}");
    assert!(stdout.contains("calls: 1 (busy 1)"), "{stdout}");
    let made = entries(cwd.path());
    assert!(made.contains(&"pbxbridge.db".to_string()), "{made:?}");
    assert!(made.contains(&"state".to_string()), "{made:?}");
}

#[test]
fn a_pipe_is_read_once_by_the_replay_itself() {
    let cwd = tempfile::tempdir().unwrap();
    let fifo = cwd.path().join("live.pcap");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let bytes = std::fs::read(fixture("busy_486")).unwrap();
    let feeder = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes))
    };
    let (code, errors, stdout) = replay_in(cwd.path(), &[&fifo]);
    feeder
        .join()
        .unwrap()
        .expect("the replay read the whole pipe");
    assert_eq!(code, Some(0), "{errors:?}");
    assert!(stdout.contains("calls: 1 (busy 1)"), "{stdout}");
}
