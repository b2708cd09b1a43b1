//! The normaliser thread of a build: CRM rows in, phone values out, on every
//! core; it owns no connection, only CPU.

use super::*;

/// The normaliser: owns no connection, only CPU.
pub(super) struct Normalise {
    pub(super) fields: Vec<String>,
    pub(super) rules: PhoneRules,
    pub(super) agent: bool,
}

impl Normalise {
    /// Runs on a blocking thread until the reader's channel closes; passes
    /// `End` on only when the reader said it read everything.
    pub(super) fn run(
        self,
        mut raw: mpsc::Receiver<CrmChunk>,
        end: oneshot::Receiver<u64>,
        out: mpsc::Sender<IndexMsg>,
    ) {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS);
        while let Some(chunk) = raw.blocking_recv() {
            // A normaliser thread that panicked (a parser bug) ends the
            // build without `End`, so nothing half-done is committed.
            let Some(msg) = self.chunk(&chunk, threads) else {
                return;
            };
            if out.blocking_send(msg).is_err() {
                return;
            }
        }
        if let Ok(records) = end.blocking_recv() {
            let _ = out.blocking_send(IndexMsg::End { records });
        }
    }

    fn chunk(&self, chunk: &CrmChunk, threads: usize) -> Option<IndexMsg> {
        let rows: Vec<&[Option<String>]> = chunk.rows().collect();
        let per = rows.len().div_ceil(threads).max(1);
        let parts: Vec<Vec<IndexRow>> = if threads == 1 || rows.len() < 256 {
            vec![self.rows(&rows)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = rows
                    .chunks(per)
                    .map(|part| s.spawn(move || self.rows(part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().ok())
                    .collect::<Option<Vec<_>>>()
            })?
        };
        let record_ids = rows
            .iter()
            .filter_map(|r| r.first().cloned().flatten())
            .collect();
        Some(IndexMsg::Batch {
            record_ids,
            rows: parts.into_iter().flatten().collect(),
        })
    }

    /// The index rows of some CRM rows: `[id, phones…, name]` each.
    fn rows(&self, rows: &[&[Option<String>]]) -> Vec<IndexRow> {
        // The same value on many records (a company's main number) is parsed once.
        let mut seen: HashMap<&str, PhoneValue> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len() * self.fields.len());
        for row in rows {
            let Some(Some(id)) = row.first() else {
                continue;
            };
            let name = row.get(self.fields.len() + 1).cloned().flatten();
            for (j, field) in self.fields.iter().enumerate() {
                let Some(Some(raw)) = row.get(j + 1) else {
                    continue;
                };
                let value = seen
                    .entry(raw.as_str())
                    .or_insert_with(|| parse_crm_phone(raw, &self.rules, self.agent));
                let (number, extension) = match value {
                    PhoneValue::Empty => continue,
                    PhoneValue::Valid { number, extension } => {
                        (Some(number.clone()), extension.clone())
                    }
                    PhoneValue::Invalid => (None, None),
                };
                out.push(IndexRow {
                    record_id: id.clone(),
                    field: field.clone(),
                    raw: raw.clone(),
                    number,
                    extension,
                    display_name: name.clone(),
                });
            }
        }
        out
    }
}
