//! [`Cause`]: the lower layer's error under a [`super::TransportError`],
//! kept typed.

use std::error::Error;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The error a lower layer reported under a [`super::TransportError`] —
/// the dial's [`std::io::Error`], hyper's error, serde_json's, the SSE
/// parser's — kept as it was, so that [`Error::source`] on the transport
/// error returns it and a caller can downcast it:
///
/// ```
/// use std::error::Error as _;
/// use mcp_session::transport::{Cause, TransportError};
///
/// let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let e = TransportError::Connect {
///     message: format!("127.0.0.1:9: {refused}"),
///     source: Some(Cause::new(refused)),
/// };
/// let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
/// assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionRefused));
/// ```
///
/// Cheap to clone (shared). Two causes are equal when their texts are:
/// errors are compared by what they say, as the rest of a
/// [`super::TransportError`] is.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error` as a cause.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }

    /// The error, as a trait object (to downcast it:
    /// `cause.get_ref().downcast_ref::<std::io::Error>()`).
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// An error already boxed (as `dyn Error + Send + Sync`), kept as it is.
impl From<Box<dyn Error + Send + Sync + 'static>> for Cause {
    fn from(error: Box<dyn Error + Send + Sync + 'static>) -> Self {
        Cause(Arc::from(error))
    }
}

/// A cause is its error: `Deref` is what lets
/// [`Error::source`] of the transport error hand out the error itself (not
/// this wrapper), so that downcasting it works.
impl Deref for Cause {
    type Target = dyn Error + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        self.get_ref()
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}
