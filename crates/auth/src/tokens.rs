//! Access tokens: HS256 JWTs carrying the user id, role and session,
//! short-lived. Only HS256 is accepted, so `alg: none` and
//! algorithm-confusion tokens are refused by construction; a token of a
//! session that ended is refused at once ([`crate::sessions`]).

use std::time::Duration;

use chrono::Utc;
use domain::values::Role;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sessions::Revocations;
use crate::{Caller, Error};

const ISSUER: &str = "booking-engine";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: String,
    /// The session (refresh token family) the token belongs to.
    #[serde(default)]
    sid: Option<Uuid>,
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
    /// Sessions that ended: their tokens are refused.
    pub revocations: Revocations,
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
            revocations: Revocations::default(),
        }
    }

    /// A token for `user_id` in `role`, in `session`.
    pub fn issue(&self, user_id: Uuid, role: Role, session: Uuid) -> Result<String, Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role: role.as_str().to_string(),
            sid: Some(session),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: ISSUER.into(),
            jti: Uuid::now_v7(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("cannot sign an access token: {e}")))
    }

    /// The caller of a valid token of a live session.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        let caller = self.verify_even_if_ended(token)?;
        if self.revocations.has_ended(caller.session) {
            return Err(Error::Unauthorized(
                "the session has ended; log in again".into(),
            ));
        }
        Ok(caller)
    }

    /// The caller of a valid token, whether or not its session has ended:
    /// only for ending a session again (logging out twice is no error).
    pub fn verify_even_if_ended(&self, token: &str) -> Result<Caller, Error> {
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
        let session = data
            .claims
            .sid
            .ok_or_else(|| Error::Unauthorized("the access token names no session".into()))?;
        Ok(Caller {
            user_id: data.claims.sub,
            role,
            session,
        })
    }
}
