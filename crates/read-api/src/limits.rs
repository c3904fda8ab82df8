//! Query limits with error codes.
//!
//! - **Depth**: at most [`MAX_DEPTH`] nested fields, not counting
//!   introspection (`__schema`, `__type`): GraphiQL's own introspection
//!   query is deeper than any real read, and must still work. The schema's
//!   built-in `limit_depth` stays on, higher, as a backstop for
//!   introspection. Too deep: `QUERY_TOO_DEEP`.
//! - **Complexity**: every field costs 1, a connection costs its page size
//!   times its node, a seat map 50 ([`crate::cursor::page_cost`]); over
//!   [`MAX_COMPLEXITY`]: `QUERY_TOO_COMPLEX`.
//!
//! - **Width**: at most [`MAX_ROOT_FIELDS`] root fields per operation,
//!   aliases and fragments included: a hundred aliases of a cheap search
//!   each cost a query, which complexity alone does not see. Too wide:
//!   `QUERY_TOO_WIDE`.
//!
//! Other validation failures keep async-graphql's message and get the code
//! `GRAPHQL_VALIDATION_FAILED`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, ServerError, ServerResult, ValidationResult, Variables};

use crate::error::Code;

pub const MAX_DEPTH: usize = 10;
pub const MAX_ROOT_FIELDS: usize = 10;
pub const MAX_COMPLEXITY: usize = 5_000;
/// The built-in limit, which counts introspection too.
pub const MAX_DEPTH_WITH_INTROSPECTION: usize = 20;

pub struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Limits)
    }
}

fn coded(message: impl Into<String>, code: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

#[async_trait::async_trait]
impl Extension for Limits {
    /// Every error carries a code: the ones async-graphql makes itself
    /// while running a query (an argument out of its type's range, a
    /// variable of the wrong shape) are the client's, `BAD_REQUEST`; the
    /// server's own failures are `INTERNAL` where they happen.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        let mut response = next.run(ctx, operation_name).await;
        for e in &mut response.errors {
            let coded = e
                .extensions
                .as_ref()
                .is_some_and(|x| x.get("code").is_some());
            if !coded {
                e.extensions
                    .get_or_insert_with(Default::default)
                    .set("code", Code::BadRequest.as_str());
            }
        }
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let depth = document
            .operations
            .iter()
            .map(|(_, op)| depth(&op.node.selection_set.node, &document.fragments, 0))
            .max()
            .unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(coded(
                format!("the query is nested {depth} deep; at most {MAX_DEPTH} is allowed"),
                Code::QueryTooDeep.as_str(),
            ));
        }
        let width = document
            .operations
            .iter()
            .map(|(_, op)| width(&op.node.selection_set.node, &document.fragments, 0))
            .max()
            .unwrap_or(0);
        if width > MAX_ROOT_FIELDS {
            return Err(coded(
                format!("the operation asks for {width} root fields; at most {MAX_ROOT_FIELDS} are allowed"),
                Code::QueryTooWide.as_str(),
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|mut e| {
                    let code = if e.message.contains("too complex") {
                        Code::QueryTooComplex.as_str()
                    } else if e.message.contains("too deep") {
                        Code::QueryTooDeep.as_str()
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    };
                    e.extensions
                        .get_or_insert_with(Default::default)
                        .set("code", code);
                    e
                })
                .collect()
        })
    }
}

/// Depth of a selection set, fragments inlined, introspection fields not
/// counted. `hops` guards against fragment cycles (refused later by
/// validation, but this runs first).
fn depth(
    set: &SelectionSet,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
    hops: usize,
) -> usize {
    if hops > 64 {
        return usize::MAX / 2;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) if f.node.name.node.starts_with("__") => 0,
            Selection::Field(f) => 1 + depth(&f.node.selection_set.node, fragments, hops + 1),
            Selection::InlineFragment(f) => depth(&f.node.selection_set.node, fragments, hops + 1),
            Selection::FragmentSpread(s) => {
                fragments.get(&s.node.fragment_name.node).map_or(0, |f| {
                    depth(&f.node.selection_set.node, fragments, hops + 1)
                })
            }
        })
        .max()
        .unwrap_or(0)
}

/// Fields of a selection set, fragments inlined (`__typename` and
/// introspection not counted). `hops` guards against fragment cycles.
fn width(
    set: &SelectionSet,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
    hops: usize,
) -> usize {
    if hops > 64 {
        return usize::MAX / 2;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) if f.node.name.node.starts_with("__") => 0,
            Selection::Field(_) => 1,
            Selection::InlineFragment(f) => width(&f.node.selection_set.node, fragments, hops + 1),
            Selection::FragmentSpread(s) => {
                fragments.get(&s.node.fragment_name.node).map_or(0, |f| {
                    width(&f.node.selection_set.node, fragments, hops + 1)
                })
            }
        })
        .fold(0usize, usize::saturating_add)
}
