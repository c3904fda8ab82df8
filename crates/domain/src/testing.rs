//! A given/when/then harness for aggregates, public so that other crates'
//! tests can state domain facts the same way:
//!
//! ```
//! use domain::testing::given;
//! use domain::user::{User, UserCommand, UserError};
//! use chrono::Utc;
//!
//! given::<User>([])
//!     .when(UserCommand::Erase { now: Utc::now() })
//!     .then_err(UserError::NotRegistered);
//! ```

use crate::event::Aggregate;

/// Starts a scenario from the state `events` fold into.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = events.into_iter().collect();
    Given {
        state: A::fold(&history),
    }
}

/// Starts a scenario from an explicit state.
pub fn given_state<A: Aggregate>(state: A) -> Given<A> {
    Given { state }
}

#[derive(Debug)]
pub struct Given<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    pub fn state(&self) -> &A {
        &self.state
    }

    pub fn when(self, command: A::Command) -> When<A> {
        let result = self.state.decide(command);
        When {
            state: self.state,
            result,
        }
    }
}

#[derive(Debug)]
pub struct When<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> When<A> {
    pub fn result(&self) -> &Result<Vec<A::Event>, A::Error> {
        &self.result
    }

    /// Asserts the decision produced exactly `expected`; returns the state
    /// after them, to keep asserting on.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(
                    events, expected,
                    "the decision produced other events than expected"
                );
                events.iter().fold(self.state, |s, e| s.evolve(e))
            }
            Err(e) => panic!("expected events {expected:?}, the decision was refused: {e} ({e:?})"),
        }
    }

    /// Asserts the decision was accepted, whatever it produced; returns the
    /// events and the state after them.
    #[track_caller]
    pub fn then_ok(self) -> (Vec<A::Event>, A) {
        match self.result {
            Ok(events) => {
                let state = events.iter().fold(self.state, |s, e| s.evolve(e));
                (events, state)
            }
            Err(e) => panic!("expected the decision to be accepted, it was refused: {e} ({e:?})"),
        }
    }

    /// Asserts the decision was accepted and produced events satisfying
    /// `check`.
    #[track_caller]
    pub fn then_events(self, check: impl FnOnce(&[A::Event]) -> bool) -> A {
        let (events, state) = self.then_ok();
        assert!(
            check(&events),
            "the events did not satisfy the check: {events:?}"
        );
        state
    }

    /// Asserts the decision was refused with exactly `expected`.
    #[track_caller]
    pub fn then_err(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        match self.result {
            Err(e) => assert_eq!(e, expected, "the decision was refused for another reason"),
            Ok(events) => {
                panic!("expected the refusal {expected:?}, the decision produced {events:?}")
            }
        }
    }

    /// Asserts the decision was refused with an error satisfying `check`
    /// (typically `|e| matches!(e, SeatError::SeatUnavailable(_))`).
    #[track_caller]
    pub fn then_err_matching(self, check: impl FnOnce(&A::Error) -> bool) {
        match self.result {
            Err(e) => assert!(
                check(&e),
                "the decision was refused for another reason: {e} ({e:?})"
            ),
            Ok(events) => panic!("expected a refusal, the decision produced {events:?}"),
        }
    }
}
