//! Golden test: every capture in pcap-fixtures/ replayed through the CLI must
//! produce exactly the call records in its `<name>.expected.json`.
//!
//! The expected files are written by pcap-fixtures/make-fixtures.sh from the
//! capture itself (tshark) and from what each SIPp scenario does, never from
//! pbxbridge. Keys starting with `_` are metadata for other tests and ignored.

use crate::fixture_support;

use fixture_support::*;
use serde_json::Value;

/// recording.samples may differ by one packet (where the first/last 20 ms lands).
const SAMPLES_TOLERANCE: i64 = 160;

fn compare_call(fixture: &str, exp: &Value, act: &Value, out: &mut Vec<String>) {
    let id = call_id(exp);
    let Some(fields) = exp.as_object() else {
        out.push(format!("{fixture}: expected call is not an object"));
        return;
    };
    for (key, want) in fields.iter().filter(|(k, _)| !k.starts_with('_')) {
        let got = act.get(key).unwrap_or(&Value::Null);
        match key.as_str() {
            "duration" => {
                let ok = matches!((want.as_f64(), got.as_f64()), (Some(w), Some(g)) if (w - g).abs() <= 1e-6);
                if !ok {
                    out.push(format!(
                        "{fixture} [{id}] duration: expected {want}, got {got}"
                    ));
                }
            }
            "recording" => compare_recording(fixture, id, want, got, out),
            _ => {
                if want != got {
                    out.push(format!(
                        "{fixture} [{id}] {key}: expected {want}, got {got}"
                    ));
                }
            }
        }
    }
}

fn compare_recording(fixture: &str, id: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    let Some(want) = want.as_object() else {
        out.push(format!(
            "{fixture} [{id}] recording: expected value is not an object"
        ));
        return;
    };
    if !got.is_object() {
        out.push(format!(
            "{fixture} [{id}] recording: expected an object, got {got}"
        ));
        return;
    }
    for (key, w) in want.iter().filter(|(k, _)| !k.starts_with('_')) {
        let g = got.get(key).unwrap_or(&Value::Null);
        let ok = if key == "samples" {
            matches!((w.as_i64(), g.as_i64()), (Some(w), Some(g)) if (w - g).abs() <= SAMPLES_TOLERANCE)
        } else {
            w == g
        };
        if !ok {
            out.push(format!(
                "{fixture} [{id}] recording.{key}: expected {w}, got {g}"
            ));
        }
    }
}

fn sorted_by_call_id(mut calls: Vec<Value>) -> Vec<Value> {
    calls.sort_by(|a, b| call_id(a).cmp(call_id(b)));
    calls
}

#[test]
fn golden_fixtures() {
    let files = fixture_files();
    assert!(!files.is_empty(), "no captures in pcap-fixtures/");
    let mut mismatches = Vec::new();
    for pcap in &files {
        let name = fixture_name(pcap);
        eprintln!("golden: checking {name}");
        let dir = tempfile::tempdir().expect("tempdir");

        let first = replay(pcap, dir.path());
        if !first.success {
            mismatches.push(format!(
                "{name}: replay exited with {}\n  stderr: {}",
                first.status,
                first.stderr.trim()
            ));
            continue;
        }
        let actual = match parse_calls(&first.stdout) {
            Ok(a) => a,
            Err(e) => {
                mismatches.push(format!("{name}: {e}"));
                continue;
            }
        };
        let expected = match expected_calls(pcap) {
            Ok(e) => e,
            Err(e) => {
                mismatches.push(format!("{name}: {e}"));
                continue;
            }
        };
        if actual.len() != expected.len() {
            let ids: Vec<&str> = actual.iter().map(call_id).collect();
            mismatches.push(format!(
                "{name}: expected {} call(s), got {}: {ids:?}",
                expected.len(),
                actual.len()
            ));
        }
        for exp in &expected {
            match actual.iter().find(|a| call_id(a) == call_id(exp)) {
                Some(act) => compare_call(&name, exp, act, &mut mismatches),
                None => mismatches.push(format!(
                    "{name}: no call with call_id {:?} in the output",
                    call_id(exp)
                )),
            }
        }

        // The same file again into the same database and recordings folder:
        // a replay must be repeatable and print the same records.
        let second = replay(pcap, dir.path());
        if !second.success {
            mismatches.push(format!(
                "{name}: second replay into the same db exited with {}\n  stderr: {}",
                second.status,
                second.stderr.trim()
            ));
            continue;
        }
        match parse_calls(&second.stdout) {
            Ok(again) => {
                if sorted_by_call_id(again.clone()) != sorted_by_call_id(actual.clone()) {
                    mismatches.push(format!(
                        "{name}: second replay into the same db printed different records:\n  first:  {}\n  second: {}",
                        first.stdout.trim(),
                        second.stdout.trim()
                    ));
                }
            }
            Err(e) => mismatches.push(format!("{name}: second replay: {e}")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) over {} fixture(s):\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
}
