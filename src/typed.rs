//! Typed sessions: a handler takes its session data as a serde type.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::session::Session;

/// A type kept in the session under one key.
///
/// ```
/// use http_session::SessionData;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Cart {
///     items: Vec<String>,
/// }
///
/// impl SessionData for Cart {
///     const KEY: &'static str = "cart";
/// }
/// ```
pub trait SessionData: Serialize + DeserializeOwned + Default + Send + Sync + 'static {
    /// The session key the value lives under (a JSON value beside the
    /// session's other keys, so aiohttp-session's record format is kept and
    /// a Python service reads it as `session["cart"]`).
    const KEY: &'static str;
}

/// A [`SessionData`] value of the request's session: read once, edited in
/// place through `Deref`/`DerefMut`, and written back when it is dropped,
/// only if it changed. A handler takes it as an argument in axum and
/// actix-web; in warp, [`Typed::load`] it from the filter's
/// [`Session`] (the handler body is the same).
///
/// ```
/// # use http_session::{SessionData, Typed};
/// # #[derive(Default, serde::Serialize, serde::Deserialize)]
/// # struct Cart { items: Vec<String> }
/// # impl SessionData for Cart { const KEY: &'static str = "cart"; }
/// async fn add(mut cart: Typed<Cart>) -> String {
///     cart.items.push("apple".to_owned());
///     format!("{} items", cart.items.len())
/// }
/// ```
///
/// The write goes through [`Session::insert_value`] under
/// [`SessionData::KEY`], so it is saved like any other key: with the
/// merge of concurrent requests on server stores (the key is this
/// request's write; other keys keep what other requests wrote), and in
/// strict mode a conflict when another request changed the key after this
/// one read it. A value that does not deserialize into `T` is an
/// [`ErrorKind::Value`] error (its text never carries the value).
pub struct Typed<T: SessionData> {
    value: T,
    /// What the session held when loaded (`None` when absent).
    loaded: Option<Value>,
    session: Session,
}

impl<T: SessionData> Typed<T> {
    /// Reads `T` from `session` (its default when the key is absent).
    pub fn load(session: &Session) -> Result<Self, Error> {
        let loaded = session.get_value(T::KEY);
        let value = match &loaded {
            Some(raw) => T::deserialize(raw).map_err(|_| {
                Error::new(ErrorKind::Value).detail(format!(
                    "session key {:?} does not hold a {}",
                    T::KEY,
                    std::any::type_name::<T>()
                ))
            })?,
            None => T::default(),
        };
        Ok(Self {
            value,
            loaded,
            session: session.clone(),
        })
    }

    /// The session the value belongs to.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Writes the value back now, if it changed (dropping does the same).
    pub fn save(&mut self) -> Result<(), Error> {
        let now = serde_json::to_value(&self.value).map_err(|_| {
            Error::new(ErrorKind::Value).detail(format!(
                "a {} does not serialize to JSON",
                std::any::type_name::<T>()
            ))
        })?;
        let unchanged = match &self.loaded {
            Some(before) => *before == now,
            // Absent and still the default: nothing to store.
            None => serde_json::to_value(T::default()).is_ok_and(|default| default == now),
        };
        if !unchanged {
            self.session.insert_value(T::KEY, now.clone());
            self.loaded = Some(now);
        }
        Ok(())
    }
}

impl<T: SessionData> Deref for Typed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: SessionData> DerefMut for Typed<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: SessionData> Drop for Typed<T> {
    fn drop(&mut self) {
        if let Err(err) = self.save() {
            tracing::error!(target: "http_session", error = %err, "typed session value not saved");
        }
    }
}

/// Only the key and type: the value is session data.
impl<T: SessionData> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed")
            .field("key", &T::KEY)
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}
