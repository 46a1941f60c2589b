//! Assembles a runnable service from the layers: the HTTP stack around an MCP handler, plus the
//! admin listener. `main` and the tests (and any other binary of this library) share it.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use axum::Router;
use rmcp::ServerHandler;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Settings,
    http::{self, Readiness, Server, auth::Authenticator},
    mcp::{self, EndpointOptions},
};

pub struct App {
    server: Server,
    public: Router,
    admin: Router,
    readiness: Readiness,
    mcp_shutdown: CancellationToken,
}

impl App {
    /// Binds both listeners and builds the routers; nothing is served until [`App::run`].
    /// A configuration problem found here (e.g. an unreadable JWKS file) is an
    /// [`io::ErrorKind::InvalidInput`] error.
    /// `admin` holds the admin listener's routes (`/metrics`).
    pub async fn bind<H>(settings: &Settings, handler: Arc<H>, admin: Router) -> io::Result<Self>
    where
        H: ServerHandler + Send + Sync + 'static,
    {
        let auth = Authenticator::from_settings(&settings.auth)
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let server = Server::bind(settings).await?;
        let mcp_shutdown = CancellationToken::new();
        let endpoint = mcp::endpoint(
            handler,
            EndpointOptions {
                max_body_bytes: settings.http.max_body_bytes,
                shutdown: mcp_shutdown.clone(),
            },
        );
        let readiness = Readiness::default();
        let public = http::router(&settings.http, endpoint, readiness.clone(), auth);
        Ok(Self {
            server,
            public,
            admin,
            readiness,
            mcp_shutdown,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.server.public_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Serves until `shutdown` resolves, then drains (see [`Server::run`]).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        self.server
            .run(
                self.public,
                self.admin,
                self.readiness,
                self.mcp_shutdown,
                shutdown,
            )
            .await;
    }
}
