//! Shared by the pcap-fixture tests: finding fixtures, running `pbxbridge replay`
//! on them and reading the expected call records.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcap-fixtures")
}

/// Every `*.pcap` / `*.pcapng` in pcap-fixtures/, sorted by name.
pub fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("pcap-fixtures/ must exist")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap") | Some("pcapng")
            )
        })
        .collect();
    files.sort();
    files
}

pub fn fixture_name(pcap: &Path) -> String {
    pcap.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_string()
}

/// The `<name>.expected.json` beside the capture: an array of call objects.
pub fn expected_calls(pcap: &Path) -> Result<Vec<Value>, String> {
    let path = pcap.with_file_name(format!("{}.expected.json", fixture_name(pcap)));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(calls)) => Ok(calls),
        Ok(_) => Err(format!("{} is not a JSON array", path.display())),
        Err(e) => Err(format!("{} is not valid JSON: {e}", path.display())),
    }
}

pub struct Replay {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// `pbxbridge replay --config pcap-fixtures/pbxbridge.toml --db sqlite://<dir>/t.db
///  --recordings <dir>/rec --json <pcap>`
pub fn replay(pcap: &Path, dir: &Path) -> Replay {
    let db = format!("sqlite://{}", dir.join("t.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .arg("replay")
        .arg("--config")
        .arg(fixtures_dir().join("pbxbridge.toml"))
        .arg("--db")
        .arg(&db)
        .arg("--recordings")
        .arg(dir.join("rec"))
        .arg("--json")
        .arg(pcap)
        .output()
        .expect("pbxbridge binary runs");
    Replay {
        success: out.status.success(),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One JSON object per non-empty stdout line.
pub fn parse_calls(stdout: &str) -> Result<Vec<Value>, String> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<Value>(l)
                .map_err(|e| format!("stdout line {} is not JSON ({e}): {l:?}", i + 1))
        })
        .collect()
}

pub fn call_id(call: &Value) -> &str {
    call.get("call_id").and_then(Value::as_str).unwrap_or("")
}

/// Replays `pcap` and pairs each expected call with the actual one of the same
/// Call-ID; any failure is described in the error.
pub fn replay_and_pair(pcap: &Path, dir: &Path) -> Result<Vec<(Value, Value)>, String> {
    let run = replay(pcap, dir);
    if !run.success {
        return Err(format!(
            "replay exited with {}\n  stderr: {}",
            run.status,
            run.stderr.trim()
        ));
    }
    let actual = parse_calls(&run.stdout)?;
    let expected = expected_calls(pcap)?;
    if actual.len() != expected.len() {
        let ids: Vec<&str> = actual.iter().map(call_id).collect();
        return Err(format!(
            "expected {} call(s), replay printed {}: {ids:?}",
            expected.len(),
            actual.len()
        ));
    }
    expected
        .into_iter()
        .map(|exp| {
            let id = call_id(&exp).to_string();
            actual
                .iter()
                .find(|a| call_id(a) == id)
                .map(|a| (exp.clone(), a.clone()))
                .ok_or_else(|| format!("no call with call_id {id:?} in the replay output"))
        })
        .collect()
}
