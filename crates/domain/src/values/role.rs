use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct RoleError(pub String);

/// What a user may do; the wire names are the contract's (`"customer"`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
    Analyst,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Customer,
        Role::Agent,
        Role::Analyst,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RoleError(s.to_owned()))
    }
}
