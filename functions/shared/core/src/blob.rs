//! The blob store port: where exports land and imports are uploaded. Adapters: a local directory (embedded
//! default; signed URLs served by `anvil serve`) and S3 or any S3-compatible store (multipart uploads,
//! presigned URLs).
//!
//! An upload is invisible until `finish`: the directory adapter writes a temp file and renames it; the S3
//! adapter completes a multipart upload. `abort` (or a crash) leaves nothing visible under the key.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::auth::Secret;
use crate::error::{Error, Result};

/// One streaming upload to a key.
#[async_trait]
pub trait BlobUpload: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// Makes the object visible under its key, atomically.
    async fn finish(self: Box<Self>) -> Result<()>;
    /// Drops everything written so far.
    async fn abort(self: Box<Self>) -> Result<()>;
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// `fs` or `s3`.
    fn kind(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
    /// Starts an upload; `upload_id` names the attempt so a retry can clean up after a crashed one.
    async fn begin(&self, key: &str, content_type: &str) -> Result<Box<dyn BlobUpload>>;
    /// Removes unfinished uploads under `prefix` (left by a crashed attempt).
    async fn abort_incomplete(&self, prefix: &str) -> Result<u32>;
    /// A whole small object (manifests), or `None`.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Reads an object as a stream.
    async fn open(&self, key: &str) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// A URL that downloads `key` until `ttl` has passed; `filename` is offered to the browser.
    async fn download_url(&self, key: &str, ttl: Duration, filename: &str) -> Result<String>;
    /// A URL that accepts one `PUT` of the object's bytes until `ttl` has passed.
    async fn upload_url(&self, key: &str, ttl: Duration) -> Result<String>;
}

/// Keys are relative paths of `[A-Za-z0-9._-]` segments: no absolute paths, no `..`, no empty segments.
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && !seg.starts_with('.')
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok { Ok(()) } else { Err(Error::NotFound("object")) }
}

// ------------------------------------------------------------------------------------------------------------
// Signed local URLs
// ------------------------------------------------------------------------------------------------------------

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks the URLs of the directory adapter: HMAC-SHA256 over method, key and expiry.
#[derive(Clone, Debug)]
pub struct UrlSigner {
    secret: Secret,
    /// Prefix of generated URLs, e.g. `http://127.0.0.1:8080` or empty for relative URLs.
    base_url: String,
}

impl UrlSigner {
    pub fn new(secret: Secret, base_url: impl Into<String>) -> Self {
        Self { secret, base_url: base_url.into() }
    }

    fn mac(&self, method: &str, key: &str, expires: i64) -> Result<HmacSha256> {
        let mut m = HmacSha256::new_from_slice(self.secret.expose())
            .map_err(|e| Error::Internal(anyhow::anyhow!("hmac key: {e}")))?;
        m.update(method.as_bytes());
        m.update(b"\n");
        m.update(key.as_bytes());
        m.update(b"\n");
        m.update(expires.to_string().as_bytes());
        Ok(m)
    }

    pub fn sign(&self, method: &str, key: &str, ttl: Duration) -> Result<String> {
        let expires =
            time::OffsetDateTime::now_utc().unix_timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(0);
        let sig = hex::encode(self.mac(method, key, expires)?.finalize().into_bytes());
        // `/` is not a key character in the URL: the key travels as one path segment with `~` for `/`.
        Ok(format!("{}/v1/blobs/{}?expires={expires}&sig={sig}", self.base_url, url_key(key)))
    }

    /// Checks a signature in constant time and the expiry; any failure is "not found" (nothing to learn).
    pub fn verify(&self, method: &str, key: &str, expires: i64, sig: &str) -> Result<()> {
        check_key(key)?;
        if expires < time::OffsetDateTime::now_utc().unix_timestamp() {
            return Err(Error::Forbidden("this link has expired".into()));
        }
        let bytes = hex::decode(sig).map_err(|_| Error::NotFound("object"))?;
        self.mac(method, key, expires)?.verify_slice(&bytes).map_err(|_| Error::NotFound("object"))
    }
}

/// A key as one URL path segment (`/` becomes `~`, which keys never contain).
pub fn url_key(key: &str) -> String {
    key.replace('/', "~")
}

/// The key of a URL path segment made by [`url_key`].
pub fn key_from_url(segment: &str) -> String {
    segment.replace('~', "/")
}

// ------------------------------------------------------------------------------------------------------------
// Local directory
// ------------------------------------------------------------------------------------------------------------

/// Blobs as files under a directory; unfinished uploads live in `<dir>/.tmp/` and are renamed into place.
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    root: PathBuf,
    signer: UrlSigner,
}

impl FsBlobStore {
    pub fn new(root: impl Into<PathBuf>, signer: UrlSigner) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join(".tmp")).map_err(|e| Error::Internal(e.into()))?;
        Ok(Self { root, signer })
    }

    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    /// The temp-file name of an upload of `key`: the key with `/` flattened, plus a unique suffix.
    fn tmp_path(&self, key: &str) -> PathBuf {
        self.root.join(".tmp").join(format!("{}.{}", key.replace('/', "~"), uuid::Uuid::now_v7().simple()))
    }
}

