use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    #[error("{0:?} is not a seat (row 1-99 and a letter A-K, e.g. 12A)")]
    Invalid(String),
}

/// A seat: row 1..=99 and letter A..=K. Ordered by row, then letter, which
/// is the order cabin requests are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Seat {
    row: u8,
    letter: char,
}

impl Seat {
    pub const MAX_ROW: u8 = 99;
    pub const LETTERS: &'static str = "ABCDEFGHIJK";

    pub fn new(row: u8, letter: char) -> Result<Self, SeatError> {
        let letter = letter.to_ascii_uppercase();
        if (1..=Self::MAX_ROW).contains(&row) && Self::is_letter(letter) {
            Ok(Seat { row, letter })
        } else {
            Err(SeatError::Invalid(format!("{row}{letter}")))
        }
    }

    pub fn is_letter(c: char) -> bool {
        ('A'..='K').contains(&c)
    }

    /// `"12A"`; a lower-case letter is accepted.
    pub fn parse(s: &str) -> Result<Self, SeatError> {
        let bad = || SeatError::Invalid(s.to_owned());
        let s = s.trim();
        let letter = s.chars().last().ok_or_else(bad)?;
        let digits = &s[..s.len() - letter.len_utf8()];
        if digits.is_empty() || digits.len() > 2 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let row: u8 = digits.parse().map_err(|_| bad())?;
        Seat::new(row, letter).map_err(|_| bad())
    }

    pub fn row(&self) -> u8 {
        self.row
    }

    pub fn letter(&self) -> char {
        self.letter
    }
}

impl fmt::Display for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.row, self.letter)
    }
}

impl FromStr for Seat {
    type Err = SeatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Seat {
    type Error = SeatError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Seat> for String {
    fn from(s: Seat) -> Self {
        s.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cabin {0:?}")]
pub struct CabinError(pub String);

/// Cabin class, front of the aircraft first. Wire form is lower snake case
/// (`"premium_economy"`); GraphQL maps it to its own enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cabin {
    First,
    Business,
    PremiumEconomy,
    Economy,
}

impl Cabin {
    pub const ALL: [Cabin; 4] = [
        Cabin::First,
        Cabin::Business,
        Cabin::PremiumEconomy,
        Cabin::Economy,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Cabin::First => "first",
            Cabin::Business => "business",
            Cabin::PremiumEconomy => "premium_economy",
            Cabin::Economy => "economy",
        }
    }
}

impl fmt::Display for Cabin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cabin {
    type Err = CabinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cabin::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| CabinError(s.to_owned()))
    }
}

impl TryFrom<String> for Cabin {
    type Error = CabinError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_parse_and_print_seats() {
        let seat = Seat::parse("12a").unwrap();
        assert_eq!((seat.row(), seat.letter()), (12, 'A'));
        assert_eq!(seat.to_string(), "12A");
        assert_eq!(
            serde_json::to_value(seat).unwrap(),
            serde_json::json!("12A")
        );
        for bad in [
            "", "A", "0A", "100A", "12L", "12", "1 2A", "-1A", "12AB", "é",
        ] {
            assert!(Seat::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn it_should_order_seats_by_row_then_letter() {
        let mut seats: Vec<Seat> = ["10A", "2C", "2A", "9K"]
            .iter()
            .map(|s| Seat::parse(s).unwrap())
            .collect();
        seats.sort();
        let printed: Vec<String> = seats.iter().map(Seat::to_string).collect();
        assert_eq!(printed, ["2A", "2C", "9K", "10A"]);
    }

    #[test]
    fn it_should_use_snake_case_cabin_names() {
        assert_eq!(
            serde_json::to_value(Cabin::PremiumEconomy).unwrap(),
            "premium_economy"
        );
        assert_eq!("economy".parse::<Cabin>().unwrap(), Cabin::Economy);
        assert!(serde_json::from_str::<Cabin>("\"coach\"").is_err());
    }
}
