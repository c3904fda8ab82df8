//! Where a process instance stands, as its row and the admin's `sagas`
//! query spell it.

/// A stored name that is not one of an enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

/// `as_str`, `FromStr` and `Display` for an enum stored by name.
macro_rules! names {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::fulfilment::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::fulfilment::UnknownName {
                        kind: stringify!($name),
                        name: other.to_owned(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use names;

/// Which process a saga runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaKind {
    /// A booking's payment, confirmation, tickets and invoice.
    Fulfilment,
    /// Cancelling every booking of a cancelled flight.
    FlightCancellation,
}

names!(SagaKind {
    Fulfilment => "fulfilment",
    FlightCancellation => "flight_cancellation",
});

/// Where a saga stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaStatus {
    /// Moving forward (or waiting for a payment or a deadline).
    Running,
    /// Undoing what it did.
    Compensating,
    /// Done: the booking is ticketed, or the flight's bookings cancelled.
    Completed,
    /// Done after undoing what it did.
    Compensated,
    /// Retries ran out; an admin can retry it.
    Parked,
}

names!(SagaStatus {
    Running => "RUNNING",
    Compensating => "COMPENSATING",
    Completed => "COMPLETED",
    Compensated => "COMPENSATED",
    Parked => "PARKED",
});

impl SagaStatus {
    /// Whether the saga still has work to do (or to be retried).
    pub fn is_active(self) -> bool {
        matches!(self, SagaStatus::Running | SagaStatus::Compensating)
    }
}
