//! A pack's parts (rustic hands a pack over as a list of blobs) as one upload body, without
//! first copying them into one buffer: that copy doubled each pack in memory while it was sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The parts of one upload, their total length and their CRC32C (base64, as S3 takes it).
pub struct Parts {
    parts: Vec<Bytes>,
    len: u64,
}

impl Parts {
    pub fn new(parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(|p| p.len() as u64).sum();
        Self { parts, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The CRC32C S3 checks the body against (`x-amz-checksum-crc32c`).
    pub fn crc32c(&self) -> String {
        let mut sum = aws_smithy_checksums::ChecksumAlgorithm::Crc32c.into_impl();
        for part in &self.parts {
            sum.update(part);
        }
        aws_smithy_types::base64::encode(sum.finalize())
    }

    /// A body that can be sent again on a retry; the parts are shared, not copied.
    pub fn into_stream(self) -> ByteStream {
        let Self { parts, len } = self;
        ByteStream::new(SdkBody::retryable(move || {
            SdkBody::from_body_1_x(PartsBody {
                parts: parts.iter().cloned().collect(),
                left: len,
            })
        }))
    }
}

struct PartsBody {
    parts: VecDeque<Bytes>,
    left: u64,
}

impl Body for PartsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.parts.pop_front();
        if let Some(part) = &next {
            self.left = self.left.saturating_sub(part.len() as u64);
        }
        Poll::Ready(next.map(|part| Ok(Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_is_the_parts_in_order_and_can_be_read_twice() {
        let parts = vec![
            Bytes::from_static(b"12345"),
            Bytes::new(),
            Bytes::from_static(b"6789"),
        ];
        let body = Parts::new(parts);
        assert_eq!(body.len(), 9);
        // CRC-32C of "123456789", the standard check value 0xE3069283.
        assert_eq!(
            body.crc32c(),
            aws_smithy_types::base64::encode([0xE3, 0x06, 0x92, 0x83])
        );
        let first = body.into_stream().into_inner();
        let again = first
            .try_clone()
            .expect("the body is retryable, so it can be cloned");
        for sent in [first, again] {
            let bytes = ByteStream::new(sent)
                .collect()
                .await
                .expect("in-memory body")
                .into_bytes();
            assert_eq!(&bytes[..], b"123456789");
        }
    }
}
