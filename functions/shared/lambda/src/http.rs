//! The HTTP functions' state (feature `http`): the route group's [`AppState`], built once per cold start.
//! The worker and migrate functions are built without this feature, so they carry no HTTP layer.

use std::sync::Arc;

use anvil_api::{AppState, Limits, RouteGroup};
use anvil_core::auth::{JwtVerifier, KeyConfig, Secret, random_secret};
use anvil_core::compose::Parts;
use anvil_core::health::{Probe, StoreProbe};

use crate::{
    LambdaConfig, aws_config_if, check_background, db, has_secret_arns, jwt_verifier, logged, pg_store,
    secrets_client, warm,
};

/// Everything an HTTP function's router needs, built once per cold start: secrets (both fetched at once),
/// the Postgres pool (running as the application role, one connection opened now while init has the CPU),
/// the JWT verifier, the readiness probes, and for the groups that create exports and imports
/// ([`needs_background`]) the S3 blob store and the SQS dispatcher. Migrations are not run here: the `migrate`
/// function does that before the functions take traffic, as the database owner.
///
/// The health group authenticates nobody, so its function reads no JWT key (the template grants it none, and
/// it never fetches a JWKS at init): it gets a throwaway random key that verifies no token.
pub async fn app_state(cfg: &LambdaConfig, group: RouteGroup) -> anyhow::Result<AppState> {
    logged(build_app_state(cfg, group).await)
}

/// Whether a route group's handlers need the blob store and the job queue: exports, and the queues group,
/// which serves imports and the operations summary.
pub fn needs_background(group: RouteGroup) -> bool {
    matches!(group, RouteGroup::Exports | RouteGroup::Queues)
}

async fn build_app_state(cfg: &LambdaConfig, group: RouteGroup) -> anyhow::Result<AppState> {
    let background = needs_background(group);
    if background {
        check_background(cfg)?;
    }
    // One AWS configuration for Secrets Manager, S3 and SQS; none at all for a function that calls no AWS.
    // Loading it reads only the environment (and the absent profile files).
    let aws = aws_config_if(background || has_secret_arns(cfg)).await?;
    let secrets = secrets_client(cfg, aws.as_ref());
    // Two independent chains at once: the database (its secret, then the first connection) and the JWT keys
    // (their secret, or the identity provider's JWKS).
    let database = async {
        let url = db::resolve(cfg, secrets.as_ref()).await?;
        let stores = pg_store(cfg, &url).await?;
        warm(stores.store.as_ref()).await;
        Ok::<_, anyhow::Error>(stores)
    };
    let jwt = async {
        if group == RouteGroup::Health {
            let keys =
                KeyConfig { hs256_secret: Some(Secret::new(random_secret()?)), ..KeyConfig::default() };
            Ok(Arc::new(JwtVerifier::new(cfg.core.auth_settings(), keys)?))
        } else {
            jwt_verifier(cfg, secrets.as_ref()).await
        }
    };
    let (stores, jwt) = tokio::try_join!(database, jwt)?;
    // S3 and SQS clients: no connection of their own until the first request.
    let anvil = match background {
        true => Parts::over(&cfg.core, stores.clone(), "", aws.as_ref())?.anvil(jwt),
        false => stores.anvil(jwt),
    };
    let probes: Vec<Arc<dyn Probe>> = vec![Arc::new(StoreProbe(stores.store.clone()))];
    Ok(AppState {
        anvil,
        probes: Arc::new(probes),
        limits: Limits {
            max_body_bytes: cfg.core.max_body_bytes,
            request_timeout: cfg.core.request_timeout(),
        },
    })
}
