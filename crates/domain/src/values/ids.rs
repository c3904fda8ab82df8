use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// No `I`, `O`, `0` or `1`: a PNR is read out over the phone. Exactly 32
/// symbols, so a random byte maps onto it without bias.
pub const PNR_ALPHABET: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a booking reference (6 characters from {PNR_ALPHABET})")]
pub struct PnrError(pub String);

/// Booking reference (passenger name record locator), e.g. `K7Q2MZ`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pnr(String);

impl Pnr {
    /// The caller supplies the randomness (the domain has no RNG); each byte
    /// picks one symbol. Uniqueness is the caller's job (a unique index).
    pub fn from_random(bytes: [u8; 6]) -> Self {
        let alphabet = PNR_ALPHABET.as_bytes();
        Pnr(bytes
            .iter()
            .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
            .collect())
    }

    /// Trims and upper-cases, so `" k7q2mz"` finds `K7Q2MZ`.
    pub fn parse(s: &str) -> Result<Self, PnrError> {
        let pnr = s.trim().to_ascii_uppercase();
        if pnr.len() == 6 && pnr.chars().all(|c| PNR_ALPHABET.contains(c)) {
            Ok(Pnr(pnr))
        } else {
            Err(PnrError(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pnr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Pnr {
    type Err = PnrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Pnr {
    type Error = PnrError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Pnr> for String {
    fn from(p: Pnr) -> Self {
        p.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketNumberError {
    #[error("airline prefix {0} must have at most 3 digits")]
    Prefix(u16),
    #[error("ticket serial {0} must have at most 10 digits")]
    Serial(u64),
    #[error("{0:?} is not a 13-digit ticket number")]
    Invalid(String),
}

/// Electronic ticket number: 3-digit airline accounting prefix and a
/// 10-digit serial, e.g. `1251234567890`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketNumber(String);

impl TicketNumber {
    const MAX_SERIAL: u64 = 9_999_999_999;

    pub fn new(airline_prefix: u16, serial: u64) -> Result<Self, TicketNumberError> {
        if airline_prefix > 999 {
            return Err(TicketNumberError::Prefix(airline_prefix));
        }
        if serial > Self::MAX_SERIAL {
            return Err(TicketNumberError::Serial(serial));
        }
        Ok(TicketNumber(format!("{airline_prefix:03}{serial:010}")))
    }

    pub fn parse(s: &str) -> Result<Self, TicketNumberError> {
        let s = s.trim();
        if s.len() == 13 && s.chars().all(|c| c.is_ascii_digit()) {
            Ok(TicketNumber(s.to_owned()))
        } else {
            Err(TicketNumberError::Invalid(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn airline_prefix(&self) -> &str {
        &self.0[..3]
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TicketNumber {
    type Err = TicketNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TicketNumber {
    type Error = TicketNumberError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TicketNumber> for String {
    fn from(t: TicketNumber) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_draw_a_pnr_from_the_unambiguous_alphabet() {
        let pnr = Pnr::from_random([0, 31, 32, 255, 8, 100]);
        assert_eq!(pnr.as_str(), "A9A9JE");
        assert_eq!(Pnr::parse(" a9a9je ").unwrap(), pnr);
        for bad in ["A9A9J", "A9A9J61", "A9A9J0", "IOIOIO"] {
            assert!(Pnr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn it_should_build_a_thirteen_digit_ticket_number() {
        let t = TicketNumber::new(125, 42).unwrap();
        assert_eq!(t.as_str(), "1250000000042");
        assert_eq!(t.airline_prefix(), "125");
        assert!(TicketNumber::new(1000, 1).is_err());
        assert!(TicketNumber::new(1, 10_000_000_000).is_err());
        assert!(TicketNumber::parse("12500000000").is_err());
    }
}
