//! Logging in to NATS: a `.creds` file, or a user and a password file, or
//! nothing. The login is answered by a callback, which is also how a
//! client is kept from reconnecting by itself (see `connect`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::AuthError;

use super::{server_addrs, NatsError, REQUEST_TIMEOUT};
use crate::backoff::Backoff;
use crate::config::NatsConfig;

/// How to log in. Its `Debug` shows neither the password nor the key.
pub(super) enum Auth {
    None,
    Credentials {
        jwt: String,
        key: Box<nkeys::KeyPair>,
    },
    Password {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Credentials { key, .. } => f
                .debug_struct("Credentials")
                .field("user", &key.public_key())
                .field("seed", &"***")
                .finish(),
            Auth::Password { user, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .field("password", &"***")
                .finish(),
        }
    }
}

impl Auth {
    /// What to answer the server's `nonce` with.
    fn login(&self, nonce: &[u8]) -> Result<async_nats::Auth, AuthError> {
        let mut a = async_nats::Auth::new();
        match self {
            Auth::None => {}
            Auth::Credentials { jwt, key } => {
                a.jwt = Some(jwt.clone());
                a.signature = Some(key.sign(nonce).map_err(AuthError::new)?);
            }
            Auth::Password { user, password } => {
                a.username = Some(user.clone());
                a.password = Some(password.clone());
            }
        }
        Ok(a)
    }
}

fn read(path: &PathBuf) -> Result<String, NatsError> {
    std::fs::read_to_string(path).map_err(|source| NatsError::File {
        path: path.clone(),
        source,
    })
}

/// The JWT and the seed of a `.creds` file: each the first line after
/// its `-----BEGIN ...-----` marker.
fn parse_creds(text: &str) -> Option<(String, nkeys::KeyPair)> {
    let after = |marker: &str| {
        let mut lines = text.lines().map(str::trim);
        lines.find(|l| l.starts_with("---") && l.contains(marker))?;
        lines.find(|l| !l.is_empty()).map(str::to_owned)
    };
    let jwt = after("BEGIN NATS USER JWT")?;
    let seed = after("BEGIN USER NKEY SEED")?;
    Some((jwt, nkeys::KeyPair::from_seed(&seed).ok()?))
}

pub(super) fn read_auth(cfg: &NatsConfig) -> Result<Auth, NatsError> {
    if let Some(path) = &cfg.credentials_file {
        let (jwt, key) = parse_creds(&read(path)?).ok_or_else(|| NatsError::File {
            path: path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a NATS credentials file (user JWT and nkey seed)",
            ),
        })?;
        return Ok(Auth::Credentials {
            jwt,
            key: Box::new(key),
        });
    }
    let (Some(user), Some(path)) = (&cfg.user, &cfg.password_file) else {
        return Ok(Auth::None);
    };
    Ok(Auth::Password {
        user: user.clone(),
        password: read(path)?.trim_end_matches(['\r', '\n']).to_owned(),
    })
}

/// Connects once; the tasks retry a failed connect with their own backoff.
///
/// `reconnect`: the client reconnects by itself after a loss, for ever.
/// Without it, the client is done once its connection is lost: its login
/// callback refuses every login after the first, so it gives up (one
/// attempt) and drops what it still queued. A publisher needs this: a
/// client that reconnects sends what it queued while away, but not what
/// the lost connection was carrying, so a later event could be stored
/// before an earlier one.
pub(super) async fn connect(
    cfg: &NatsConfig,
    name: &str,
    reconnect: bool,
) -> Result<async_nats::Client, NatsError> {
    let addrs = server_addrs(&cfg.url)?;
    let auth = Arc::new(read_auth(cfg)?);
    let logged_in = Arc::new(AtomicBool::new(false));
    let gate = logged_in.clone();
    let opts = async_nats::ConnectOptions::with_auth_callback(move |nonce| {
        let (auth, gate) = (auth.clone(), gate.clone());
        async move {
            if !reconnect && gate.load(Ordering::Acquire) {
                return Err(AuthError::new("this client does not reconnect"));
            }
            auth.login(&nonce)
        }
    });
    let client = opts
        .name(name)
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(if reconnect { None } else { Some(1) })
        .reconnect_delay_callback(|attempt| {
            // The same steps as the tasks' own retries.
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
            for _ in 1..attempt.min(20) {
                b.next_wait();
            }
            b.next_wait()
        })
        .connect(addrs)
        .await
        .map_err(NatsError::Connect)?;
    logged_in.store(true, Ordering::Release);
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_read_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2-secret\n").unwrap();
        let cfg = NatsConfig {
            user: Some("sensor".into()),
            password_file: Some(file),
            ..NatsConfig::default()
        };
        let auth = read_auth(&cfg).unwrap();
        let login = auth.login(b"nonce").unwrap();
        assert_eq!(login.password.as_deref(), Some("hunter2-secret"));
        assert_eq!(login.username.as_deref(), Some("sensor"));
        let shown = format!("{auth:?}");
        assert!(
            shown.contains("sensor") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn creds_file_signs_the_nonce() {
        let key = nkeys::KeyPair::new_user();
        let seed = key.seed().unwrap();
        let text = format!(
            "-----BEGIN NATS USER JWT-----\neyJhbGciOi.fake.jwt\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("user.creds");
        std::fs::write(&file, text).unwrap();
        let cfg = NatsConfig {
            credentials_file: Some(file),
            ..NatsConfig::default()
        };
        let auth = read_auth(&cfg).unwrap();
        let login = auth.login(b"the-nonce").unwrap();
        assert_eq!(login.jwt.as_deref(), Some("eyJhbGciOi.fake.jwt"));
        key.verify(b"the-nonce", &login.signature.unwrap()).unwrap();
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains(&seed) && shown.contains(&key.public_key()),
            "{shown}"
        );

        let bad = dir.path().join("bad.creds");
        std::fs::write(&bad, "no markers").unwrap();
        let cfg = NatsConfig {
            credentials_file: Some(bad),
            ..NatsConfig::default()
        };
        assert!(matches!(read_auth(&cfg), Err(NatsError::File { .. })));
    }
}
