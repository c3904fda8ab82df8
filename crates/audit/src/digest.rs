//! Signed digests of the whole log.
//!
//! A digest folds the stored hash of every event, in global order, into
//! one chain: `chain_0 = 32 zero bytes`, `chain_n = SHA-256(chain_{n-1} ||
//! hash_n)`. Each event's own hash already covers its content and its
//! stream's previous event, so the chain covers everything the log says
//! and the order it says it in. The digest keeps the chain's value every
//! [`CHECKPOINT_EVERY`] events, so a later check can say where the log
//! first differs, and it is signed with the engine's Ed25519 audit key.
//!
//! Checking a saved digest against today's log recomputes the chain up to
//! the digest's position (anything removed, inserted, reordered or
//! re-hashed before it shows as a different chain from the first checkpoint
//! past the change), and checks every event's content against its hash (an
//! edit that left the stored hash alone is named exactly). A log that has
//! grown since still verifies: the old digest covers its prefix.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use eventstore::{BadEvent, EventStore, Position, VerifyReport};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{Audit, AuditResult};

/// The digest format this engine writes and reads.
pub const FORMAT: &str = "booking-log-digest/1";

/// The fewest events between two checkpoints of a digest; on a longer log
/// the interval doubles until there are at most [`MAX_CHECKPOINTS`], so a
/// digest stays a few tens of kilobytes however long the log.
pub const CHECKPOINT_EVERY: u64 = 4096;
pub const MAX_CHECKPOINTS: u64 = 256;

/// The checkpoint interval for a log of `events` events.
fn interval_for(events: u64) -> u64 {
    let mut every = CHECKPOINT_EVERY;
    while events / every > MAX_CHECKPOINTS {
        every *= 2;
    }
    every
}

/// The chain's value after the first `events` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub events: u64,
    /// The position of the `events`-th event.
    pub position: String,
    pub chain: String,
}

/// What a digest says of the log; the part that is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub format: String,
    /// The last event covered (`null` for an empty log).
    pub position: Option<String>,
    /// How many events it covers.
    pub events: u64,
    /// The chain over all of them, hex.
    pub chain: String,
    /// Events between two checkpoints.
    pub checkpoint_every: u64,
    pub checkpoints: Vec<Checkpoint>,
    pub taken_at: DateTime<Utc>,
}

/// A digest with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDigest {
    #[serde(flatten)]
    pub digest: Digest,
    /// The Ed25519 public key that signed it, hex.
    pub public_key: String,
    /// Ed25519 over the digest's JSON (its fields in the order above), hex.
    pub signature: String,
}

/// Where today's log first differs from a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The difference lies among events `from_event..=to_event` of the
    /// global order (1-based), as the digest counted them.
    pub from_event: u64,
    pub to_event: u64,
    /// The last position the log and the digest agree on, if any.
    pub agreed_up_to: Option<String>,
    pub reason: String,
    /// The event itself, when it could be named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<BadEvent>,
}

/// The answer to "does today's log still contain what this digest covered?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestCheck {
    pub ok: bool,
    /// The signature verifies with the key the digest names.
    pub signature_valid: bool,
    /// That key is this engine's audit key.
    pub signed_by_this_engine: bool,
    pub events_covered: u64,
    /// Events in the log now, up to and past the digest's position.
    pub events_now: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<Difference>,
}

/// The chain folded over the log, with checkpoints.
struct Fold {
    every: u64,
    events: u64,
    chain: [u8; 32],
    last: Option<Position>,
    checkpoints: Vec<Checkpoint>,
}

impl Fold {
    fn new(every: u64) -> Self {
        Self {
            every: every.max(1),
            events: 0,
            chain: [0; 32],
            last: None,
            checkpoints: Vec::new(),
        }
    }

    fn push(&mut self, position: Position, hash: &[u8]) {
        let mut h = Sha256::new();
        h.update(self.chain);
        h.update(hash);
        self.chain = h.finalize().into();
        self.events += 1;
        self.last = Some(position);
        if self.events % self.every == 0 {
            self.checkpoints.push(Checkpoint {
                events: self.events,
                position: position.to_string(),
                chain: hex::encode(self.chain),
            });
        }
    }
}

fn signed_bytes(d: &Digest) -> Vec<u8> {
    serde_json::to_vec(d).unwrap_or_default()
}

