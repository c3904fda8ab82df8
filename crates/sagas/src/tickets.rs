//! The ticket issuer port and a simulated issuer.
//!
//! An issuer turns a confirmed booking into one 13-digit e-ticket number
//! per passenger: the airline's 3-digit accounting prefix and a 10-digit
//! serial. Issuing twice for one booking may use up serials (airlines void
//! unused numbers), but only the first set is ever recorded: the saga's
//! `IssueTickets` command carries an id derived from the saga.

use async_trait::async_trait;
use domain::values::TicketNumber;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRequest {
    pub booking_id: Uuid,
    /// The flight's IATA airline designator (`BA` of `BA117`).
    pub airline: String,
    pub passengers: Vec<Uuid>,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// Worth retrying later.
    #[error("ticketing unavailable: {0}")]
    Transient(String),
    /// The issuer will not ticket this booking: the saga refunds it and
    /// gives its seats back.
    #[error("ticketing refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait TicketIssuer: Send + Sync + 'static {
    /// One ticket per passenger, in the order given.
    async fn issue(&self, request: &TicketRequest) -> Result<Vec<TicketNumber>, IssueError>;
}

/// Numbers from a PostgreSQL sequence (`ticket_serials`), prefixed with a
/// stable 3-digit code derived from the airline designator.
#[derive(Clone)]
pub struct SimulatedIssuer {
    pool: PgPool,
}

impl SimulatedIssuer {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// A stable accounting prefix for a designator (100-999): the real table
/// (BA = 125, LH = 220, ...) belongs to IATA, not to this engine.
pub fn airline_prefix(designator: &str) -> u16 {
    let n = designator
        .bytes()
        .fold(0u32, |acc, b| (acc * 37 + u32::from(b)) % 900);
    100 + n as u16
}

#[async_trait]
impl TicketIssuer for SimulatedIssuer {
    async fn issue(&self, request: &TicketRequest) -> Result<Vec<TicketNumber>, IssueError> {
        let serials: Vec<i64> =
            sqlx::query_scalar("SELECT nextval('ticket_serials') FROM generate_series(1, $1::int)")
                .bind(request.passengers.len() as i32)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| IssueError::Transient(e.to_string()))?;
        let prefix = airline_prefix(&request.airline);
        serials
            .into_iter()
            .map(|s| {
                TicketNumber::new(prefix, s as u64).map_err(|e| IssueError::Refused(e.to_string()))
            })
            .collect()
    }
}