struct FsUpload {
    file: tokio::fs::File,
    tmp: PathBuf,
    dest: PathBuf,
}

#[async_trait]
impl BlobUpload for FsUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.file.write_all(&chunk).await.map_err(|e| Error::Internal(e.into()))
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        let io = |e: std::io::Error| Error::Internal(e.into());
        self.file.flush().await.map_err(io)?;
        self.file.sync_all().await.map_err(io)?;
        if let Some(dir) = self.dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        tokio::fs::rename(&self.tmp, &self.dest).await.map_err(io)?;
        // make the rename itself durable
        if let Some(dir) = self.dest.parent()
            && let Ok(d) = tokio::fs::File::open(dir).await
        {
            let _ = d.sync_all().await;
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        let _ = tokio::fs::remove_file(&self.tmp).await;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    fn kind(&self) -> &'static str {
        "fs"
    }

    async fn ping(&self) -> Result<()> {
        let probe = self.root.join(".tmp").join(format!("ping.{}", uuid::Uuid::now_v7().simple()));
        tokio::fs::write(&probe, b"ok").await.map_err(|e| Error::Internal(e.into()))?;
        let _ = tokio::fs::remove_file(&probe).await;
        Ok(())
    }

    async fn begin(&self, key: &str, _content_type: &str) -> Result<Box<dyn BlobUpload>> {
        let dest = self.path(key)?;
        let tmp = self.tmp_path(key);
        let file = tokio::fs::File::create(&tmp).await.map_err(|e| Error::Internal(e.into()))?;
        Ok(Box::new(FsUpload { file, tmp, dest }))
    }

    async fn abort_incomplete(&self, prefix: &str) -> Result<u32> {
        let flat = prefix.replace('/', "~");
        let mut n = 0;
        let mut dir =
            tokio::fs::read_dir(self.root.join(".tmp")).await.map_err(|e| Error::Internal(e.into()))?;
        while let Some(e) = dir.next_entry().await.map_err(|e| Error::Internal(e.into()))? {
            if e.file_name().to_string_lossy().starts_with(&flat)
                && tokio::fs::remove_file(e.path()).await.is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Internal(e.into())),
        }
    }

    async fn open(&self, key: &str) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>> {
        match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Internal(e.into())),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Internal(e.into())),
        }
    }

    async fn download_url(&self, key: &str, ttl: Duration, _filename: &str) -> Result<String> {
        check_key(key)?;
        self.signer.sign("GET", key, ttl)
    }

    async fn upload_url(&self, key: &str, ttl: Duration) -> Result<String> {
        check_key(key)?;
        self.signer.sign("PUT", key, ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b", ".tmp/x", "a/./b", "a\\b", "a b", "a/.."]
        {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["exports/t1/01/labels.jsonl", "imports/acme/x-1.csv"] {
            assert!(check_key(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn a_signature_is_bound_to_method_key_and_expiry() {
        let s = UrlSigner::new(Secret::new(vec![1; 32]), "");
        let url = s.sign("GET", "exports/a.jsonl", Duration::from_secs(60)).unwrap();
        let q = url.split('?').nth(1).unwrap();
        let expires: i64 = q.split('&').next().unwrap().trim_start_matches("expires=").parse().unwrap();
        let sig = q.split("sig=").nth(1).unwrap();
        assert!(s.verify("GET", "exports/a.jsonl", expires, sig).is_ok());
        assert!(s.verify("PUT", "exports/a.jsonl", expires, sig).is_err());
        assert!(s.verify("GET", "exports/b.jsonl", expires, sig).is_err());
        assert!(s.verify("GET", "exports/a.jsonl", expires + 1, sig).is_err());
        assert!(s.verify("GET", "exports/a.jsonl", 1, sig).is_err());
    }

    #[tokio::test]
    async fn an_upload_is_invisible_until_finished_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path(), UrlSigner::new(Secret::new(vec![1; 32]), "")).unwrap();
        let mut up = store.begin("exports/t/x.jsonl", "application/x-ndjson").await.unwrap();
        up.write(Bytes::from_static(b"line\n")).await.unwrap();
        assert!(store.get("exports/t/x.jsonl").await.unwrap().is_none());
        up.finish().await.unwrap();
        assert_eq!(store.get("exports/t/x.jsonl").await.unwrap().unwrap(), Bytes::from_static(b"line\n"));
        let mut up = store.begin("exports/t/y.jsonl", "x").await.unwrap();
        up.write(Bytes::from_static(b"partial")).await.unwrap();
        drop(up); // a crash: the temp file stays behind until the retry cleans it
        assert_eq!(store.abort_incomplete("exports/t/y").await.unwrap(), 1);
        assert!(store.get("exports/t/y.jsonl").await.unwrap().is_none());
    }
}
