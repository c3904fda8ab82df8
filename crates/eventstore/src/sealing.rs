//! Crypto-shredding of personal data.
//!
//! By convention (see the `domain` crate) an event that carries personal data
//! keeps all of it in one top-level field `personal`, next to a top-level
//! `subject`: the id of the person it belongs to. [`Sealer::seal`] encrypts
//! that field with the subject's own key (AES-256-GCM, the subject id bound
//! as associated data) before the event is stored; [`Sealer::open`] decrypts
//! it on the way out, or returns `"erased"` once the key was shredded. The
//! store never sees plaintext personal data, and erasing a person changes no
//! stored event, so every hash chain still verifies.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::StoreError;

/// The value an erased `personal` field reads as.
pub const ERASED: &str = "erased";

/// Where subjects' keys live.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The subject's key, created on first use; `None` once shredded.
    async fn key_for(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError>;
    /// The subject's key if it exists.
    async fn find(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError>;
    /// Deletes the key for good.
    async fn shred(&self, subject: Uuid) -> Result<(), StoreError>;
}

/// Keys in PostgreSQL (`es_subject_keys`).
pub struct PgKeyStore {
    pool: PgPool,
}

impl PgKeyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn to_key(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::InvalidAppend("a stored subject key is not 32 bytes".into()))
}

#[async_trait]
impl KeyStore for PgKeyStore {
    async fn key_for(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError> {
        let fresh: [u8; 32] = Aes256Gcm::generate_key(OsRng).into();
        // Insert-or-read in one statement; refuses shredded subjects.
        let key: Option<Vec<u8>> = sqlx::query_scalar(
            "WITH ins AS ( \
                INSERT INTO es_subject_keys (subject, key) \
                SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM es_shredded_subjects WHERE subject = $1) \
                ON CONFLICT (subject) DO NOTHING RETURNING key) \
             SELECT key FROM ins UNION ALL SELECT key FROM es_subject_keys WHERE subject = $1 LIMIT 1",
        )
        .bind(subject)
        .bind(fresh.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        key.map(to_key).transpose()
    }

    async fn find(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError> {
        let key: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT key FROM es_subject_keys WHERE subject = $1")
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
        key.map(to_key).transpose()
    }

    async fn shred(&self, subject: Uuid) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM es_subject_keys WHERE subject = $1")
            .bind(subject)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO es_shredded_subjects (subject) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(subject)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Keys in memory, for unit tests.
#[derive(Default)]
pub struct MemoryKeyStore {
    keys: RwLock<HashMap<Uuid, Option<[u8; 32]>>>,
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn key_for(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError> {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        Ok(*keys
            .entry(subject)
            .or_insert_with(|| Some(Aes256Gcm::generate_key(OsRng).into())))
    }
    async fn find(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&subject)
            .copied()
            .flatten())
    }
    async fn shred(&self, subject: Uuid) -> Result<(), StoreError> {
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subject, None);
        Ok(())
    }
}

/// Seals and opens the `personal` field of event data.
#[derive(Clone)]
pub struct Sealer {
    keys: Arc<dyn KeyStore>,
    /// Keys read recently. Bounded by time, not size: a process that did not
    /// shred a key itself stops using it within `CACHE_TTL`.
    cache: Arc<RwLock<HashMap<Uuid, CachedKey>>>,
    /// Keys this process sealed with: sealing needs no query after the
    /// first. A key shredded by another process may seal a little more data,
    /// which is then unreadable like the rest of that subject's.
    sealing: Arc<RwLock<HashMap<Uuid, [u8; 32]>>>,
}

/// A subject's key (`None`: shredded) and when it was read.
type CachedKey = (Option<[u8; 32]>, Instant);

const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_MAX: usize = 100_000;

impl Sealer {
    pub fn new(keys: Arc<dyn KeyStore>) -> Self {
        Self {
            keys,
            cache: Arc::default(),
            sealing: Arc::default(),
        }
    }

    pub fn postgres(pool: PgPool) -> Self {
        Self::new(Arc::new(PgKeyStore::new(pool)))
    }

    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryKeyStore::default()))
    }

    /// Encrypts `data.personal` with the key of `data.subject`, if present.
    /// An already erased `personal` is stored as is.
    pub async fn seal(&self, mut data: Value) -> Result<Value, StoreError> {
        let Some((subject, personal)) = parts(&data) else {
            return Ok(data);
        };
        if personal == &Value::String(ERASED.into()) || personal.get("sealed").is_some() {
            return Ok(data);
        }
        let key = self
            .sealing_key(subject)
            .await?
            .ok_or_else(|| StoreError::InvalidAppend(format!("subject {subject} was erased")))?;
        let plaintext = serde_json::to_vec(personal).map_err(StoreError::backend)?;
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: subject.as_bytes(),
                },
            )
            .map_err(|_| StoreError::InvalidAppend("encryption failed".into()))?;
        data["personal"] = json!({
            "sealed": {
                "alg": "A256GCM",
                "nonce": B64.encode(nonce),
                "ciphertext": B64.encode(ciphertext),
            }
        });
        Ok(data)
    }

    /// Decrypts a sealed `personal` field; `"erased"` when the subject's key
    /// is gone or the ciphertext does not open.
    pub async fn open(&self, mut data: Value) -> Result<Value, StoreError> {
        let Some((subject, personal)) = parts(&data) else {
            return Ok(data);
        };
        let Some(sealed) = personal.get("sealed") else {
            return Ok(data);
        };
        let opened = match self.cached_key(subject).await? {
            Some(key) => decrypt(&key, subject, sealed),
            None => None,
        };
        data["personal"] = opened.unwrap_or_else(|| Value::String(ERASED.into()));
        Ok(data)
    }

    /// Shreds the subject's key: every sealed field of theirs reads as erased.
    pub async fn shred(&self, subject: Uuid) -> Result<(), StoreError> {
        self.keys.shred(subject).await?;
        self.sealing
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&subject);
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subject, (None, Instant::now()));
        Ok(())
    }

    async fn sealing_key(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError> {
        let known = self
            .sealing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&subject)
            .copied();
        if let Some(key) = known {
            return Ok(Some(key));
        }
        let key = self.keys.key_for(subject).await?;
        if let Some(k) = key {
            let mut sealing = self.sealing.write().unwrap_or_else(|p| p.into_inner());
            if sealing.len() >= CACHE_MAX {
                sealing.clear();
            }
            sealing.insert(subject, k);
        }
        Ok(key)
    }

    async fn cached_key(&self, subject: Uuid) -> Result<Option<[u8; 32]>, StoreError> {
        if let Some((key, at)) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&subject)
        {
            if at.elapsed() < CACHE_TTL {
                return Ok(*key);
            }
        }
        let key = self.keys.find(subject).await?;
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(subject, (key, Instant::now()));
        Ok(key)
    }
}

