use serde::{Deserialize, Serialize};

/// Personal data inside an event: `{"known": …}` while the subject's key
/// exists, `"erased"` once it has been shredded.
///
/// Infrastructure encrypts the whole `personal` field of an event and, when
/// the key is gone, decodes it as [`Personal::Erased`]; the domain therefore
/// never assumes personal data is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Personal<T> {
    Known(T),
    Erased,
}

impl<T> Personal<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Personal::Known(value) => Some(value),
            Personal::Erased => None,
        }
    }

    pub fn into_known(self) -> Option<T> {
        match self {
            Personal::Known(value) => Some(value),
            Personal::Erased => None,
        }
    }

    pub fn is_erased(&self) -> bool {
        matches!(self, Personal::Erased)
    }

    pub fn as_ref(&self) -> Personal<&T> {
        match self {
            Personal::Known(value) => Personal::Known(value),
            Personal::Erased => Personal::Erased,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Personal<U> {
        match self {
            Personal::Known(value) => Personal::Known(f(value)),
            Personal::Erased => Personal::Erased,
        }
    }
}

impl<T> Default for Personal<T> {
    /// Absent personal data reads as erased: the safe assumption.
    fn default() -> Self {
        Personal::Erased
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Personal::Known(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_use_the_lower_case_externally_tagged_wire_form() {
        let known = Personal::Known("ada".to_owned());
        assert_eq!(
            serde_json::to_value(&known).unwrap(),
            serde_json::json!({"known": "ada"})
        );
        let erased: Personal<String> = serde_json::from_value(serde_json::json!("erased")).unwrap();
        assert!(erased.is_erased());
    }
}