impl Audit {
    /// Folds the stored hashes of the events up to `up_to` (the visible
    /// head when `None`), in global order, streaming.
    async fn chain_up_to(&self, up_to: Option<Position>, every: Option<u64>) -> AuditResult<Fold> {
        let up_to = match up_to {
            Some(p) => p,
            None => match self.store.head().await? {
                Some(p) => p,
                None => return Ok(Fold::new(CHECKPOINT_EVERY)),
            },
        };
        let every = match every {
            Some(every) => every,
            None => interval_for(self.count_up_to(up_to).await?),
        };
        let mut fold = Fold::new(every);
        let mut rows = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(
            "SELECT tx::text::bigint, position, hash FROM es_events \
             WHERE (tx, position) <= ($1::text::xid8, $2) ORDER BY tx, position",
        )
        .bind(up_to.tx as i64)
        .bind(up_to.seq as i64)
        .fetch(&self.pool);
        while let Some((tx, seq, hash)) = rows.try_next().await? {
            fold.push(Position::new(tx as u64, seq as u64), &hash);
        }
        Ok(fold)
    }

    /// A signed digest of the log up to its visible head.
    pub async fn digest(&self) -> AuditResult<SignedDigest> {
        let fold = self.chain_up_to(None, None).await?;
        let digest = Digest {
            format: FORMAT.into(),
            position: fold.last.map(|p| p.to_string()),
            events: fold.events,
            chain: hex::encode(fold.chain),
            checkpoint_every: fold.every,
            checkpoints: fold.checkpoints,
            taken_at: Utc::now(),
        };
        let signature = self.key.sign(&signed_bytes(&digest));
        Ok(SignedDigest {
            digest,
            public_key: self.public_key_hex(),
            signature: hex::encode(signature.to_bytes()),
        })
    }

    /// Checks a saved digest against today's log.
    pub async fn verify_digest(&self, saved: &SignedDigest) -> AuditResult<DigestCheck> {
        let d = &saved.digest;
        let signature_valid = signature_valid(saved);
        let signed_by_this_engine = saved
            .public_key
            .eq_ignore_ascii_case(&self.public_key_hex());
        // A digest this engine could not have written proves nothing: it
        // is answered as not verified, saying why.
        let position = d
            .position
            .as_deref()
            .map(str::parse::<Position>)
            .transpose();
        let unreadable = if d.format != FORMAT {
            Some(format!(
                "unknown digest format {:?}: this engine reads {FORMAT}",
                d.format
            ))
        } else if d.checkpoint_every == 0 {
            Some("checkpoint_every must be positive".to_string())
        } else {
            position.as_ref().err().map(|e| e.to_string())
        };
        if let Some(reason) = unreadable {
            return Ok(DigestCheck {
                ok: false,
                signature_valid,
                signed_by_this_engine,
                events_covered: d.events,
                events_now: self.count().await?,
                first_difference: Some(Difference {
                    from_event: 1,
                    to_event: d.events,
                    agreed_up_to: None,
                    reason,
                    event: None,
                }),
            });
        }
        let position = position.unwrap_or(None);
        let now = match position {
            Some(p) => self.chain_up_to(Some(p), Some(d.checkpoint_every)).await?,
            None => Fold::new(d.checkpoint_every),
        };
        let events_now = match self.store.head().await? {
            Some(_) => self.count().await?,
            None => 0,
        };
        let mut first_difference = compare(d, &now);
        // An edit that kept the stored hash changes no chain: the content
        // check names it, if it lies within what the digest covers.
        let chains = self.store.verify(None).await?;
        if let Some(bad) = self.covered_bad_event(&chains, position).await? {
            let difference = Difference {
                from_event: 1,
                to_event: d.events,
                agreed_up_to: None,
                reason: bad.reason.clone(),
                event: Some(bad),
            };
            first_difference = Some(match first_difference {
                Some(mut found) => {
                    found.event = difference.event;
                    found.reason = format!("{}; {}", found.reason, difference.reason);
                    found
                }
                None => difference,
            });
        }
        Ok(DigestCheck {
            ok: signature_valid && signed_by_this_engine && first_difference.is_none(),
            signature_valid,
            signed_by_this_engine,
            events_covered: d.events,
            events_now,
            first_difference,
        })
    }

    async fn count_up_to(&self, up_to: Position) -> AuditResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM es_events WHERE (tx, position) <= ($1::text::xid8, $2)",
        )
        .bind(up_to.tx as i64)
        .bind(up_to.seq as i64)
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    async fn count(&self) -> AuditResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM es_events WHERE tx < pg_snapshot_xmin(pg_current_snapshot())",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    /// The chain check's first bad event, if it lies at or before `up_to`
    /// (or its position cannot be found: it is reported then too).
    async fn covered_bad_event(
        &self,
        chains: &VerifyReport,
        up_to: Option<Position>,
    ) -> AuditResult<Option<BadEvent>> {
        let Some(bad) = &chains.first_bad else {
            return Ok(None);
        };
        let Some(up_to) = up_to else {
            return Ok(None);
        };
        let at: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx::text::bigint, position FROM es_events WHERE stream_id = $1 AND version = $2",
        )
        .bind(&bad.stream_id)
        .bind(bad.version as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match at {
            Some((tx, seq)) if Position::new(tx as u64, seq as u64) > up_to => None,
            _ => Some(bad.clone()),
        })
    }
}

