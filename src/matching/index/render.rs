//! What `pbxbridge index` prints: one line per build, and the stats table.

use super::*;

/// One line for a build or refresh, as `pbxbridge index rebuild` prints it.
pub fn render_report(r: &TypeReport) -> String {
    let c = &r.counts;
    format!(
        "{}: {} records, {} values ({} valid, of which {} extensions; {} invalid), {} in {:.2} s",
        r.record_type,
        c.records,
        c.values,
        c.valid,
        c.extensions,
        c.invalid,
        match r.mode {
            BuildMode::Full => "built",
            BuildMode::Refresh => "refreshed",
            BuildMode::Skipped => "unchanged",
        },
        r.secs
    )
}

/// `pbxbridge index stats` as text: a table of types (configured ones not
/// built yet included), then the invalid values.
pub fn render_stats(stats: &IndexStats, cfg: &Config, limit: u32) -> String {
    use std::fmt::Write as _;
    let when =
        |t: Option<crate::time::Timestamp>| t.map_or("never".to_string(), |t| t.to_rfc3339());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>10}  {:<27}  {:<27}",
        "type", "records", "values", "valid", "invalid", "extensions", "built", "refreshed"
    );
    for s in &stats.types {
        let c = &s.counts;
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9} {:>9} {:>9} {:>10}  {:<27}  {:<27}",
            s.record_type,
            c.records,
            c.values,
            c.valid,
            c.invalid,
            c.extensions,
            when(s.built_at),
            when(s.refreshed_at)
        );
    }
    for r in &cfg.crm.records {
        if !stats.types.iter().any(|s| s.record_type == r.kind) {
            let _ = writeln!(out, "{:<16} not built yet", r.kind);
        }
    }
    let total: u64 = stats.types.iter().map(|s| s.counts.invalid).sum();
    if total == 0 {
        let _ = writeln!(out, "\nno invalid values");
        return out;
    }
    let _ = writeln!(
        out,
        "\n{total} invalid values (not numbers; fix them in the CRM):"
    );
    let _ = writeln!(out, "{:<16} {:<20} {:<20} raw", "type", "id", "field");
    for v in &stats.invalid {
        let _ = writeln!(
            out,
            "{:<16} {:<20} {:<20} {:?}",
            v.record_type, v.record_id, v.field, v.raw
        );
    }
    if total > stats.invalid.len() as u64 {
        let _ = writeln!(
            out,
            "… and {} more (--limit {} shows more)",
            total - stats.invalid.len() as u64,
            u64::from(limit).max(total)
        );
    }
    out
}
