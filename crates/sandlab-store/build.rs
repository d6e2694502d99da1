// `sqlx::migrate!` embeds `migrations/` (SQLite) and `migrations-postgres/` at compile
// time; rebuild when a migration is added.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-postgres");
}
