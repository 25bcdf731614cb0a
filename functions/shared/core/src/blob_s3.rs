//! The S3 adapter of the blob store port (AWS S3, or MinIO/Ceph/Garage with path-style addressing).
//! Uploads are multipart: parts of 8 MiB are sent as they fill, so memory stays bounded whatever the size;
//! the object appears only when the upload is completed, and an aborted or crashed upload is removed by
//! `abort_incomplete` on the retry.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;

use crate::blob::{BlobStore, BlobUpload, check_key};
use crate::error::{Error, Result};

const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

fn s3_err<E: std::error::Error + Send + Sync + 'static>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| {
        let e = anyhow::Error::new(e);
        tracing::warn!(error = format!("{e:#}"), what, "object store call failed");
        Error::Internal(e.context(what))
    }
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    /// A client from an AWS configuration loaded once per process (the SQS client shares it). `endpoint`,
    /// `path_style` and `region` are for S3-compatible stores and apply to S3 only.
    pub fn from_sdk_config(
        conf: &aws_config::SdkConfig,
        bucket: &str,
        endpoint: Option<&str>,
        path_style: bool,
        region: Option<&str>,
    ) -> Self {
        let mut s3 = aws_sdk_s3::config::Builder::from(conf).force_path_style(path_style);
        if let Some(ep) = endpoint {
            s3 = s3.endpoint_url(ep);
        }
        if let Some(r) = region {
            s3 = s3.region(aws_sdk_s3::config::Region::new(r.to_string()));
        }
        Self::new(Client::from_conf(s3.build()), bucket)
    }
}

struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    buf: BytesMut,
    parts: Vec<CompletedPart>,
}

impl S3Upload {
    async fn flush_part(&mut self) -> Result<()> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = self.buf.split().freeze();
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(s3_err("upload part"))?;
        self.parts.push(CompletedPart::builder().set_e_tag(out.e_tag).part_number(number).build());
        Ok(())
    }
}

#[async_trait]
impl BlobUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= PART_SIZE {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        if !self.buf.is_empty() || self.parts.is_empty() {
            self.flush_part().await?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(self.parts.clone())).build())
            .send()
            .await
            .map_err(s3_err("complete multipart upload"))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(s3_err("abort multipart upload"))?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn ping(&self) -> Result<()> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(s3_err("head bucket"))?;
        Ok(())
    }

    async fn begin(&self, key: &str, content_type: &str) -> Result<Box<dyn BlobUpload>> {
        check_key(key)?;
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(s3_err("create multipart upload"))?;
        let upload_id =
            out.upload_id.ok_or_else(|| Error::Internal(anyhow::anyhow!("S3 returned no upload id")))?;
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id,
            buf: BytesMut::with_capacity(PART_SIZE),
            parts: Vec::new(),
        }))
    }

    async fn abort_incomplete(&self, prefix: &str) -> Result<u32> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(s3_err("list multipart uploads"))?;
        let mut n = 0;
        for u in out.uploads() {
            if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(s3_err("abort multipart upload"))?;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        check_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(s3_err("read object"))?.into_bytes())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(s3_err("get object")(e)),
        }
    }

    async fn open(&self, key: &str) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>> {
        check_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(Box::new(out.body.into_async_read()))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(s3_err("get object")(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_err("delete object"))?;
        Ok(())
    }

    async fn download_url(&self, key: &str, ttl: Duration, filename: &str) -> Result<String> {
        check_key(key)?;
        let cfg = PresigningConfig::expires_in(ttl).map_err(s3_err("presigning config"))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{filename}\""))
            .presigned(cfg)
            .await
            .map_err(s3_err("presign get"))?;
        Ok(req.uri().to_string())
    }

    async fn upload_url(&self, key: &str, ttl: Duration) -> Result<String> {
        check_key(key)?;
        let cfg = PresigningConfig::expires_in(ttl).map_err(s3_err("presigning config"))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(s3_err("presign put"))?;
        Ok(req.uri().to_string())
    }
}
