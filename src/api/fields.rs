//! A JSON object body read field by field, so that a wrong type or an
//! unknown field is a problem naming that field (`param: "duration"`), not
//! the whole body.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::problem::ApiError;

/// `Path<T>` whose rejection (bad percent-encoding, a segment of the wrong
/// type) is a problem naming the path, not axum's plain text.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(PathParams(v)),
            Err(e) => Err(ApiError::bad("path", e.body_text())),
        }
    }
}

/// A row id in a path (`note_id`): digits, else a 400 naming it; a number
/// too large to be a row is a row that does not exist (`what` not found).
pub fn row_id(name: &str, text: &str, what: &str) -> Result<i64, ApiError> {
    if text.is_empty() || text.len() > 40 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad(name, "must be a number"));
    }
    text.parse().map_err(|_| ApiError::not_found(what))
}

/// Fields a body may have, at most (every body here has a handful).
const MAX_FIELDS: usize = 32;

/// The fields of a JSON object not read yet.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// `body` must be an object whose keys are all in `known`.
    pub fn new(body: Value, known: &[&str]) -> Result<Fields, ApiError> {
        let Value::Object(map) = body else {
            return Err(ApiError::bad("body", "must be a JSON object"));
        };
        if map.len() > MAX_FIELDS {
            return Err(ApiError::bad("body", "too many fields"));
        }
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            let shown: String = k.chars().take(64).collect();
            return Err(ApiError::bad(
                shown.clone(),
                format!(
                    "unknown field {shown:?}; the fields are {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(Fields { map })
    }

    /// An optional field; `null` is the same as absent.
    pub fn take<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| ApiError::bad(name, e.to_string())),
        }
    }

    /// A field that must be there.
    pub fn need<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ApiError> {
        self.take(name)?
            .ok_or_else(|| ApiError::bad(name, "is required"))
    }
}

/// Checks a text field's length in characters and refuses control
/// characters (a line break is allowed where `multiline`).
pub fn text(name: &str, value: &str, max_chars: usize, multiline: bool) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::bad(name, "must not be empty"));
    }
    let n = value.chars().count();
    if n > max_chars {
        return Err(ApiError::bad(
            name,
            format!("is {n} characters long; at most {max_chars} are allowed"),
        ));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ApiError::bad(name, "must not hold control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(e: ApiError) -> String {
        e.problem().param.unwrap_or_default()
    }

    #[test]
    fn errors_name_the_field() {
        let e = Fields::new(json!({"a": 1, "zz": 2}), &["a"]).unwrap_err();
        assert_eq!(param(e), "zz");
        assert_eq!(param(Fields::new(json!([1]), &["a"]).unwrap_err()), "body");
        let mut f = Fields::new(json!({"a": "x", "b": null}), &["a", "b", "c"]).unwrap();
        assert_eq!(param(f.take::<f64>("a").unwrap_err()), "a");
        assert_eq!(f.take::<String>("b").unwrap(), None);
        assert_eq!(param(f.need::<String>("c").unwrap_err()), "c");
    }

    #[test]
    fn text_limits() {
        assert!(text("n", "ok", 2, false).is_ok());
        assert!(text("n", "long", 2, false).is_err());
        assert!(text("n", "  ", 9, false).is_err());
        assert!(text("n", "a\nb", 9, false).is_err());
        assert!(text("n", "a\nb", 9, true).is_ok());
        assert!(text("n", "a\u{0}b", 9, true).is_err());
    }
}
