//! anvil-core: Anvil's domain and rules, independent of HTTP.
//!
//! - [`schema`]: label schemas, their checks and label validation with JSON pointers.
//! - [`domain`]: validated newtypes and request checks.
//! - [`auth`]: JWT and personal-access-token verification, principals and roles.
//! - [`store`]: the persistence port and its adapters (Postgres; SQLite for the embedded default).
//! - [`service`]: the use cases, called by the HTTP handlers.
//! - [`config`]: the one configuration struct, parsed from the environment.

pub mod auth;
pub mod blob;
pub mod blob_s3;
pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod health;
pub mod jobs;
pub mod schema;
pub mod service;
pub mod sqs;
pub mod store;
pub mod telemetry;

pub use error::{Error, Result};
