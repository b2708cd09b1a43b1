//! Serving the API on a listener the caller bound (port 0 in tests), plain or
//! TLS (rustls), until a shutdown future completes.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use super::{router, ApiState};

#[derive(Debug, thiserror::Error)]
pub enum ApiServeError {
    #[error("api.tls_cert / api.tls_key ({cert}, {key}): {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("api: {0}")]
    Io(#[from] std::io::Error),
}

/// How long a stop lets requests in flight finish.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiServeError> {
    let api = state.api_config().clone();
    let addr = listener.local_addr()?;
    let streams = state.events().ok().cloned();
    let shutdown = async move {
        shutdown.await;
        if let Some(s) = streams {
            s.close_streams();
        }
    };
    let app = router(state);
    match (&api.tls_cert, &api.tls_key) {
        (Some(cert), Some(key)) => {
            // sqlx already brings rustls with ring; one provider for the process.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|source| ApiServeError::Tls {
                    cert: cert.clone(),
                    key: key.clone(),
                    source,
                })?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(DRAIN));
            });
            tracing::info!(%addr, "HTTP API listening (TLS)");
            let std = listener.into_std()?;
            axum_server::from_tcp_rustls(std, tls)?
                .handle(handle)
                .serve(app.into_make_service())
                .await?;
        }
        _ => {
            tracing::info!(%addr, "HTTP API listening");
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
    }
    Ok(())
}
