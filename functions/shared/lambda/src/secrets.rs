//! Secrets Manager by ARN. Each secret is fetched once, at init, and kept for the life of the process (a warm
//! Lambda instance never calls Secrets Manager again). The client honours the usual AWS environment
//! (`AWS_REGION`, credentials, and `AWS_ENDPOINT_URL`, which the tests point at moto).

use anvil_core::auth::{KeyConfig, Secret};
use anyhow::Context;
use serde_json::Value;

/// A secret's text; never printed.
#[derive(Clone)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(***)")
    }
}

/// A Secrets Manager client.
#[derive(Debug, Clone)]
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
}

impl Secrets {
    /// A client over the function's AWS configuration ([`crate::aws::sdk_config`]).
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_secretsmanager::Client::new(conf) }
    }

    /// The current value (`AWSCURRENT`) of a string secret.
    pub async fn get(&self, arn: &str) -> anyhow::Result<SecretText> {
        let out = self.client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
            anyhow::anyhow!("GetSecretValue {arn}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
        })?;
        let s = out.secret_string.with_context(|| {
            format!("secret {arn} holds no SecretString (binary secrets are not supported)")
        })?;
        Ok(SecretText(s))
    }
}

/// Adds the keys of a JWT secret to `keys`: a plain string is the HS256 secret; a JSON object may carry
/// `hs256_secret`, `public_key_pem` (RS256/ES256) and `jwks` (a JWKS document, as an object or a string).
pub fn merge_jwt_secret(keys: &mut KeyConfig, raw: &str) -> anyhow::Result<()> {
    let raw = raw.trim();
    let obj = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(o)) => o,
        _ => {
            anyhow::ensure!(
                raw.len() >= 32,
                "the JWT secret is shorter than 32 bytes: HS256 needs at least 32"
            );
            keys.hs256_secret = Some(Secret::new(raw.as_bytes().to_vec()));
            return Ok(());
        }
    };
    let mut found = false;
    if let Some(s) = obj.get("hs256_secret").and_then(Value::as_str) {
        keys.hs256_secret = Some(Secret::new(s.trim().as_bytes().to_vec()));
        found = true;
    }
    if let Some(s) = obj.get("public_key_pem").and_then(Value::as_str) {
        keys.public_key_pems.push(s.as_bytes().to_vec());
        found = true;
    }
    match obj.get("jwks") {
        Some(Value::String(s)) => {
            keys.jwks_json = Some(s.clone());
            found = true;
        }
        Some(v @ Value::Object(_)) => {
            keys.jwks_json = Some(v.to_string());
            found = true;
        }
        _ => {}
    }
    anyhow::ensure!(
        found,
        "the JWT secret is a JSON object without `hs256_secret`, `public_key_pem` or `jwks`"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_plain_secret_is_the_hs256_key() {
        let mut k = KeyConfig::default();
        merge_jwt_secret(&mut k, " 0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(k.hs256_secret.unwrap().expose(), b"0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn a_short_plain_secret_is_refused() {
        let mut k = KeyConfig::default();
        assert!(merge_jwt_secret(&mut k, "short").is_err());
    }

    #[test]
    fn a_json_secret_may_carry_every_kind_of_key() {
        let mut k = KeyConfig::default();
        let raw = r#"{"hs256_secret":"s","public_key_pem":"-----BEGIN PUBLIC KEY-----","jwks":{"keys":[]}}"#;
        merge_jwt_secret(&mut k, raw).unwrap();
        assert!(k.hs256_secret.is_some());
        assert_eq!(k.public_key_pems.len(), 1);
        assert_eq!(k.jwks_json.as_deref(), Some(r#"{"keys":[]}"#));
    }

    #[test]
    fn a_json_secret_without_keys_is_an_error() {
        let mut k = KeyConfig::default();
        assert!(merge_jwt_secret(&mut k, r#"{"other":1}"#).is_err());
    }

    #[test]
    fn a_secret_never_prints() {
        assert_eq!(format!("{:?}", SecretText::new("hunter2".into())), "SecretText(***)");
    }
}
