//! What config can know about a database without opening one: the backend
//! a URL names, and which names may be put into SQL text. A leaf, so config
//! and `db` share it without config importing `db`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// The backend a URL names, by its scheme.
    pub fn from_url(url: &str) -> Option<Backend> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            "mysql" | "mariadb" => Some(Backend::MySql),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// A name the config may use for a prefix, schema, table or column part:
/// letters, digits and `_`, not starting with a digit, at most 64 bytes. Only
/// such names are ever put into SQL text, so config cannot inject SQL.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        && !s.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("phone_work"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a;drop"));
        assert!(!is_identifier(""));
        assert_eq!(Backend::from_url("postgresql://x"), Some(Backend::Postgres));
        assert_eq!(Backend::from_url("mariadb://x"), Some(Backend::MySql));
        assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("oracle://x"), None);
    }
}
