//! The AWS configuration of a function: loaded once per cold start, only when the function calls AWS
//! (Secrets Manager, S3, SQS), and shared by every client it builds.
//!
//! Its HTTPS client is the SDK's own (rustls on aws-lc), trusting the Mozilla root certificates compiled into
//! the binary (webpki-root-certs) instead of the system store: with the system store the SDK reads and parses
//! every file of the CA directory at start-up (strace: ~300 files of /etc/ssl/certs, 32 ms of a 180 ms
//! init in a debug build), and AWS's endpoints need public roots only. Sites with a private CA use
//! `anvil serve`, whose clients keep the system store.

use aws_config::ConfigLoader;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use base64::Engine;

/// The environment's AWS configuration (region, credentials, `AWS_ENDPOINT_URL`) with the compiled-in roots.
pub async fn sdk_config() -> anyhow::Result<SdkConfig> {
    Ok(loader()?.load().await)
}

fn loader() -> anyhow::Result<ConfigLoader> {
    let tls = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(mozilla_roots_pem()))
        .build()
        .map_err(|e| anyhow::anyhow!("TLS context: {e}"))?;
    let http =
        Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(tls).build_https();
    Ok(aws_config::defaults(BehaviorVersion::latest()).http_client(http))
}

/// Mozilla's root certificates as one PEM document (the form the SDK's trust store takes).
fn mozilla_roots_pem() -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pem = String::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2048);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let text = b64.encode(cert.as_ref());
        for line in text.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_well_formed_pem() {
        let pem = String::from_utf8(mozilla_roots_pem()).unwrap();
        let n = pem.matches("-----BEGIN CERTIFICATE-----").count();
        assert_eq!(n, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(n > 100, "{n} roots");
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
    }
}
