//! The kubetrain REST API: `app(state) -> Router` over a [`Runs`] backend and an
//! [`Authorizer`]. The Kubernetes backend and the local backend live in their own crates and
//! serve these same routes.

pub mod backend;

pub use backend::{
    Access, AuthError, Authorizer, BackendError, Caller, FieldError, ListQuery, RunList, Runs,
};
