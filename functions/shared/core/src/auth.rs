//! Authentication: bearer JWTs (HS256 secret, RS256/ES256 PEM public key, or a JWKS document from a file or a
//! URL) and personal access tokens. `exp`, `iss` and `aud` are always required; the tenant and the roles come
//! from configurable claims. The tenant of a request comes from here and nowhere else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anvil_types::Role;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result};

/// Prefix of personal access tokens; anything else in a bearer header is treated as a JWT.
pub const PAT_PREFIX: &str = "anvil_pat_";

/// Who is calling, as proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub subject: Subject,
    pub role: Role,
    pub method: AuthMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    Pat,
}

impl Principal {
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("this needs the {} role", role.as_str())))
        }
    }
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(Arc<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(bytes))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where verification keys come from.
#[derive(Debug, Clone, Default)]
pub struct KeyConfig {
    /// HS256 shared secret (also used by `anvil token` to mint tokens).
    pub hs256_secret: Option<Secret>,
    /// PEM public keys (RSA → RS256, EC P-256 → ES256).
    pub public_key_pems: Vec<Vec<u8>>,
    /// A JWKS document's contents (read from a file).
    pub jwks_json: Option<String>,
    /// A JWKS URL, fetched at start and again when a token names an unknown `kid` (at most every `jwks_min_refresh`).
    pub jwks_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    /// Claim holding the tenant id (dots are not special: the claim name is taken as is).
    pub tenant_claim: String,
    /// Claim holding the role(s): a string, a space-separated string or an array; the highest Anvil role wins.
    pub roles_claim: String,
    pub leeway_secs: u64,
    /// Least time between two fetches of the JWKS URL (unknown `kid`s cannot make Anvil hammer the IdP).
    pub jwks_min_refresh: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: "anvil".into(),
            audience: "anvil".into(),
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            leeway_secs: 30,
            jwks_min_refresh: Duration::from_secs(10),
        }
    }
}

struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

struct JwksCache {
    url: String,
    keys: RwLock<(Vec<Arc<VerifyKey>>, Option<Instant>)>,
    http: reqwest::Client,
}

/// Verifies bearer JWTs. Built once per process.
pub struct JwtVerifier {
    settings: AuthSettings,
    static_keys: Vec<Arc<VerifyKey>>,
    jwks: Option<JwksCache>,
    signer: Option<EncodingKey>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.settings)
            .field("static_keys", &self.static_keys.len())
            .field("jwks_url", &self.jwks.as_ref().map(|j| &j.url))
            .finish()
    }
}

fn keys_from_jwks(doc: &str) -> anyhow::Result<Vec<Arc<VerifyKey>>> {
    let set: JwkSet = serde_json::from_str(doc)?;
    let mut out = Vec::new();
    for jwk in &set.keys {
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            // symmetric keys in a published key set would let anyone who can read it sign tokens
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk)?;
        out.push(Arc::new(VerifyKey { kid: jwk.common.key_id.clone(), alg, key }));
    }
    Ok(out)
}

