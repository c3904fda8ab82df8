//! Unique booking references.

use domain::values::Pnr;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Draws with this many clashes in a row mean something else is wrong.
const MAX_DRAWS: usize = 8;

/// Reserves a fresh PNR for `booking_id`, drawing again on a clash.
/// `draw` supplies the random bytes (the domain takes randomness as input).
pub async fn reserve(
    pool: &PgPool,
    booking_id: Uuid,
    mut draw: impl FnMut() -> [u8; 6],
) -> ApiResult<Pnr> {
    for _ in 0..MAX_DRAWS {
        let pnr = Pnr::from_random(draw());
        let reserved: Option<String> = sqlx::query_scalar(
            "INSERT INTO booking_pnrs (pnr, booking_id) VALUES ($1, $2) \
             ON CONFLICT (pnr) DO NOTHING RETURNING pnr",
        )
        .bind(pnr.as_str())
        .bind(booking_id)
        .fetch_optional(pool)
        .await?;
        if reserved.is_some() {
            return Ok(pnr);
        }
        metrics::counter!("booking_pnr_clashes_total").increment(1);
    }
    Err(ApiError::Unavailable(
        "could not find a free booking reference; retry".into(),
    ))
}
