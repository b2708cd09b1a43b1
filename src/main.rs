use std::process::ExitCode;

use clap::Parser;
use pbxbridge::cli::{effective_config, Cli, Command, IndexCommand};
use pbxbridge::config::Config;
use pbxbridge::matching::index;
use pbxbridge::{daemon, logging, replay};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => {
            let cfg = match effective_config(config.as_ref(), None, None, cli.log_format.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let log = logging::init(cfg.log.format, &cfg.log.level);
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let opts = daemon::RunOptions {
                config_path: config,
                log,
            };
            match rt.block_on(daemon::run(cfg, opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "pbxbridge stopped on an error");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Index { command } => index_command(command, cli.log_format.as_ref()),
        Command::Replay {
            config,
            db,
            recordings,
            json,
            files,
        } => {
            let cfg = match effective_config(
                config.as_ref(),
                db.as_ref(),
                recordings.as_ref(),
                cli.log_format.as_ref(),
            ) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            logging::init(cfg.log.format, &cfg.log.level);
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(replay::run(cfg, replay::ReplayOptions { files, json })) {
                Ok(summary) => {
                    if !json {
                        replay::print_summary(&summary);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn index_command(command: IndexCommand, log_format: Option<&String>) -> ExitCode {
    let (config, db) = match &command {
        IndexCommand::Stats { config, db, .. } | IndexCommand::Rebuild { config, db, .. } => {
            (config.as_ref(), db.as_ref())
        }
    };
    let cfg = match effective_config(config, db, None, log_format) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let IndexCommand::Rebuild {
        kind: Some(kind), ..
    } = &command
    {
        if !cfg.crm.records.iter().any(|r| &r.kind == kind) {
            eprintln!("error: --type {kind:?}: no [[crm.records]] entry has this type");
            return ExitCode::from(2);
        }
    }
    logging::init(cfg.log.format, &cfg.log.level);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let db = match index::connect(&cfg).await {
            Ok(db) => db,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let code = match command {
            IndexCommand::Stats { json, limit, .. } => match index::stats(&db, limit).await {
                Ok(stats) if json => match serde_json::to_string_pretty(&stats) {
                    Ok(text) => {
                        println!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                },
                Ok(stats) => {
                    print!("{}", index::render_stats(&stats, &cfg, limit));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            IndexCommand::Rebuild { kind, .. } => {
                let results = match &kind {
                    Some(k) => vec![index::build_type(&db, &cfg, k).await],
                    None if cfg.crm.records.is_empty() => {
                        println!("no [[crm.records]] configured: nothing to index");
                        Vec::new()
                    }
                    None => index::build_each(&db, &cfg).await,
                };
                let mut code = ExitCode::SUCCESS;
                for r in results {
                    match r {
                        Ok(r) => println!("{}", index::render_report(&r)),
                        Err(e) => {
                            eprintln!("error: {e}");
                            code = ExitCode::FAILURE;
                        }
                    }
                }
                code
            }
        };
        db.close().await;
        code
    })
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