impl JwtVerifier {
    pub fn new(settings: AuthSettings, keys: KeyConfig) -> anyhow::Result<Self> {
        let mut static_keys = Vec::new();
        let mut signer = None;
        if let Some(s) = &keys.hs256_secret {
            anyhow::ensure!(s.expose().len() >= 32, "the HS256 secret must be at least 32 bytes");
            static_keys.push(Arc::new(VerifyKey {
                kid: None,
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(s.expose()),
            }));
            signer = Some(EncodingKey::from_secret(s.expose()));
        }
        for pem in &keys.public_key_pems {
            let (alg, key) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
                (Algorithm::RS256, k)
            } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
                (Algorithm::ES256, k)
            } else {
                anyhow::bail!("a configured public key is neither an RSA nor an EC PEM public key");
            };
            static_keys.push(Arc::new(VerifyKey { kid: None, alg, key }));
        }
        if let Some(doc) = &keys.jwks_json {
            static_keys.extend(keys_from_jwks(doc)?);
        }
        let jwks = match &keys.jwks_url {
            Some(url) => Some(JwksCache {
                url: url.clone(),
                keys: RwLock::new((Vec::new(), None)),
                http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
            }),
            None => None,
        };
        anyhow::ensure!(
            !static_keys.is_empty() || jwks.is_some(),
            "no JWT verification key configured (ANVIL_JWT_HS256_SECRET[_FILE], ANVIL_JWT_PUBLIC_KEY_FILE, \
             ANVIL_JWT_JWKS_FILE or ANVIL_JWT_JWKS_URL)"
        );
        Ok(Self { settings, static_keys, jwks, signer })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Fetches the JWKS document now (at start-up); later refreshes happen on unknown `kid`s.
    pub async fn prefetch(&self) {
        if let Some(j) = &self.jwks
            && let Err(e) = self.refresh_jwks(j).await
        {
            tracing::warn!(error = %e, url = %j.url, "could not fetch the JWKS document; will retry on demand");
        }
    }

    async fn refresh_jwks(&self, j: &JwksCache) -> anyhow::Result<()> {
        {
            let guard = j.keys.read().await;
            if let Some(at) = guard.1
                && at.elapsed() < self.settings.jwks_min_refresh
            {
                return Ok(());
            }
        }
        let mut guard = j.keys.write().await;
        if let Some(at) = guard.1
            && at.elapsed() < self.settings.jwks_min_refresh
        {
            return Ok(());
        }
        guard.1 = Some(Instant::now());
        let doc = j.http.get(&j.url).send().await?.error_for_status()?.text().await?;
        guard.0 = keys_from_jwks(&doc)?;
        Ok(())
    }

    async fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<VerifyKey>> {
        let matches =
            |k: &VerifyKey| k.alg == alg && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid);
        let mut out: Vec<Arc<VerifyKey>> = self.static_keys.iter().filter(|k| matches(k)).cloned().collect();
        if let Some(j) = &self.jwks {
            let known = {
                let guard = j.keys.read().await;
                let found: Vec<_> = guard.0.iter().filter(|k| matches(k)).cloned().collect();
                let has_kid = kid.is_some_and(|kid| guard.0.iter().any(|k| k.kid.as_deref() == Some(kid)));
                out.extend(found);
                has_kid
            };
            if !known && self.refresh_jwks(j).await.is_ok() {
                let guard = j.keys.read().await;
                out.extend(guard.0.iter().filter(|k| matches(k)).cloned());
            }
        }
        out
    }

    /// Verifies a JWT and returns the principal it proves.
    pub async fn verify(&self, token: &str) -> Result<Principal> {
        let unauthorized = || Error::Unauthorized("invalid or expired token".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauthorized())?;
        // Only asymmetric algorithms and HS256 are ever accepted, and each key only with its own algorithm:
        // an RS256 public key can never be used as an HS256 secret (algorithm confusion).
        let keys = self.candidates(header.kid.as_deref(), header.alg).await;
        if keys.is_empty() {
            return Err(unauthorized());
        }
        let mut last = None;
        for k in keys {
            let mut v = Validation::new(k.alg);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            v.set_issuer(&[&self.settings.issuer]);
            v.set_audience(&[&self.settings.audience]);
            v.leeway = self.settings.leeway_secs;
            v.validate_nbf = true;
            match jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &k.key, &v) {
                Ok(data) => return self.principal_from_claims(&data.claims),
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            tracing::debug!(error = %e, "JWT rejected");
        }
        Err(unauthorized())
    }

    fn principal_from_claims(&self, claims: &serde_json::Map<String, Value>) -> Result<Principal> {
        let tenant = claims
            .get(&self.settings.tenant_claim)
            .and_then(Value::as_str)
            .and_then(TenantId::parse)
            .ok_or_else(|| Error::Unauthorized("the token carries no valid tenant".into()))?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(Subject::parse)
            .ok_or_else(|| Error::Unauthorized("the token carries no valid subject".into()))?;
        let role = roles_from_claim(claims.get(&self.settings.roles_claim))
            .ok_or_else(|| Error::Forbidden("the token grants no Anvil role".into()))?;
        Ok(Principal { tenant, subject, role, method: AuthMethod::Jwt })
    }

    /// Whether this verifier can mint tokens (an HS256 secret is configured).
    pub fn can_mint(&self) -> bool {
        self.signer.is_some()
    }

    /// Mints an HS256 token for a tenant, subject and role, valid for `ttl`.
    pub fn mint(
        &self,
        tenant: &TenantId,
        subject: &Subject,
        role: Role,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let key =
            self.signer.as_ref().ok_or_else(|| anyhow::anyhow!("no HS256 secret configured to sign with"))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": subject.as_str(),
            "iat": now,
            "exp": now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            self.settings.tenant_claim.clone(): tenant.as_str(),
            self.settings.roles_claim.clone(): [role.as_str()],
        });
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)?)
    }
}

