//! anvil-core: Anvil's domain and rules, independent of HTTP.
//!
//! - [`schema`]: label schemas, their checks and label validation with JSON pointers.
//! - [`domain`]: validated newtypes and request checks.
//! - [`auth`]: JWT and personal-access-token verification, principals and roles.
//! - [`store`]: the persistence port and its adapters (Postgres; SQLite for the embedded default).
//! - [`quality`]: agreement measures, Dawid–Skene and the quality report (pure; both stores feed it).
//! - [`service`]: the use cases, called by the HTTP handlers.
//! - [`config`]: the one configuration struct, parsed from the environment.
//! - [`compose`]: the composition root: `Config` -> store, blob store, job dispatcher, job runner, services
//!   (present with the `postgres` or `sqlite` feature).

pub mod auth;
pub mod blob;
#[cfg(feature = "aws")]
pub mod blob_s3;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub mod compose;
pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod health;
pub mod jobs;
pub mod quality;
pub mod schema;
pub mod service;
#[cfg(feature = "aws")]
pub mod sqs;
pub mod store;
pub mod telemetry;

pub use error::{Error, Result};
