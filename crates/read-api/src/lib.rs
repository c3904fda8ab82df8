//! read-api: the query side of the CQRS split, GraphQL (async-graphql) over
//! the read models the projectors write, read through their contract
//! ([`projections::model`]). The schema is the one of the API contract
//! (`docs/api.md`); its SDL is kept in `schema/schema.graphql` (a test fails
//! when they differ; `UPDATE_SCHEMA=1` rewrites it).
//!
//! - Callers are identified by the access token ([`auth::TokenKeys`]); no
//!   token is anonymous, who may search flights and read seat maps. Role
//!   rules are in [`query`].
//! - Errors carry `extensions.code` ([`error::Code`]).
//! - Read-your-writes: `X-Read-After: <position>` waits for every projector
//!   ([`projections::wait_for`]) before the query runs ([`http`]).
//! - Lists are Relay connections with opaque keyset cursors ([`cursor`]);
//!   nested reads are batched ([`loaders`]); depth and complexity are
//!   limited ([`limits`]).
//!
//! # Layout
//! - [`http`]: the axum handlers (queries, GraphiQL, websocket).
//! - [`query`]: the `Query` root and its role rules; [`analytics`];
//!   [`itineraries`] (trips of several flights).
//! - [`subscription`]: `bookingUpdated`, `seatMapChanged`, `waitlistUpdated`
//!   (polling).
//! - [`types`]: contract types and the rows behind them.
//! - [`loaders`], [`cursor`], [`limits`], [`auth`], [`error`]: plumbing.

pub mod analytics;
pub mod auth;
pub mod cursor;
pub mod documents;
pub mod error;
pub mod http;
pub mod itineraries;
pub mod limits;
pub mod loaders;
pub mod query;
pub mod subscription;
pub mod types;

use std::time::Duration;

use ::auth::TokenKeys;
use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptyMutation, Schema};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use sqlx::PgPool;
use tower_http::timeout::TimeoutLayer;

pub use auth::Viewer;
pub use query::Query;
pub use subscription::Subscription;

/// The GraphQL schema of the read side.
pub type ReadSchema = Schema<Query, EmptyMutation, Subscription>;

/// Tunables of the read side.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    /// How long `X-Read-After` may wait before `STALE_READ`.
    pub read_after_timeout: Duration,
    /// How often subscriptions look at the read models.
    pub poll_interval: Duration,
    /// Whether `GET /graphql` serves the GraphiQL explorer.
    pub graphiql: bool,
    /// Whether the schema answers introspection queries.
    pub introspection: bool,
    /// The longest a query may run before it is answered 503.
    pub query_timeout: Duration,
    /// Subscriptions one websocket may hold at once.
    pub max_subscriptions_per_connection: usize,
    /// Websockets one client address may hold open at once.
    pub max_connections_per_address: usize,
}

impl Default for ReadSettings {
    fn default() -> Self {
        Self {
            read_after_timeout: Duration::from_secs(2),
            poll_interval: Duration::from_millis(200),
            graphiql: true,
            introspection: true,
            query_timeout: Duration::from_secs(10),
            max_subscriptions_per_connection: 16,
            max_connections_per_address: 8,
        }
    }
}

/// What the read side needs: the database with the read models, and the
/// keys that check access tokens (the write side's).
#[derive(Debug, Clone)]
pub struct ReadState {
    pub pool: PgPool,
    pub tokens: TokenKeys,
    pub settings: ReadSettings,
}

impl ReadState {
    pub fn new(pool: PgPool, tokens: TokenKeys) -> Self {
        Self {
            pool,
            tokens,
            settings: ReadSettings::default(),
        }
    }
}

/// The schema, wired to `state`'s database.
pub fn schema(state: &ReadState) -> ReadSchema {
    let loader = DataLoader::new(
        loaders::PgLoader {
            pool: state.pool.clone(),
        },
        tokio::spawn,
    );
    let mut builder = builder()
        .data(state.pool.clone())
        .data(loader)
        .data(subscription::Hub::default())
        .data(state.settings.clone());
    if !state.settings.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

fn builder() -> async_graphql::SchemaBuilder<Query, EmptyMutation, Subscription> {
    Schema::build(Query, EmptyMutation, Subscription)
        .limit_depth(limits::MAX_DEPTH_WITH_INTROSPECTION)
        .limit_complexity(limits::MAX_COMPLEXITY)
        .extension(limits::Limits)
}

/// The SDL of the schema, as kept in `schema/schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

#[derive(Clone)]
pub(crate) struct Served {
    state: ReadState,
    schema: ReadSchema,
    /// Open websockets per client address.
    sockets: subscription::Sockets,
}

/// `POST /graphql` (queries), `GET /graphql` (GraphiQL, unless turned
/// off) and `GET /graphql/ws` (subscriptions).
pub fn router(state: ReadState) -> Router {
    let schema = schema(&state);
    let timeout = TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        state.settings.query_timeout,
    );
    let query = if state.settings.graphiql {
        get(http::graphiql).post(http::graphql)
    } else {
        post(http::graphql)
    };
    let graphql = Router::new()
        .route("/graphql", query)
        .layer(DefaultBodyLimit::max(http::BODY_LIMIT))
        .layer(timeout);
    let documents = documents::router(state.clone());
    Router::new()
        .route("/graphql/ws", get(http::graphql_ws))
        .merge(graphql)
        .with_state(Served {
            state,
            schema,
            sockets: Default::default(),
        })
        .merge(documents)
}