/// Whether the signature verifies with the key the digest names.
fn signature_valid(saved: &SignedDigest) -> bool {
    let key = hex::decode(&saved.public_key)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let signature = hex::decode(&saved.signature)
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .map(|s| Signature::from_bytes(&s));
    match (key, signature) {
        (Some(key), Some(signature)) => {
            key.verify(&signed_bytes(&saved.digest), &signature).is_ok()
        }
        _ => false,
    }
}

/// The first checkpoint (or the end) where `now` differs from `saved`.
fn compare(saved: &Digest, now: &Fold) -> Option<Difference> {
    let mut agreed: Option<&Checkpoint> = None;
    for (i, cp) in saved.checkpoints.iter().enumerate() {
        match now.checkpoints.get(i) {
            Some(c) if c == cp => agreed = Some(cp),
            _ => {
                return Some(Difference {
                    from_event: agreed.map_or(1, |a| a.events + 1),
                    to_event: cp.events,
                    agreed_up_to: agreed.map(|a| a.position.clone()),
                    reason: "the chain differs from the digest's checkpoint: an event there \
                             was altered, removed, inserted or reordered"
                        .into(),
                    event: None,
                });
            }
        }
    }
    let chain = hex::encode(now.chain);
    if now.events != saved.events || chain != saved.chain {
        let reason = if now.events < saved.events {
            format!(
                "the log holds {} events up to the digest's position, the digest covered {}: events were removed",
                now.events, saved.events
            )
        } else if now.events > saved.events {
            format!(
                "the log holds {} events up to the digest's position, the digest covered {}: events were inserted",
                now.events, saved.events
            )
        } else {
            "the chain differs from the digest's: an event was altered or reordered".into()
        };
        return Some(Difference {
            from_event: agreed.map_or(1, |a| a.events + 1),
            to_event: saved.events.max(now.events),
            agreed_up_to: agreed.map(|a| a.position.clone()),
            reason,
            event: None,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold_of(hashes: &[[u8; 32]]) -> Fold {
        let mut f = Fold::new(CHECKPOINT_EVERY);
        for (i, h) in hashes.iter().enumerate() {
            f.push(Position::new(1, i as u64 + 1), h);
        }
        f
    }

    fn digest_of(f: &Fold) -> Digest {
        Digest {
            format: FORMAT.into(),
            position: f.last.map(|p| p.to_string()),
            events: f.events,
            chain: hex::encode(f.chain),
            checkpoint_every: f.every,
            checkpoints: f.checkpoints.clone(),
            taken_at: Utc::now(),
        }
    }

    #[test]
    fn it_should_agree_with_itself_and_name_the_checkpoint_past_a_change() {
        let n = (CHECKPOINT_EVERY * 3 + 5) as usize;
        let hashes: Vec<[u8; 32]> = (0..n)
            .map(|i| Sha256::digest(i.to_be_bytes()).into())
            .collect();
        let saved = digest_of(&fold_of(&hashes));
        assert_eq!(compare(&saved, &fold_of(&hashes)), None);

        let mut changed = hashes.clone();
        changed[CHECKPOINT_EVERY as usize + 7] = [9; 32];
        let d = compare(&saved, &fold_of(&changed)).expect("a difference");
        assert_eq!(
            (d.from_event, d.to_event),
            (CHECKPOINT_EVERY + 1, CHECKPOINT_EVERY * 2)
        );

        let mut removed = hashes.clone();
        removed.remove(n - 2);
        let d = compare(&saved, &fold_of(&removed)).expect("a difference");
        assert!(d.reason.contains("removed"), "{}", d.reason);
    }

    #[test]
    fn it_should_keep_a_long_log_to_a_few_hundred_checkpoints() {
        assert_eq!(interval_for(1_000), CHECKPOINT_EVERY);
        for n in [1_000_000u64, 10_000_000, 100_000_000] {
            assert!(n / interval_for(n) <= MAX_CHECKPOINTS, "{n}");
        }
    }

    #[test]
    fn it_should_refuse_a_signature_over_other_bytes() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let digest = digest_of(&fold_of(&[[1; 32]]));
        let mut saved = SignedDigest {
            signature: hex::encode(key.sign(&signed_bytes(&digest)).to_bytes()),
            public_key: hex::encode(key.verifying_key().as_bytes()),
            digest,
        };
        assert!(signature_valid(&saved));
        saved.digest.events += 1;
        assert!(!signature_valid(&saved));
    }
}
