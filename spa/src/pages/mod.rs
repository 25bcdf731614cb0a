//! One component per route (see `app::Route`).

pub mod admin;
pub mod admin_queue;
pub mod label;
pub mod new_queue;
pub mod not_found;
pub mod quality;
pub mod queues;
pub mod review;
pub mod sign_in;
