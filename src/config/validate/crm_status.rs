//! `status_column`/`status_values` of `[[crm.records]]`: what a call note
//! may write into the CRM's own table.

use super::Problems;
use crate::config::CrmRecord;
use crate::db_kind::is_identifier;

/// Values a note may write into the CRM's status column, at most.
pub const MAX_STATUS_VALUES: usize = 100;

/// `status_column`/`status_values`: the only CRM write, so the column must be
/// a plain name and the values a short, explicit list (each fits
/// `{call_notes}.status`, VARCHAR(64)).
pub(super) fn check_status(p: &mut Problems, i: usize, r: &CrmRecord) {
    let key = |k: &str| format!("crm.records[{i}].{k}");
    match &r.status_column {
        Some(c) => {
            if !is_identifier(c) {
                p.add(key("status_column"), format!("{c:?} is not a column name"));
            }
            if r.status_values.is_empty() {
                p.add(
                    key("status_values"),
                    "list the values a note may set status_column to",
                );
            }
        }
        None if !r.status_values.is_empty() => p.add(
            key("status_values"),
            "is set without status_column; name the column they are written to",
        ),
        None => {}
    }
    if r.status_values.len() > MAX_STATUS_VALUES {
        p.add(
            key("status_values"),
            format!("at most {MAX_STATUS_VALUES} values"),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (j, v) in r.status_values.iter().enumerate() {
        let k = format!("crm.records[{i}].status_values[{j}]");
        if v.trim().is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
            p.add(k, format!("{v:?} must be 1 to 64 printable characters"));
        } else if !seen.insert(v.as_str()) {
            p.add(k, format!("{v:?} is listed twice"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate::{Problem, Purpose};
    use crate::config::Config;

    fn problems(extra: &str) -> Vec<Problem> {
        let text = format!("[[crm.records]]\ntype = \"deal\"\ntable = \"deals\"\n{extra}");
        let cfg: Config = toml::from_str(&text).expect("config");
        cfg.problems(Purpose::Any)
            .into_iter()
            .filter(|p| p.key.starts_with("crm.records[0].status"))
            .collect()
    }

    #[test]
    fn status_columns_need_a_plain_name_and_values() {
        assert_eq!(
            problems("status_column = \"stage\"\nstatus_values = [\"won\", \"lost\"]"),
            vec![]
        );
        let keys =
            |extra: &str| -> Vec<String> { problems(extra).into_iter().map(|p| p.key).collect() };
        assert_eq!(
            keys("status_column = \"stage\""),
            ["crm.records[0].status_values"]
        );
        assert_eq!(
            keys("status_column = \"stage; DROP TABLE x\"\nstatus_values = [\"a\"]"),
            ["crm.records[0].status_column"]
        );
        assert_eq!(
            keys("status_values = [\"a\"]"),
            ["crm.records[0].status_values"]
        );
        assert_eq!(
            keys("status_column = \"s\"\nstatus_values = [\"a\", \"a\", \"\"]"),
            [
                "crm.records[0].status_values[1]",
                "crm.records[0].status_values[2]"
            ]
        );
    }
}
