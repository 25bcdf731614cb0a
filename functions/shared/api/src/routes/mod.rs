//! One module per route group; each exposes `routes()` (router + its OpenAPI paths).

pub mod assignments;
pub mod exports;
pub mod health;
pub mod labels;
pub mod queues;
