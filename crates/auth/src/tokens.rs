//! Access tokens: HS256 JWTs carrying the user id and role, short-lived.
//! Only HS256 is accepted, so `alg: none` and algorithm-confusion tokens are
//! refused by construction.

use std::time::Duration;

use chrono::Utc;
use domain::values::Role;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Caller, Error};

const ISSUER: &str = "booking-engine";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: String,
    iat: i64,
    exp: i64,
    iss: String,
    jti: Uuid,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(<secret>)")
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    pub fn issue(&self, user_id: Uuid, role: Role) -> Result<String, Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role: role.as_str().to_string(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: ISSUER.into(),
            jti: Uuid::now_v7(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("cannot sign an access token: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            Error::Unauthorized(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired",
                    ErrorKind::InvalidSignature => "the access token's signature is invalid",
                    ErrorKind::InvalidAlgorithm => "the access token's algorithm is not accepted",
                    _ => "the access token is invalid",
                }
                .into(),
            )
        })?;
        let role = data
            .claims
            .role
            .parse::<Role>()
            .map_err(|_| Error::Unauthorized("the access token's role is unknown".into()))?;
        Ok(Caller {
            user_id: data.claims.sub,
            role,
        })
    }

    /// The user id in a token whose signature is valid, expired or not:
    /// scopes idempotency keys per caller.
    pub fn subject_of(&self, token: &str) -> Option<Uuid> {
        let mut lax = self.validation.clone();
        lax.validate_exp = false;
        decode::<Claims>(token, &self.decoding, &lax)
            .ok()
            .map(|d| d.claims.sub)
    }
}