/// The highest Anvil role named by a roles claim (string, space-separated string, or array of strings).
pub fn roles_from_claim(v: Option<&Value>) -> Option<Role> {
    let names: Vec<&str> = match v? {
        Value::String(s) => s.split([' ', ',']).collect(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    names.into_iter().filter_map(|n| Role::parse(n.trim())).max()
}

/// A new personal access token secret: the prefix plus 32 random bytes, hex.
pub fn new_pat() -> anyhow::Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("{PAT_PREFIX}{}", hex::encode(buf)))
}

/// What is stored for a PAT: its sha256 (a PAT has 256 bits of entropy, so no salt or slow hash is needed).
pub fn pat_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// 32 random bytes (for generated secrets).
pub fn random_secret() -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verifier() -> JwtVerifier {
        let keys = KeyConfig { hs256_secret: Some(Secret::new(vec![7u8; 32])), ..Default::default() };
        JwtVerifier::new(AuthSettings::default(), keys).unwrap()
    }

    #[tokio::test]
    async fn a_minted_token_verifies_to_its_principal() {
        let v = verifier();
        let t = TenantId::parse("acme").unwrap();
        let s = Subject::parse("ada").unwrap();
        let tok = v.mint(&t, &s, Role::Auditor, Duration::from_secs(60)).unwrap();
        let p = v.verify(&tok).await.unwrap();
        assert_eq!((p.tenant, p.subject, p.role), (t, s, Role::Auditor));
    }

    #[tokio::test]
    async fn tokens_without_exp_iss_or_aud_are_rejected() {
        let v = verifier();
        let key = EncodingKey::from_secret(&[7u8; 32]);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let full = json!({"iss": "anvil", "aud": "anvil", "sub": "a", "exp": now + 60, "tenant": "t", "roles": "admin"});
        for drop in ["exp", "iss", "aud"] {
            let mut c = full.clone();
            c.as_object_mut().unwrap().remove(drop);
            let tok = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &key).unwrap();
            assert!(v.verify(&tok).await.is_err(), "accepted a token without {drop}");
        }
        let tok = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &full, &key).unwrap();
        assert!(v.verify(&tok).await.is_ok());
    }

    #[test]
    fn the_highest_role_in_the_claim_wins() {
        assert_eq!(roles_from_claim(Some(&json!(["labeler", "admin", "x"]))), Some(Role::Admin));
        assert_eq!(roles_from_claim(Some(&json!("labeler auditor"))), Some(Role::Auditor));
        assert_eq!(roles_from_claim(Some(&json!(["viewer"]))), None);
        assert_eq!(roles_from_claim(None), None);
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new(b"hunter2".to_vec())), "Secret(***)");
    }
}
