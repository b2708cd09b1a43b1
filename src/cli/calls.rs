//! `pbxbridge calls`: the call log, a call and its links, linking by hand.

use super::{CallsCommand, CommandError};
use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::call::{Direction, Outcome, UnknownName};
use crate::config::Config;
use crate::db::call_list::{self, CallFilter};
use crate::db::{links, CallRow};
use crate::time::Timestamp;

/// `--outcome`: one of `Outcome::ALL`, by name; `--help` lists them.
pub fn outcome_parser() -> impl TypedValueParser<Value = Outcome> {
    names_parser(&Outcome::ALL, Outcome::as_str)
}

/// `--direction`: one of `Direction::ALL`, by name.
pub fn direction_parser() -> impl TypedValueParser<Value = Direction> {
    names_parser(&Direction::ALL, Direction::as_str)
}

fn names_parser<T>(all: &[T], as_str: fn(T) -> &'static str) -> impl TypedValueParser<Value = T>
where
    T: Copy + FromStr<Err = UnknownName> + Send + Sync + 'static,
{
    PossibleValuesParser::new(all.iter().map(|v| as_str(*v))).try_map(|name| name.parse::<T>())
}

/// `--since`: RFC 3339, or a date meaning its first moment (UTC).
pub fn parse_since(text: &str) -> Result<Timestamp, String> {
    parse_time(text, 0)
}

/// `--until`: RFC 3339, or a date meaning the whole of that day (UTC).
pub fn parse_until(text: &str) -> Result<Timestamp, String> {
    parse_time(text, 1)
}

fn parse_time(text: &str, days_after: u64) -> Result<Timestamp, String> {
    if let Some(t) = Timestamp::parse_rfc3339(text) {
        return Ok(t);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.checked_add_days(chrono::Days::new(days_after)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Timestamp::from_micros(t.and_utc().timestamp_micros()))
        .ok_or_else(|| "give an RFC 3339 time (2026-11-21T10:00:00Z) or a date (2026-11-21)".into())
}

/// A number as a person types it, stored the way calls store numbers: E.164
/// with `pbx.default_country` for national numbers, or an extension.
fn number_arg(cfg: &Config, raw: &str) -> Result<String, CommandError> {
    use crate::matching::phone::{parse_crm_phone, PhoneRules, PhoneValue};
    let bad = || CommandError::BadNumber {
        text: raw.to_owned(),
        country: cfg.pbx.default_country.clone(),
    };
    let rules = PhoneRules::from_config(&cfg.pbx).ok_or_else(bad)?;
    match parse_crm_phone(raw, &rules, true) {
        PhoneValue::Valid { number, .. } => Ok(number),
        _ => Err(bad()),
    }
}

/// Runs a `calls` subcommand against the configured database, printing on stdout.
pub async fn run_calls(cfg: &Config, cmd: &CallsCommand) -> Result<(), CommandError> {
    let sensor = cfg.pbx.sensor.as_str();
    // Check what a person typed before connecting: a typo is not a database problem.
    let filter = match cmd {
        CallsCommand::Link {
            record_type,
            record_id,
            ..
        }
        | CallsCommand::Unlink {
            record_type,
            record_id,
            ..
        } => {
            links::check_record(&cfg.crm, record_type, record_id)?;
            None
        }
        CallsCommand::List {
            number,
            since,
            until,
            outcome,
            direction,
            agent,
            record,
            limit,
            ..
        } => {
            let record = match record.as_slice() {
                [t, id] => {
                    links::check_record(&cfg.crm, t, id)?;
                    Some((t.clone(), id.clone()))
                }
                _ => None,
            };
            Some(CallFilter {
                number: number.as_deref().map(|n| number_arg(cfg, n)).transpose()?,
                since: *since,
                until: *until,
                outcomes: outcome.clone(),
                directions: direction.clone(),
                agent: agent.clone(),
                record,
                limit: *limit,
            })
        }
        CallsCommand::Show { .. } => None,
    };
    let db = crate::db::DbTarget::from_config(cfg).connect().await?;
    let out = match cmd {
        CallsCommand::Link {
            call_id,
            record_type,
            record_id,
            ..
        } => {
            let change = links::link(
                &db,
                sensor,
                call_id,
                record_type,
                record_id,
                crate::db::LinkSource::Manual,
            )
            .await?;
            println!(
                "{call_id}: {record_type} {record_id}: {}",
                change_text(change)
            );
            Ok(())
        }
        CallsCommand::Unlink {
            call_id,
            record_type,
            record_id,
            ..
        } => {
            let change = links::unlink(&db, sensor, call_id, record_type, record_id).await?;
            println!(
                "{call_id}: {record_type} {record_id}: {}",
                change_text(change)
            );
            Ok(())
        }
        CallsCommand::Show { call_id, json, .. } => {
            let Some((call, links)) = links::call_with_links(&db, sensor, call_id).await? else {
                db.close().await;
                return Err(crate::db::DbError::NoSuchCall {
                    sensor: sensor.to_owned(),
                    call_id: call_id.clone(),
                }
                .into());
            };
            if *json {
                let v = serde_json::json!({ "call": call, "links": links });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_call(&call, &links);
            }
            Ok(())
        }
        CallsCommand::List { json, .. } => match filter {
            Some(f) => list(&db, &f, *json).await,
            None => Ok(()),
        },
    };
    db.close().await;
    out
}

/// `calls list`: a record's calls with how each was linked, or the call log.
async fn list(db: &crate::db::Db, f: &CallFilter, json: bool) -> Result<(), CommandError> {
    if let Some((t, id)) = &f.record {
        let calls = call_list::record_calls(db, t, id, f).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&calls)?);
        } else if calls.is_empty() {
            println!("{t} {id}: no calls");
        }
        for c in calls.iter().filter(|_| !json) {
            let via = match (&c.via_type, &c.via_id) {
                (Some(vt), Some(vi)) => format!(" via {vt} {vi}"),
                _ => String::new(),
            };
            let field = c.field.as_deref().map(|f| format!(" ({f})"));
            println!(
                "{}  {}{}{}",
                call_line(&c.call),
                c.source,
                field.unwrap_or_default(),
                via
            );
        }
        return Ok(());
    }
    let calls = call_list::list_calls(db, f).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&calls)?);
    } else if calls.is_empty() {
        println!("no calls");
    }
    for c in calls.iter().filter(|_| !json) {
        let agent = c.agent.as_deref().map(|a| format!("  agent {a}"));
        println!("{}{}", call_line(c), agent.unwrap_or_default());
    }
    Ok(())
}

