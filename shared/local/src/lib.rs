//! Local mode: the whole API from one process, on SQLite and a folder under `DATA_DIR`, with its
//! own signed blob URLs. No AWS account, no keys.

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::book_files::enqueue_step;
use storybook_core::catalogue::Family;
use storybook_core::config::{Config, LocalSettings, pepper_from_env};
use storybook_core::domain::book::Step;
use storybook_core::domain::credential::{CredentialHasher, Pepper};
use storybook_core::ports::{BlobKey, BlobStore};
use storybook_core::usecases::Refusal;
use storybook_embedded::LOCAL_BLOB_PATH;
use storybook_embedded::{Database, FolderBlobs, LocalUrlSigner, SqliteQueue, SqliteStore};
use storybook_http::error::ApiError;
use storybook_http::extract::{PathParam, QueryParams};
use storybook_http::{AppState, api, with_edges};
use storybook_pipeline::pipeline::{Pipeline, worker};
use storybook_pipeline::print::{LuluPrinter, LuluSettings};
use storybook_pipeline::providers::settings::ProviderSettings;
use storybook_pipeline::studio::ProviderStudio;
use storybook_stores::Stores;
use storybook_stores::settings::StoreSettings;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The pepper from `KEY_PEPPER`, else the one kept in the data folder (made on first start), so
/// that users and keys survive restarts.
pub fn local_pepper(data_dir: &FsPath) -> anyhow::Result<Pepper> {
    if let Some(pepper) = pepper_from_env()? {
        return Ok(pepper);
    }
    let path = data_dir.join("pepper");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Pepper::new(bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pepper = Pepper::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(&mut options.open(&path)?, pepper.as_bytes())?;
            Ok(pepper)
        }
        Err(e) => Err(e.into()),
    }
}

/// Local mode's state over a data folder.
pub struct LocalMode {
    pub state: AppState,
    pub signer: LocalUrlSigner,
    pub pipeline: Arc<Pipeline>,
    store: SqliteStore,
    queue: SqliteQueue,
}

impl LocalMode {
    /// Local mode over `local.data_dir`, making books with `providers` (offline where no key is
    /// set).
    pub fn open(
        mut config: Config,
        local: &LocalSettings,
        providers: &ProviderSettings,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&local.data_dir)?;
        // Share links point at what the signed URLs point at, unless set apart.
        config
            .share_base_url
            .get_or_insert_with(|| local.public_base_url.clone());
        let hasher = CredentialHasher::new(local_pepper(&local.data_dir)?);
        let db = Database::open(&local.data_dir.join("storybook.sqlite3"))?;
        let signer = LocalUrlSigner::new(hasher.clone(), &local.public_base_url);
        let blobs = FolderBlobs::new(local.data_dir.join("blobs"), signer.clone())?;
        let store = SqliteStore::new(db.clone());
        let queue = SqliteQueue::new(db);
        let mut state = AppState::new(
            Arc::new(store.clone()),
            Arc::new(blobs),
            Arc::new(queue.clone()),
            hasher,
            config,
        );
        let providers = providers.build(state.store.clone(), state.clock.clone());
        state.studio = Arc::new(ProviderStudio::new(&state, providers.clone()));
        let pipeline = Arc::new(Pipeline::new(&state, providers));
        Ok(Self {
            state,
            signer,
            pipeline,
            store,
            queue,
        })
    }

    /// Picks up where an earlier run stopped, then runs the generation steps, the stuck-book
    /// sweep and the subscription reconcile in the background.
    pub async fn start_worker(&self) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let released = self.queue.release_in_flight().await?;
        let queued = self.store.queued_books().await?;
        for id in &queued {
            enqueue_step(&*self.state.queue, id, Step::Story).await?;
        }
        if released > 0 || !queued.is_empty() {
            tracing::info!(
                released,
                requeued = queued.len(),
                "resuming unfinished books"
            );
        }
        tokio::spawn(storybook_core::book_records::sweep_local(
            self.state.store.clone(),
            self.state.clock.clone(),
            self.state.config.stuck_book_after,
        ));
        tokio::spawn(storybook_core::usecases::store_events::reconcile_local(
            self.state.app.clone(),
        ));
        Ok(tokio::spawn(worker::run_local(self.pipeline.clone())))
    }

    /// Every API route, plus the signed blob route only local mode has.
    pub fn router(&self) -> Router {
        let blobs = Router::new()
            .route(&format!("{LOCAL_BLOB_PATH}/{{*key}}"), get(serve_blob))
            .with_state(BlobRoute {
                blobs: self.state.blobs.clone(),
                signer: self.signer.clone(),
            });
        with_edges(
            api(self.state.clone(), Family::ALL).merge(blobs),
            &self.state.config,
        )
    }
}

