use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pbxbridge::cli::{self, effective_config, Cli, Command};
use pbxbridge::config::{Config, Purpose};
use pbxbridge::logging::LogHandle;
use pbxbridge::{daemon, logging, replay, server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format.as_ref();
    match cli.command {
        // Exactly the checks `run` makes before it starts.
        Command::CheckConfig { file } => {
            match effective_config(Some(&file), None, None, None, Purpose::Run) {
                Ok(_) => {
                    println!("{}: ok", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    print_error(&e);
                    ExitCode::from(2)
                }
            }
        }
        Command::Run { config, db } => {
            let inputs = Inputs {
                config: config.as_ref(),
                db: db.as_ref(),
                recordings: None,
                log_format,
            };
            let (cfg, log, rt) = match start(inputs, Purpose::Run) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let opts = daemon::RunOptions {
                config_path: config,
                log,
            };
            finish(
                rt.block_on(daemon::run(cfg, opts)),
                "pbxbridge stopped on an error",
            )
        }
        Command::Serve { config, db } => {
            let inputs = Inputs {
                config: config.as_ref(),
                db: db.as_ref(),
                recordings: None,
                log_format,
            };
            let (cfg, _log, rt) = match start(inputs, Purpose::Any) {
                Ok(s) => s,
                Err(code) => return code,
            };
            finish(
                rt.block_on(server::run(cfg)),
                "pbxbridge serve stopped on an error",
            )
        }
        Command::Keys { target, command } => {
            with_db_config(&target, log_format, |cfg| async move {
                cli::run_keys(&cfg, &command).await
            })
        }
        Command::Calls { target, command } => {
            with_db_config(&target, log_format, |cfg| async move {
                cli::run_calls(&cfg, &command).await
            })
        }
        Command::MatchPastCalls {
            target,
            record_type,
            record_id,
        } => with_db_config(&target, log_format, |cfg| async move {
            cli::run_match_past_calls(&cfg, &record_type, &record_id).await
        }),
        Command::Index { target, command } => {
            with_db_config(&target, log_format, |cfg| async move {
                cli::run_index(&cfg, &command).await
            })
        }
        Command::Recordings { target, command } => {
            with_db_config(&target, log_format, |cfg| async move {
                cli::run_recordings(&cfg, &command).await
            })
        }
        Command::Replay {
            config,
            db,
            recordings,
            json,
            state_dir,
            db_wait,
            files,
        } => {
            let inputs = Inputs {
                config: config.as_ref(),
                db: db.as_ref(),
                recordings: recordings.as_ref(),
                log_format,
            };
            let (cfg, _log, rt) = match start(inputs, Purpose::Any) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let opts = replay::ReplayOptions {
                state_dir,
                db_wait: std::time::Duration::from_secs(db_wait),
                ..replay::ReplayOptions::new(files, json)
            };
            match rt.block_on(replay::run(cfg, opts)) {
                Ok(summary) => {
                    if !json {
                        replay::print_summary(&summary);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    print_error(&e);
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// What the command line says about the config.
struct Inputs<'a> {
    config: Option<&'a PathBuf>,
    db: Option<&'a String>,
    recordings: Option<&'a PathBuf>,
    log_format: Option<&'a String>,
}

/// The config (exit 2 when it is wrong), logging, and a runtime.
fn start(
    i: Inputs<'_>,
    purpose: Purpose,
) -> Result<(Config, LogHandle, tokio::runtime::Runtime), ExitCode> {
    let cfg =
        effective_config(i.config, i.db, i.recordings, i.log_format, purpose).map_err(|e| {
            print_error(&e);
            ExitCode::from(2)
        })?;
    let log = logging::init(cfg.log.format, &cfg.log.level);
    let rt = runtime()?;
    Ok((cfg, log, rt))
}

/// A long-running command's end: 0, or 1 with the error logged and printed.
fn finish<E: std::fmt::Display>(result: Result<(), E>, what: &str) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{what}");
            print_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Loads the config (exit 2 when it is wrong), then runs `f` on a runtime.
fn with_db_config<F, Fut>(target: &cli::DbArgs, log_format: Option<&String>, f: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = Result<(), cli::CommandError>>,
{
    let inputs = Inputs {
        config: target.config.as_ref(),
        db: target.db.as_ref(),
        recordings: None,
        log_format,
    };
    let (cfg, _log, rt) = match start(inputs, Purpose::Any) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match rt.block_on(f(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// `error: ` in front of each line: some errors list several problems.
fn print_error(e: &dyn std::fmt::Display) {
    for line in e.to_string().lines() {
        eprintln!("error: {line}");
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}
