//! Columns that hold one of an enum's names (`direction`, `outcome`,
//! `end_reason`, `recording_status`): written with `as_str`, read back with
//! `FromStr`, so a name no version wrote is an error naming the column.

use std::str::FromStr;

use crate::call::UnknownName;

/// `text`, read from `column`, as `T`.
pub(crate) fn decode<T: FromStr<Err = UnknownName>>(
    column: &'static str,
    text: String,
) -> Result<T, sqlx::Error> {
    text.parse()
        .map_err(|e: UnknownName| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RecordingStatus;

    #[test]
    fn unknown_names_say_column_and_value() {
        let ok: RecordingStatus = decode("recording_status", "stored".into()).unwrap();
        assert_eq!(ok, RecordingStatus::Stored);
        let err = decode::<RecordingStatus>("recording_status", "lost".into()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("recording_status"), "{text}");
        assert!(text.contains("\"lost\""), "{text}");
    }
}
