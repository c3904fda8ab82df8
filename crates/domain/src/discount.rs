//! Discount codes (`discount-…`): created by admins, redeemed inside the
//! booking decision.
//!
//! A code's stream counts its uses. A redemption is appended in the same
//! transaction as the booking it discounts, expecting the version the
//! decision read, so two bookings can never both take the last use: the
//! second one's append conflicts and is decided again on the new count.
//! A use is counted when the booking is created and stays counted whatever
//! becomes of the booking (a hold left to lapse does not give it back), so a
//! code's cap bounds what it can ever take off, and a refund gives back the
//! discounted price, never the discount.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Aggregate, DomainEvent};
use crate::values::{AirportCode, Cabin, Currency, Money, MoneyError};

/// The longest code, in characters.
pub const MAX_CODE_LEN: usize = 32;

/// A code as customers type it: 3 to 32 letters, digits, `-` or `_`, kept
/// upper case (codes are matched without regard to case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Code(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a discount code is 3 to {MAX_CODE_LEN} letters, digits, '-' or '_'")]
pub struct InvalidCode;

impl Code {
    pub fn parse(s: &str) -> Result<Self, InvalidCode> {
        let s = s.trim();
        if (3..=MAX_CODE_LEN).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            Ok(Code(s.to_ascii_uppercase()))
        } else {
            Err(InvalidCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the code's stream: the same code always names the same
    /// stream, so creating it twice is a conflict on that stream.
    pub fn stream_uuid(&self) -> Uuid {
        Uuid::new_v5(&CODE_NAMESPACE, self.0.as_bytes())
    }
}

/// Namespace of the name-based ids of discount code streams.
const CODE_NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_2f0e_8a4b_4e53_9b7a_d15c_0c0d_e500);

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Code {
    type Error = InvalidCode;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Code::parse(&s)
    }
}

impl From<Code> for String {
    fn from(c: Code) -> Self {
        c.0
    }
}

/// What a code takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// A share of the fares, 1 to 100 percent.
    PercentOff(u8),
    /// A fixed amount (never more than the fares), in that currency only.
    AmountOff(Money),
}

/// A route a code is limited to, e.g. `LHR-JFK` (one direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    pub origin: AirportCode,
    pub destination: AirportCode,
}

impl Route {
    /// `"LHR-JFK"`.
    pub fn parse(s: &str) -> Option<Self> {
        let (o, d) = s.trim().split_once('-')?;
        Some(Route {
            origin: AirportCode::parse(o).ok()?,
            destination: AirportCode::parse(d).ok()?,
        })
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.origin, self.destination)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DiscountCommand {
    Create {
        code: Code,
        reduction: Reduction,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
        max_uses: u32,
        max_uses_per_customer: u32,
        /// Empty: every route.
        routes: Vec<Route>,
        /// Empty: every cabin.
        cabins: Vec<Cabin>,
        created_by: Uuid,
        now: DateTime<Utc>,
    },
    /// Takes the code off a booking's fares, if it applies.
    Redeem {
        booking_id: Uuid,
        customer_id: Uuid,
        /// Every flight the booking covers.
        routes: Vec<Route>,
        /// The cabin of every passenger.
        cabins: Vec<Cabin>,
        /// What the passengers' fares add up to.
        fares: Money,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountCodeCreated {
    pub code: Code,
    pub reduction: Reduction,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub max_uses: u32,
    pub max_uses_per_customer: u32,
    pub routes: Vec<Route>,
    pub cabins: Vec<Cabin>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountRedeemed {
    pub code: Code,
    pub booking_id: Uuid,
    pub customer_id: Uuid,
    /// What it took off the fares.
    pub amount: Money,
    pub redeemed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum DiscountEvent {
    DiscountCodeCreated(DiscountCodeCreated),
    DiscountRedeemed(DiscountRedeemed),
}

impl DomainEvent for DiscountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            DiscountEvent::DiscountCodeCreated(_) => "DiscountCodeCreated",
            DiscountEvent::DiscountRedeemed(_) => "DiscountRedeemed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscountError {
    #[error("discount code {0} already exists")]
    AlreadyExists(Code),
    #[error("percent_off must be 1 to 100")]
    InvalidPercent,
    #[error("amount_off must be more than zero")]
    InvalidAmount,
    #[error("valid_until must be after valid_from")]
    InvalidWindow,
    #[error("max_uses and max_uses_per_customer must be at least 1")]
    InvalidCaps,
    #[error("no such discount code")]
    Unknown,
    #[error("discount code {code} is valid from {from}")]
    NotYetValid { code: Code, from: DateTime<Utc> },
    #[error("discount code {code} expired at {until}")]
    Expired { code: Code, until: DateTime<Utc> },
    #[error("discount code {0} has been used as many times as it may")]
    Exhausted(Code),
    #[error("discount code {0} has been used as many times as one customer may")]
    CustomerCapReached(Code),
    #[error("discount code {code} does not apply to route {route}")]
    RouteNotEligible { code: Code, route: Route },
    #[error("discount code {code} does not apply to cabin {cabin}")]
    CabinNotEligible { code: Code, cabin: Cabin },
    #[error("discount code {code} takes off {expected}, not {found}")]
    WrongCurrency {
        code: Code,
        expected: Currency,
        found: Currency,
    },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl DiscountError {
    /// The request field a creation error is about; `None` for the reasons
    /// a code cannot be redeemed.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DiscountError::InvalidPercent => Some("percent_off"),
            DiscountError::InvalidAmount => Some("amount_off"),
            DiscountError::InvalidWindow => Some("valid_until"),
            DiscountError::InvalidCaps => Some("max_uses"),
            _ => None,
        }
    }

    /// Whether this is a reason the code does not apply to a booking (the
    /// API's `DISCOUNT_UNAVAILABLE`).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DiscountError::Unknown
                | DiscountError::NotYetValid { .. }
                | DiscountError::Expired { .. }
                | DiscountError::Exhausted(_)
                | DiscountError::CustomerCapReached(_)
                | DiscountError::RouteNotEligible { .. }
                | DiscountError::CabinNotEligible { .. }
                | DiscountError::WrongCurrency { .. }
        )
    }
}

/// A discount code's state: its terms and the uses so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiscountCode {
    pub terms: Option<DiscountCodeCreated>,
    pub uses: u32,
    pub uses_by_customer: BTreeMap<Uuid, u32>,
    pub total_discounted: Option<Money>,
}

