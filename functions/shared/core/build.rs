//! `sqlx::migrate!` embeds the migrations at compile time; without this, cargo would not rebuild the crate
//! when a migration is added or edited, and the binaries and tests would keep the old set.
fn main() {
    println!("cargo:rerun-if-changed=../../../migrations");
    println!("cargo:rerun-if-changed=../../../migrations/sqlite");
}
