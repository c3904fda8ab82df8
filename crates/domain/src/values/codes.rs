use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("currency must be 3 upper-case letters, got {0:?}")]
    Currency(String),
    #[error("airport code must be 3 letters, got {0:?}")]
    Airport(String),
    #[error("flight number must be a 2-character airline code and 1 to 4 digits, got {0:?}")]
    FlightNumber(String),
}

/// ISO 4217-style currency code: exactly 3 upper-case ASCII letters.
///
/// Amounts in every currency are kept to 2 decimal places; the engine does
/// not sell in zero- or three-decimal currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const GBP: Currency = Currency(*b"GBP");

    /// Strict: lower case is refused, since a currency code is an identifier
    /// and clients must send it exactly.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        match s.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => {
                Ok(Currency([*a, *b, *c]))
            }
            _ => Err(CodeError::Currency(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only upper-case ASCII is ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.as_str().to_owned()
    }
}

/// IATA airport code, e.g. `LHR`. Parsing upper-cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AirportCode([u8; 3]);

impl AirportCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        match s.trim().as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_alphabetic()) => Ok(AirportCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(CodeError::Airport(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for AirportCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AirportCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AirportCode {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AirportCode> for String {
    fn from(c: AirportCode) -> Self {
        c.as_str().to_owned()
    }
}

/// Marketing flight number: a 2-character airline designator (letters or
/// digits, at least one letter, as IATA assigns them) and 1 to 4 digits,
/// e.g. `BA117`, `U21234`. Parsing upper-cases and drops inner spaces
/// (`"ba 117"` is `BA117`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FlightNumber(String);

impl FlightNumber {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let cleaned: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bad = || CodeError::FlightNumber(s.to_owned());
        if !cleaned.is_ascii() || cleaned.len() < 3 || cleaned.len() > 6 {
            return Err(bad());
        }
        let (designator, number) = cleaned.split_at(2);
        let designator_ok = designator.chars().all(|c| c.is_ascii_alphanumeric())
            && designator.chars().any(|c| c.is_ascii_alphabetic());
        if !designator_ok || !number.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(FlightNumber(cleaned))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 2-character airline designator, e.g. `BA`.
    pub fn airline_designator(&self) -> &str {
        &self.0[..2]
    }
}

impl fmt::Display for FlightNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for FlightNumber {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for FlightNumber {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<FlightNumber> for String {
    fn from(n: FlightNumber) -> Self {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_accept_iata_flight_numbers() {
        assert_eq!(FlightNumber::parse("BA117").unwrap().as_str(), "BA117");
        assert_eq!(FlightNumber::parse("u2 1234").unwrap().as_str(), "U21234");
        assert_eq!(
            FlightNumber::parse("BA117").unwrap().airline_designator(),
            "BA"
        );
        for bad in ["", "BA", "BA12345", "12345", "B-117", "BAX17", "ÄB12"] {
            assert!(FlightNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn it_should_upper_case_airports_but_not_currencies() {
        assert_eq!(AirportCode::parse("lhr").unwrap().as_str(), "LHR");
        assert!(AirportCode::parse("LH").is_err());
        assert!(AirportCode::parse("L1R").is_err());
        assert_eq!(Currency::parse("USD").unwrap(), Currency::USD);
        assert!(Currency::parse("usd").is_err());
        assert!(serde_json::from_str::<Currency>("\"US\"").is_err());
    }
}