#[derive(Clone)]
struct BlobRoute {
    blobs: Arc<dyn BlobStore>,
    signer: LocalUrlSigner,
}

#[derive(Deserialize)]
struct Signature {
    expires: Option<i64>,
    signature: Option<String>,
}

async fn serve_blob(
    State(route): State<BlobRoute>,
    PathParam(key): PathParam,
    QueryParams(signature): QueryParams<Signature>,
) -> Result<impl IntoResponse, ApiError> {
    let not_found = || ApiError::from(Refusal::not_found("blob", key.clone()));
    let key_parsed = BlobKey::parse(&key).map_err(|_| not_found())?;
    let (Some(expires), Some(signature)) = (signature.expires, signature.signature) else {
        return Err(Refusal::Forbidden("A signed URL is required".into()).into());
    };
    if !route
        .signer
        .verify(&key_parsed, expires, &signature, chrono::Utc::now())
    {
        return Err(
            Refusal::Forbidden("The URL's signature is invalid or has expired".into()).into(),
        );
    }
    let bytes = route.blobs.get(&key_parsed).await?.ok_or_else(not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, key_parsed.content_type()),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        bytes,
    ))
}

/// What one client may hold of the local server: it is reachable from a laptop's network, so a
/// client that trickles its headers or body, or keeps a connection idle, must not hold a
/// connection forever, and connections are capped.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a request's headers may take to arrive, counted from when the connection starts
    /// waiting for them (so an idle keep-alive connection is closed after it too).
    pub headers: Duration,
    /// How long a request may take once its headers are in, its body included (408 after).
    pub request: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            headers: Duration::from_secs(10),
            request: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// Serves `router` on `listener` until Ctrl-C or SIGTERM.
pub async fn serve(listener: TcpListener, router: Router) -> anyhow::Result<()> {
    serve_with(
        listener,
        router,
        ConnectionLimits::default(),
        shutdown_signal(),
    )
    .await
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the
/// connections being served finish (at most `limits.request`).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(limits.request, next.run(request)).await {
                Ok(response) => response,
                Err(_) => storybook_http::error::envelope(
                    StatusCode::REQUEST_TIMEOUT,
                    storybook_http::error::ErrorCode::RequestTimeout,
                    "The request took too long to arrive",
                    None,
                )
                .into_response(),
            }
        },
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then a connection: past the cap, clients wait in the backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit?,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(error = %error, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.headers)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection closed");
            }
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(limits.request, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

/// The local server's whole start-up: settings, data folder, admin key, listen.
pub async fn run() -> anyhow::Result<()> {
    storybook_core::telemetry::init();
    let config = Config::from_env()?;
    let local = LocalSettings::from_env()?;
    let stores = StoreSettings::from_lookup(&|name| std::env::var(name).ok(), config.environment)?;
    let config_environment = config.environment;
    let mut mode = LocalMode::open(config, &local, &ProviderSettings::from_env()?)?;
    if stores.any() {
        mode.state.marketplace = Arc::new(Stores::new(stores)?);
    }
    let lulu = LuluSettings::from_lookup(&|name| std::env::var(name).ok(), config_environment)?;
    if let Some(lulu) = lulu {
        let printer = LuluPrinter::new(lulu, mode.state.blobs.clone());
        mode.state.app.printer = Arc::new(printer);
    }
    let configured = std::env::var("BOOTSTRAP_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if let Some(fresh) =
        storybook_core::bootstrap::bootstrap_admin_key(&mode.state, configured.as_deref()).await?
    {
        // Printed once, to the terminal only (never to the log stream): it is the operator's key.
        eprintln!(
            "\nAdmin API key (shown once; set BOOTSTRAP_ADMIN_KEY to choose your own):\n  {}\n",
            fresh.expose()
        );
    }
    let _worker = mode.start_worker().await?;
    let listener = TcpListener::bind(("127.0.0.1", local.port)).await?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %local.data_dir.display(), "local mode listening");
    serve(listener, mode.router()).await
}
