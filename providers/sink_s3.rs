//! The S3 sink through the real `aws-sdk-s3` client. Large files go up as multipart uploads
//! with a CRC32 checksum on every part; the manifest protocol is [`crate::publish`]'s.
use std::path::Path;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::SinkError;
use crate::publish::BlobStore;

/// Files above this go up in parts of this size.
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
    part_size: u64,
}

fn remote<E: ProvideErrorMetadata + std::fmt::Debug>(what: &str, e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> SinkError {
    let detail = match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            format!("{}: {}", err.code().unwrap_or("Unknown"), err.message().unwrap_or(""))
        }
        other => format!("{other:?}"),
    };
    SinkError::Remote(format!("S3 {what}: {detail}"))
}

fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(se) => matches!(se.err().code(), Some("NoSuchKey") | Some("NotFound")) || se.raw().status().as_u16() == 404,
        _ => false,
    }
}

impl S3Blobs {
    /// From the AWS chain: credentials, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
    pub async fn from_env(bucket: &str, region: &str, force_path_style: bool) -> Result<Self, SinkError> {
        let conf = aws_config::defaults(BehaviorVersion::latest()).region(aws_config::Region::new(region.to_string())).load().await;
        let s3conf = aws_sdk_s3::config::Builder::from(&conf).force_path_style(force_path_style).build();
        Ok(S3Blobs { client: Client::from_conf(s3conf), bucket: bucket.to_string(), part_size: PART_SIZE })
    }

    pub fn with_client(client: Client, bucket: &str) -> Self {
        S3Blobs { client, bucket: bucket.to_string(), part_size: PART_SIZE }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn multipart(&self, key: &str, src: &Path, len: u64) -> Result<(), SinkError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| remote("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().ok_or_else(|| SinkError::Remote("S3 CreateMultipartUpload returned no upload id".into()))?.to_string();
        let parts = len.div_ceil(self.part_size);
        let result: Result<Vec<CompletedPart>, SinkError> = async {
            let mut done: Vec<CompletedPart> = futures::stream::iter((0..parts).map(|i| {
                let upload_id = upload_id.clone();
                async move {
                    let offset = i * self.part_size;
                    let n = self.part_size.min(len - offset);
                    let body = ByteStream::read_from()
                        .path(src)
                        .offset(offset)
                        .length(Length::Exact(n))
                        .build()
                        .await
                        .map_err(|e| SinkError::Remote(format!("reading part {} of {}: {e}", i + 1, src.display())))?;
                    let part_number = (i + 1) as i32;
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(part_number)
                        .checksum_algorithm(ChecksumAlgorithm::Crc32)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| remote("UploadPart", e))?;
                    Ok::<_, SinkError>(
                        CompletedPart::builder()
                            .part_number(part_number)
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                            .build(),
                    )
                }
            }))
            .buffer_unordered(PARTS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
            done.sort_by_key(|p| p.part_number());
            Ok(done)
        }
        .await;
        match result {
            Ok(done) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
                    .send()
                    .await
                    .map_err(|e| remote("CompleteMultipartUpload", e))?;
                Ok(())
            }
            Err(e) => {
                let _ = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id).send().await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn put_file(&self, key: &str, src: &Path) -> Result<(), SinkError> {
        let len = std::fs::metadata(src).map_err(|e| SinkError::Io { path: src.to_path_buf(), source: e })?.len();
        if len > self.part_size {
            return self.multipart(key, src, len).await;
        }
        let body = ByteStream::from_path(src).await.map_err(|e| SinkError::Remote(format!("reading {}: {e}", src.display())))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body)
            .send()
            .await
            .map_err(|e| remote("PutObject", e))?;
        Ok(())
    }

    async fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<(), SinkError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| remote("PutObject", e))?;
        Ok(())
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let b = out.body.collect().await.map_err(|e| SinkError::Remote(format!("S3 GetObject body: {e}")))?;
                Ok(Some(b.into_bytes().to_vec()))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(remote("GetObject", e)),
        }
    }

    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, SinkError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(remote("GetObject", e)),
        };
        let io = |e| SinkError::Io { path: dest.to_path_buf(), source: e };
        let mut f = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| SinkError::Remote(format!("S3 GetObject body: {e}")))?;
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        f.sync_all().await.map_err(io)?;
        Ok(true)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), SinkError> {
        let source = format!("{}/{}", self.bucket, from.split('/').map(urlencode).collect::<Vec<_>>().join("/"));
        self.client.copy_object().bucket(&self.bucket).key(to).copy_source(source).send().await.map_err(|e| remote("CopyObject", e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(|e| remote("DeleteObject", e))?;
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
