//! Every argument a person types has a line of help, and `run` takes `--db`
//! like every other command that writes to the database.

use clap::CommandFactory;
use pbxbridge::cli::Cli;

/// `(path, argument)` of every positional argument without help, in every
/// subcommand at any depth.
fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let builtin = matches!(arg.get_id().as_str(), "help" | "version");
        let has_help = arg.get_help().is_some() || arg.get_long_help().is_some();
        if !builtin && !has_help {
            let kind = if arg.is_positional() {
                "positional"
            } else {
                "option"
            };
            out.push(format!("{path}: {kind} {}", arg.get_id()));
        }
    }
    for sub in cmd.get_subcommands() {
        undocumented(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_argument_of_every_subcommand_has_help() {
    let cmd = Cli::command();
    cmd.clone().debug_assert();
    let mut missing = Vec::new();
    undocumented(&cmd, "pbxbridge", &mut missing);
    assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    // The walk reaches the commands the issue named.
    let positional: Vec<String> = ["check-config", "calls"]
        .iter()
        .filter_map(|n| cmd.find_subcommand(n))
        .flat_map(|c| {
            std::iter::once(c)
                .chain(c.get_subcommands())
                .flat_map(|c| c.get_positionals().map(|a| a.get_id().to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    for want in ["file", "call_id", "record_type", "record_id"] {
        assert!(positional.iter().any(|p| p == want), "{positional:?}");
    }
}

#[test]
fn help_of_each_subcommand_describes_its_positionals() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
            .args(args)
            .arg("--help")
            .output()
            .expect("run pbxbridge");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let text = help(&["check-config"]);
    assert!(text.contains("<FILE>  The config file"), "{text}");
    let text = help(&["calls", "link"]);
    assert!(text.contains("<CALL_ID>  The call's SIP Call-ID"), "{text}");
    assert!(
        text.contains("<TYPE>     A type from [[crm.records]]"),
        "{text}"
    );
    assert!(text.contains("<ID>       The record's id"), "{text}");
    let text = help(&["calls", "show"]);
    assert!(text.contains("<CALL_ID>  The call's SIP Call-ID"), "{text}");
    let text = help(&["run"]);
    assert!(
        text.contains("--db <DB>") && text.contains("database.url"),
        "{text}"
    );
}

#[test]
fn no_message_says_the_http_api_is_missing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offending = Vec::new();
    let mut files: Vec<std::path::PathBuf> = ["src", "config"]
        .iter()
        .flat_map(|d| walk(&root.join(d)))
        .collect();
    files.push(root.join("README.md"));
    for entry in files {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if line.contains("HTTP API") && line.contains("not built yet") {
                offending.push(format!("{}:{}: {line}", entry.display(), i + 1));
            }
        }
    }
    assert!(offending.is_empty(), "{offending:#?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
