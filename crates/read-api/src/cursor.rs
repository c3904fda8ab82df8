//! Opaque Relay cursors: URL-safe base64 of the JSON of a sort key, tagged
//! with the list it belongs to so a cursor of one list is refused by
//! another. Pages are found by keyset (`(key) > (cursor)`), never OFFSET.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::bad_request;

/// Page size when `first` is not given.
pub const DEFAULT_PAGE: i32 = 20;
/// The most `first` may ask for.
pub const MAX_PAGE: i32 = 100;

pub fn encode<K: Serialize>(tag: &str, key: &K) -> String {
    let json = serde_json::to_vec(&(tag, key)).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub fn decode<K: DeserializeOwned>(tag: &str, cursor: &str) -> async_graphql::Result<K> {
    let invalid = || bad_request("invalid cursor");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let (found, key): (String, K) = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if found != tag {
        return Err(invalid());
    }
    Ok(key)
}

/// `first` checked and capped: 1..=MAX_PAGE, DEFAULT_PAGE when absent.
pub fn page_size(first: Option<i32>) -> async_graphql::Result<i64> {
    match first {
        None => Ok(DEFAULT_PAGE as i64),
        Some(n) if n < 0 => Err(bad_request("`first` must not be negative")),
        Some(n) => Ok(n.min(MAX_PAGE) as i64),
    }
}

/// What a connection field costs for the complexity limit: its page size
/// times the cost of one node.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let n = first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    n.saturating_mul(child_complexity.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_tied_to_its_list() {
        let c = encode("f", &("420.00", 7));
        assert_eq!(
            decode::<(String, i32)>("f", &c).unwrap(),
            ("420.00".into(), 7)
        );
        assert!(decode::<(String, i32)>("b", &c).is_err());
        assert!(decode::<(String, i32)>("f", "not base64!").is_err());
    }

    #[test]
    fn first_is_capped() {
        assert_eq!(page_size(None).unwrap(), 20);
        assert_eq!(page_size(Some(1000)).unwrap(), 100);
        assert!(page_size(Some(-1)).is_err());
    }
}
