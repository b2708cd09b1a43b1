//! `pbxbridge keys`: API keys made on the server itself (the first admin key
//! has to come from somewhere).

use super::{CommandError, KeysCommand};
use crate::api::problem::ApiError;
use crate::config::Config;
use crate::time::Timestamp;

pub async fn run_keys(cfg: &Config, cmd: &KeysCommand) -> Result<(), CommandError> {
    // Check the arguments before touching the database.
    let expires = match cmd {
        KeysCommand::Create {
            name,
            role,
            agent_id,
            expires,
        } => {
            crate::api::keys_check(cfg.api.as_ref(), name, role, agent_id.as_deref()).map_err(
                |e| match e {
                    ApiError::BadParam { param, reason } => CommandError::BadArg {
                        param: param.replace('_', "-"),
                        reason,
                    },
                    other => CommandError::BadArg {
                        param: "role".into(),
                        reason: other.to_string(),
                    },
                },
            )?;
            match expires {
                None => None,
                Some(text) => {
                    let d = crate::store::link::parse_lifetime(text)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| CommandError::BadArg {
                            param: "expires".into(),
                            reason: format!("{text:?}: give a number with s, m, h or d, e.g. 90d"),
                        })?;
                    Some(Timestamp::now().saturating_add(d))
                }
            }
        }
        _ => None,
    };
    let db = crate::db::DbTarget::from_config(cfg).connect().await?;
    let result = match cmd {
        KeysCommand::Create {
            name,
            role,
            agent_id,
            ..
        } => {
            let (key, token) = db
                .create_api_key(name.trim(), role, agent_id.as_deref(), expires)
                .await?;
            eprintln!(
                "created key {} ({}, role {}{}); the token is shown this once:",
                key.id,
                key.name,
                key.role,
                key.expires_at
                    .map(|t| format!(", expires {t}"))
                    .unwrap_or_default()
            );
            println!("{}", token.0);
            Ok(())
        }
        KeysCommand::List { json } => {
            let keys = db.api_keys().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                let now = Timestamp::now();
                println!(
                    "{:>5}  {:<16}  {:<12}  {:<12}  {:<8}  {:<20}  NAME",
                    "ID", "PREFIX", "ROLE", "AGENT", "STATE", "LAST USED"
                );
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else if !k.is_active(now) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:>5}  {:<16}  {:<12}  {:<12}  {:<8}  {:<20}  {}",
                        k.id,
                        k.prefix,
                        k.role,
                        k.agent_id.as_deref().unwrap_or("-"),
                        state,
                        k.last_used_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "never".into()),
                        k.name
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Revoke { key } => {
            if db.revoke_api_key(key).await? {
                println!("revoked {key}");
                Ok(())
            } else {
                Err(CommandError::NoSuchKey { key: key.clone() })
            }
        }
    };
    db.close().await;
    result
}
