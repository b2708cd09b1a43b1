//! Why a database server could not be reached, said plainly.
//!
//! sqlx's pool retries a refused connection silently until its acquire
//! timeout and then reports only "pool timed out", so the first connection is
//! made by hand: its error names the cause (refused, unknown host, wrong
//! password, no such database) at once, and the caller's retry decides what
//! to do about it.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection};

use super::DbError;

/// How long the first connection may take before the server counts as silent
/// (a dropped SYN waits for the kernel's two minutes otherwise).
const NO_ANSWER: Duration = Duration::from_secs(10);

/// The server a URL names, for error messages (never the password).
pub(super) struct Server {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub socket: Option<PathBuf>,
    pub user: String,
    pub database: Option<String>,
}

/// The `Server` of PostgreSQL or MySQL connect options (same getters, no
/// shared trait).
macro_rules! server_of {
    ($o:expr, $shown:expr) => {
        $crate::db::connect::Server {
            url: $shown.clone(),
            host: $o.get_host().to_owned(),
            port: $o.get_port(),
            socket: $o.get_socket().cloned(),
            user: $o.get_username().to_owned(),
            database: $o.get_database().map(str::to_owned),
        }
    };
}
pub(super) use server_of;

impl Server {
    /// `host:port` (IPv6 in brackets), or the socket path.
    pub fn addr(&self) -> String {
        match &self.socket {
            Some(p) => p.display().to_string(),
            None if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Opens one connection and closes it again; the error says what went wrong.
pub(super) async fn probe<O>(options: &O, server: &Server) -> Result<(), DbError>
where
    O: ConnectOptions,
    O::Connection: Sized,
{
    match tokio::time::timeout(NO_ANSWER, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(classify(e, server).await),
        Err(_) => Err(DbError::NoAnswer {
            addr: server.addr(),
            secs: NO_ANSWER.as_secs(),
        }),
    }
}

async fn classify(e: sqlx::Error, server: &Server) -> DbError {
    if let sqlx::Error::Io(io) = &e {
        if io.kind() == std::io::ErrorKind::ConnectionRefused {
            return DbError::Refused {
                addr: server.addr(),
            };
        }
        // std gives a failed lookup no kind of its own: ask again to be sure.
        if server.socket.is_none()
            && tokio::net::lookup_host((server.host.as_str(), server.port))
                .await
                .is_err()
        {
            return DbError::UnknownHost {
                host: server.host.clone(),
                reason: io.to_string(),
            };
        }
    }
    match refusal(&e) {
        Some(Refusal::Login) => DbError::AuthRefused {
            addr: server.addr(),
            user: server.user.clone(),
            source: e,
        },
        Some(Refusal::NoDatabase) => DbError::NoDatabase {
            addr: server.addr(),
            name: server.database.clone().unwrap_or_default(),
            source: e,
        },
        None => DbError::Connect {
            url: server.url.clone(),
            source: e,
        },
    }
}

enum Refusal {
    Login,
    NoDatabase,
}

fn refusal(e: &sqlx::Error) -> Option<Refusal> {
    let d = e.as_database_error()?;
    // MySQL's SQLSTATE for an unknown database is the generic 42000: its
    // error number says more.
    if let Some(m) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match m.number() {
            1045 | 1044 | 1698 => Some(Refusal::Login),
            1049 => Some(Refusal::NoDatabase),
            _ => None,
        };
    }
    match d.code()?.as_ref() {
        // invalid_password, invalid_authorization_specification
        "28P01" | "28000" => Some(Refusal::Login),
        // invalid_catalog_name
        "3D000" => Some(Refusal::NoDatabase),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, port: u16) -> Server {
        Server {
            url: "postgres://u@h/x".into(),
            host: host.into(),
            port,
            socket: None,
            user: "u".into(),
            database: Some("x".into()),
        }
    }

    #[test]
    fn addresses_are_host_port() {
        assert_eq!(server("127.0.0.1", 5433).addr(), "127.0.0.1:5433");
        assert_eq!(server("::1", 5433).addr(), "[::1]:5433");
        let mut s = server("localhost", 5432);
        s.socket = Some("/run/postgresql/.s.PGSQL.5432".into());
        assert_eq!(s.addr(), "/run/postgresql/.s.PGSQL.5432");
    }

    #[tokio::test]
    async fn a_refused_connection_is_named_at_once() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let opts = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username("postgres")
            .password("s3cret")
            .database("x");
        let started = std::time::Instant::now();
        let e = probe(&opts, &server("127.0.0.1", port)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(e, DbError::Refused { .. }), "{e:?}");
        assert!(e.is_unavailable());
        let text = e.to_string();
        assert!(text.contains(&format!("connection refused to 127.0.0.1:{port}")));
        assert!(!text.contains("s3cret"));
    }

    #[tokio::test]
    async fn an_unknown_host_is_named() {
        // .invalid never resolves (RFC 2606).
        let opts = sqlx::postgres::PgConnectOptions::new()
            .host("no-such-host.invalid")
            .port(5432)
            .username("postgres");
        let e = probe(&opts, &server("no-such-host.invalid", 5432))
            .await
            .unwrap_err();
        assert!(matches!(e, DbError::UnknownHost { .. }), "{e:?}");
        assert!(e.to_string().contains("no-such-host.invalid"));
        assert!(e.is_unavailable());
    }
}
