//! The OpenAPI document, generated from the handlers' annotations.