impl DiscountCode {
    /// What the code takes off `fares`, rounded half away from zero to the
    /// cent. It always leaves a cent to pay: every booking is paid,
    /// ticketed and invoiced the same way, and a payment of nothing is no
    /// payment.
    pub fn reduction_of(reduction: Reduction, fares: Money) -> Result<Money, MoneyError> {
        let off = match reduction {
            Reduction::PercentOff(p) => fares.percent(Decimal::from(p))?,
            Reduction::AmountOff(amount) => amount,
        };
        let most = fares.saturating_sub(&Money::new(Decimal::new(1, 2), fares.currency())?)?;
        Ok(if off.compare(&most)?.is_gt() {
            most
        } else {
            off
        })
    }
}

impl Aggregate for DiscountCode {
    const CATEGORY: &'static str = "discount";
    type Command = DiscountCommand;
    type Event = DiscountEvent;
    type Error = DiscountError;

    fn decide(&self, command: DiscountCommand) -> Result<Vec<DiscountEvent>, DiscountError> {
        match command {
            DiscountCommand::Create {
                code,
                reduction,
                valid_from,
                valid_until,
                max_uses,
                max_uses_per_customer,
                routes,
                cabins,
                created_by,
                now,
            } => {
                if self.terms.is_some() {
                    return Err(DiscountError::AlreadyExists(code));
                }
                match reduction {
                    Reduction::PercentOff(p) if !(1..=100).contains(&p) => {
                        return Err(DiscountError::InvalidPercent)
                    }
                    Reduction::AmountOff(a) if a.is_zero() => {
                        return Err(DiscountError::InvalidAmount)
                    }
                    _ => {}
                }
                if valid_until <= valid_from {
                    return Err(DiscountError::InvalidWindow);
                }
                if max_uses == 0 || max_uses_per_customer == 0 {
                    return Err(DiscountError::InvalidCaps);
                }
                let mut routes = routes;
                routes.sort();
                routes.dedup();
                let mut cabins = cabins;
                cabins.sort();
                cabins.dedup();
                Ok(vec![DiscountEvent::DiscountCodeCreated(
                    DiscountCodeCreated {
                        code,
                        reduction,
                        valid_from,
                        valid_until,
                        max_uses,
                        max_uses_per_customer,
                        routes,
                        cabins,
                        created_by,
                        created_at: now,
                    },
                )])
            }
            DiscountCommand::Redeem {
                booking_id,
                customer_id,
                routes,
                cabins,
                fares,
                now,
            } => {
                let terms = self.terms.as_ref().ok_or(DiscountError::Unknown)?;
                let code = terms.code.clone();
                if now < terms.valid_from {
                    return Err(DiscountError::NotYetValid {
                        code,
                        from: terms.valid_from,
                    });
                }
                if now >= terms.valid_until {
                    return Err(DiscountError::Expired {
                        code,
                        until: terms.valid_until,
                    });
                }
                if self.uses >= terms.max_uses {
                    return Err(DiscountError::Exhausted(code));
                }
                let used = self
                    .uses_by_customer
                    .get(&customer_id)
                    .copied()
                    .unwrap_or(0);
                if used >= terms.max_uses_per_customer {
                    return Err(DiscountError::CustomerCapReached(code));
                }
                if !terms.routes.is_empty() {
                    if let Some(route) = routes.iter().find(|r| !terms.routes.contains(r)) {
                        return Err(DiscountError::RouteNotEligible {
                            code,
                            route: *route,
                        });
                    }
                }
                if !terms.cabins.is_empty() {
                    if let Some(cabin) = cabins.iter().find(|c| !terms.cabins.contains(c)) {
                        return Err(DiscountError::CabinNotEligible {
                            code,
                            cabin: *cabin,
                        });
                    }
                }
                if let Reduction::AmountOff(a) = terms.reduction {
                    if a.currency() != fares.currency() {
                        return Err(DiscountError::WrongCurrency {
                            code,
                            expected: fares.currency(),
                            found: a.currency(),
                        });
                    }
                }
                let amount = DiscountCode::reduction_of(terms.reduction, fares)?;
                Ok(vec![DiscountEvent::DiscountRedeemed(DiscountRedeemed {
                    code,
                    booking_id,
                    customer_id,
                    amount,
                    redeemed_at: now,
                })])
            }
        }
    }

    fn evolve(mut self, event: &DiscountEvent) -> Self {
        match event {
            DiscountEvent::DiscountCodeCreated(e) => self.terms = Some(e.clone()),
            DiscountEvent::DiscountRedeemed(e) => {
                self.uses += 1;
                *self.uses_by_customer.entry(e.customer_id).or_default() += 1;
                self.total_discounted = Some(match self.total_discounted {
                    Some(t) => t.checked_add(&e.amount).unwrap_or(t),
                    None => e.amount,
                });
            }
        }
        self
    }
}
