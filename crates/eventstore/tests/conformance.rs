//! The conformance suite, once per backend: in memory, and PostgreSQL (each
//! test on its own fresh database).

use std::sync::Arc;

use eventstore::{conformance, MemoryEventStore, PgEventStore};
use sqlx::PgPool;

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    eventstore::conformance::run(stringify!($case), std::sync::Arc::new(eventstore::MemoryEventStore::new())).await;
                }
            )*
        }
        mod postgres {
            $(
                #[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
                async fn $case(pool: sqlx::PgPool) {
                    eventstore::conformance::run(stringify!($case), std::sync::Arc::new(eventstore::PgEventStore::new(pool))).await;
                }
            )*
        }
        #[test]
        fn every_case_runs_on_every_backend() {
            assert_eq!(conformance::CASES, &[$(stringify!($case)),*]);
        }
    };
}

suite!(
    appends_and_reads_a_stream,
    refuses_a_wrong_expected_version,
    appends_to_several_streams_atomically,
    an_empty_append_guards_a_stream,
    records_a_command_once,
    pages_through_the_global_log_in_order,
    pages_through_some_categories,
    subscribes_from_the_start_then_live,
    verifies_an_untouched_log,
    lets_one_of_many_concurrent_writers_win_each_version,
    refuses_malformed_requests,
    isolates_each_of_many_concurrent_appends,
);

// Keep the imports used when the macro's modules reference full paths.
#[allow(dead_code)]
fn _types(_: Arc<MemoryEventStore>, _: Option<PgEventStore>, _: Option<PgPool>) {}
