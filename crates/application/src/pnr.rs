//! Unique booking references.
//!
//! A PNR is 6 random characters. Every code is registered in `booking_pnrs`
//! before it is used, so no two bookings share one. Codes are reserved in
//! blocks and handed out from memory: a booking normally costs no query.

use std::sync::Mutex;

use domain::values::Pnr;
use sqlx::PgPool;

use crate::error::{CommandError, CommandResult};

/// Codes reserved per round trip.
const BLOCK: usize = 64;
/// Blocks in a row that yield nothing mean something else is wrong.
const MAX_ROUNDS: usize = 8;

pub struct PnrPool {
    pool: PgPool,
    free: Mutex<Vec<Pnr>>,
}

impl PnrPool {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            free: Mutex::new(Vec::new()),
        }
    }

    /// A PNR no other booking has or will have. `draw` supplies random
    /// bytes (the domain takes randomness as input).
    pub async fn next(&self, mut draw: impl FnMut() -> [u8; 6]) -> CommandResult<Pnr> {
        for _ in 0..MAX_ROUNDS {
            if let Some(pnr) = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop() {
                return Ok(pnr);
            }
            let codes: Vec<String> = (0..BLOCK)
                .map(|_| Pnr::from_random(draw()).as_str().to_string())
                .collect();
            let reserved: Vec<String> = sqlx::query_scalar(
                "INSERT INTO booking_pnrs (pnr) SELECT DISTINCT unnest($1::text[]) \
                 ON CONFLICT (pnr) DO NOTHING RETURNING pnr",
            )
            .bind(&codes)
            .fetch_all(&self.pool)
            .await?;
            let clashes = BLOCK - reserved.len();
            if clashes > 0 {
                metrics::counter!("booking_pnr_clashes_total").increment(clashes as u64);
            }
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            free.extend(reserved.iter().filter_map(|c| Pnr::parse(c).ok()));
        }
        Err(CommandError::Unavailable(
            "could not find a free booking reference; retry".into(),
        ))
    }
}