fn parts(data: &Value) -> Option<(Uuid, &Value)> {
    let subject = data.get("subject")?.as_str()?.parse().ok()?;
    Some((subject, data.get("personal")?))
}

fn decrypt(key: &[u8; 32], subject: Uuid, sealed: &Value) -> Option<Value> {
    let nonce = B64.decode(sealed.get("nonce")?.as_str()?).ok()?;
    let ciphertext = B64.decode(sealed.get("ciphertext")?.as_str()?).ok()?;
    if nonce.len() != 12 {
        return None;
    }
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let plaintext = cipher
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: subject.as_bytes(),
            },
        )
        .ok()?;
    serde_json::from_slice(&plaintext).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn personal_data_is_sealed_opened_and_shredded() {
        let sealer = Sealer::in_memory();
        let subject = Uuid::now_v7();
        let data = json!({"subject": subject, "role": "customer",
                          "personal": {"known": {"email": "ada@example.com"}}});
        let sealed = sealer.seal(data.clone()).await.unwrap();
        assert!(!sealed.to_string().contains("ada@example.com"));
        assert_eq!(sealed["role"], "customer");
        assert_eq!(sealer.open(sealed.clone()).await.unwrap(), data);
        sealer.shred(subject).await.unwrap();
        let opened = sealer.open(sealed).await.unwrap();
        assert_eq!(opened["personal"], json!("erased"));
        assert_eq!(opened["role"], "customer");
    }

    #[tokio::test]
    async fn a_ciphertext_moved_to_another_subject_does_not_open() {
        let sealer = Sealer::in_memory();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = sealer
            .seal(json!({"subject": a, "personal": {"known": {"name": "Ada"}}}))
            .await
            .unwrap();
        sealer
            .seal(json!({"subject": b, "personal": "erased"}))
            .await
            .unwrap();
        let mut moved = sealed.clone();
        moved["subject"] = json!(b);
        let _ = sealer.keys.key_for(b).await.unwrap();
        assert_eq!(
            sealer.open(moved).await.unwrap()["personal"],
            json!("erased")
        );
    }

    #[tokio::test]
    async fn events_without_personal_data_pass_through() {
        let sealer = Sealer::in_memory();
        let data = json!({"flight_id": "x", "seats": ["1A"]});
        assert_eq!(sealer.seal(data.clone()).await.unwrap(), data);
        assert_eq!(sealer.open(data.clone()).await.unwrap(), data);
    }
}
