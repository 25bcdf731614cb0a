//! `migrations/functions/` against a freshly migrated Postgres: every function Anvil owns has a file there,
//! every file a function, and each file is the text the database runs (migrations/functions/README.md).
//! The files are read at test time, so a change to one needs no rebuild to be checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sqlx::{AssertSqlSafe, PgPool, Row};

const FUNCTIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../migrations/functions");

/// The files of migrations/functions/: function name (the file's stem) -> its SQL.
fn function_files() -> BTreeMap<String, String> {
    let dir = Path::new(FUNCTIONS_DIR);
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "sql") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.insert(name, sql);
        }
    }
    files
}

/// One function of the database: its name and `pg_get_functiondef` (None for an aggregate, which has none).
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    definition: Option<String>,
}

/// Every function Anvil owns in schema `public`, by signature (`name(arg types)`, so overloads are told apart):
/// those of extensions (pg_depend deptype 'e') are not Anvil's.
async fn functions<'e>(db: impl sqlx::PgExecutor<'e>) -> BTreeMap<String, Function> {
    let rows = sqlx::query(
        "SELECT p.oid::regprocedure::text AS signature, p.proname::text AS name,
                CASE WHEN p.prokind = 'a' THEN NULL ELSE pg_get_functiondef(p.oid) END AS definition
         FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
         ORDER BY 1",
    )
    .fetch_all(db)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let f = Function { name: r.get("name"), definition: r.get("definition") };
            (r.get::<String, _>("signature"), f)
        })
        .collect()
}

/// Where two definitions first differ, for the failure message.
fn first_difference(before: &str, after: &str) -> String {
    let (b, a): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    let n = (0..b.len().max(a.len())).find(|&i| b.get(i) != a.get(i)).unwrap_or(0);
    format!(
        "line {}: the migrations give {:?}, the file {:?}",
        n + 1,
        b.get(n).copied().unwrap_or("<end>"),
        a.get(n).copied().unwrap_or("<end>")
    )
}

#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn every_sql_function_has_a_file_and_every_file_a_function(pool: PgPool) {
    let in_database: BTreeSet<String> = functions(&pool).await.into_values().map(|f| f.name).collect();
    assert!(in_database.contains("anvil_claim"), "the migrations made no anvil_claim: {in_database:?}");
    let in_files: BTreeSet<String> = function_files().into_keys().collect();

    let without_file: Vec<&String> = in_database.difference(&in_files).collect();
    let without_function: Vec<&String> = in_files.difference(&in_database).collect();
    assert!(
        without_file.is_empty(),
        "functions of the migrated database without a file in migrations/functions/: {without_file:?} \
         (add <name>.sql holding the migrations' last definition)"
    );
    assert!(
        without_function.is_empty(),
        "files in migrations/functions/ naming no function of the migrated database: {without_function:?} \
         (a dropped function loses its file)"
    );
}

#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn every_sql_function_has_the_definition_its_file_shows(pool: PgPool) {
    let migrated = functions(&pool).await;
    let files = function_files();
    assert!(!files.is_empty(), "no files in {FUNCTIONS_DIR}");

    let mut problems = Vec::new();
    for (name, sql) in &files {
        // every statement of the file is CREATE OR REPLACE or ALTER: it redefines what is there
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql.as_str())).execute(&pool).await {
            problems.push(format!("{name}.sql does not run: {e}"));
            continue;
        }
        let now = functions(&pool).await;
        for (signature, f) in now.iter().filter(|(_, f)| &f.name == name) {
            match migrated.get(signature) {
                None => problems.push(format!("{name}.sql creates {signature}, which the migrations do not")),
                Some(m) if m != f => problems.push(format!(
                    "{name}.sql redefines {signature}: {}",
                    first_difference(
                        m.definition.as_deref().unwrap_or_default(),
                        f.definition.as_deref().unwrap_or_default()
                    )
                )),
                Some(_) => {}
            }
        }
    }
    // and no file changed another name's function (or dropped one)
    let now = functions(&pool).await;
    for (signature, m) in &migrated {
        if now.get(signature) != Some(m) && !problems.iter().any(|p| p.contains(signature.as_str())) {
            problems.push(format!("{signature} is not as the migrations left it after running every file"));
        }
    }
    assert!(
        problems.is_empty(),
        "migrations/functions/ is not what the migrations define:\n{}",
        problems.join("\n")
    );
}

/// The comparison above is not vacuous: a file whose text differs from the migrations' only by a comment inside
/// the body gives a different `pg_get_functiondef` (run in a transaction that is rolled back).
#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn a_file_that_differs_from_the_migrations_gives_a_different_definition(pool: PgPool) {
    let migrated = functions(&pool).await;
    let sql = function_files().remove("anvil_claim").expect("migrations/functions/anvil_claim.sql");
    let altered = sql.replacen("\nBEGIN\n", "\nBEGIN\n    -- a comment the migrations do not have\n", 1);
    assert_ne!(altered, sql, "anvil_claim.sql has no line `BEGIN` to add a comment after");

    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(altered)).execute(&mut *tx).await.unwrap();
    let changed = functions(&mut *tx).await;
    tx.rollback().await.unwrap();

    let signature = "anvil_claim(text,uuid,text,uuid)";
    let (before, after) = (&migrated[signature], &changed[signature]);
    assert_ne!(before, after, "the altered anvil_claim.sql left pg_get_functiondef unchanged");
    assert!(
        after.definition.as_deref().unwrap().contains("-- a comment the migrations do not have"),
        "the altered definition does not carry the added comment"
    );
    // rolled back: the database is as the migrations left it
    assert_eq!(functions(&pool).await, migrated);
}