/// Started, Call-ID, direction, other party, outcome, talk time.
fn call_line(c: &CallRow) -> String {
    format!(
        "{}  {}  {}  {}  {}  {:.0} s",
        c.started_at,
        c.call_id,
        c.direction,
        c.other_number.as_deref().unwrap_or("-"),
        c.outcome,
        c.duration
    )
}

fn change_text(c: crate::db::LinkChange) -> &'static str {
    use crate::db::LinkChange::*;
    match c {
        Added => "linked",
        Restored => "linked again (it had been removed)",
        AlreadyLinked => "already linked",
        Removed => "unlinked; matching will not link it again",
        AlreadyRemoved => "already unlinked",
        NotLinked => "was not linked; matching will not link it",
    }
}

fn print_call(call: &CallRow, links: &[crate::db::Link]) {
    println!("call {} (sensor {})", call.call_id, call.sensor);
    println!(
        "  {}  {} -> {}  {}  {:.0} s  {} (ended {})",
        call.direction,
        call.from_number.as_deref().unwrap_or("-"),
        call.to_number.as_deref().unwrap_or("-"),
        call.outcome,
        call.duration,
        call.started_at,
        call.end_reason
    );
    if let Some(agent) = &call.agent {
        match (&call.agent_type, &call.agent_id) {
            (Some(t), Some(id)) => println!(
                "  agent {agent}: {t} {id}{}",
                call.agent_name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            _ => println!("  agent {agent}"),
        }
    }
    println!("  recording: {}", call.recording_status);
    if links.is_empty() {
        println!("links: none");
        return;
    }
    println!("links:");
    for l in links {
        println!(
            "  {} {}{}  {}{}{}{}",
            l.record_type,
            l.record_id,
            l.display_name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            l.source,
            l.field
                .as_deref()
                .map(|f| format!("  field {f}"))
                .unwrap_or_default(),
            match (&l.via_type, &l.via_id) {
                (Some(t), Some(i)) => format!("  via {t} {i}"),
                _ => String::new(),
            },
            l.removed_at
                .map(|t| format!("  removed {t}"))
                .unwrap_or_default()
        );
    }
}
