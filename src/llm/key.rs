//! Where the model key comes from. Like the MCP client's `TokenSource`, the chat client does not know how
//! a key is made: it asks a [`KeySource`] for one and tells it when DashScope answered 401, so a vault-held
//! key can be fetched again without `llm` calling back up into `identity`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::secret::Secret;

/// A key source could not give a key. The source's own error is kept whole (shared, so [`super::LlmError`]
/// stays `Clone`), so the failure table can classify it by its real type (`identity::IdentityError` →
/// `identity_error`, …).
#[derive(Clone)]
pub struct KeyError(Arc<dyn StdError + Send + Sync>);

impl KeyError {
    pub fn new(error: impl StdError + Send + Sync + 'static) -> Self {
        KeyError(Arc::new(error))
    }

    /// The source's error as its own type, when it is one.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl fmt::Debug for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Two key errors are equal only when they are the same error (it is not comparable by value).
impl PartialEq for KeyError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for KeyError {}

/// The DashScope API key for the model calls of one turn.
pub(crate) trait KeySource: Send + Sync {
    /// The key to send now (a cached one when the source has it).
    fn key(&self) -> BoxFuture<'_, Result<Secret, KeyError>>;

    /// DashScope answered 401 to `key`: forget it. Returns whether asking [`KeySource::key`] again may give
    /// a different key (a fixed key cannot, so the client does not retry with the same one).
    fn refused(&self, key: &Secret) -> bool;
}

/// `DASHSCOPE_API_KEY`: the same key for every call; a 401 cannot be cured by asking again.
pub(crate) struct FixedKey(pub(crate) Secret);

/// The configuration holds no key of its own (it comes from the vault) and no source was given.
#[derive(Debug, thiserror::Error)]
#[error("no DashScope API key: neither DASHSCOPE_API_KEY nor a key source for this turn")]
struct NoKey;

impl KeySource for FixedKey {
    fn key(&self) -> BoxFuture<'_, Result<Secret, KeyError>> {
        // An empty key would go out as `Bearer ` and come back as a confusing 401.
        let key = if self.0.is_empty() { Err(KeyError::new(NoKey)) } else { Ok(self.0.clone()) };
        Box::pin(std::future::ready(key))
    }

    fn refused(&self, _key: &Secret) -> bool {
        false
    }
}
