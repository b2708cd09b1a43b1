//! PostgreSQL's COPY for full builds: rows as COPY text, streamed.

use super::*;

/// One field of COPY's text format; `None` is `\N`.
pub(super) fn copy_field(buf: &mut Vec<u8>, value: Option<&str>) {
    let Some(v) = value else {
        buf.extend_from_slice(b"\\N");
        return;
    };
    for b in v.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => buf.push(b),
        }
    }
}

pub(super) async fn copy_rows(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    kind: &str,
    rows: &[IndexRow],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::with_capacity(rows.len() * 96);
    for r in rows {
        let fields = [
            Some(kind),
            Some(cut(&r.record_id, 191)),
            Some(cut(&r.field, 64)),
            Some(cut(&r.raw, MAX_RAW)),
            r.number.as_deref(),
            r.extension.as_deref(),
            r.display_name.as_deref().map(|n| cut(n, 255)),
        ];
        for (i, f) in fields.into_iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            copy_field(&mut buf, f);
        }
        buf.push(b'\n');
    }
    let mut copy = conn.copy_in_raw(sql).await?;
    copy.send(buf).await?;
    copy.finish().await.map(|_| ())
}
