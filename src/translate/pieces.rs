//! A request body sent as a list of byte pieces, with an exact length.
//!
//! An OpenAI-style upstream body is mostly the client's own bytes (`messages`, `tools`):
//! sending slices of the client's buffer between the few rewritten fields avoids copying a
//! large body into a fresh buffer on every attempt. hyper writes the pieces with vectored I/O
//! and sends `Content-Length`, as for a single buffer.

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Byte pieces written in order; small ones are coalesced as they are pushed.
#[derive(Debug, Default)]
pub(crate) struct Pieces {
    done: VecDeque<Bytes>,
    /// Total length of `done`.
    done_len: u64,
    /// Small writes collect here until a large piece (or the end) flushes them.
    small: Vec<u8>,
}

impl Pieces {
    /// Pieces whose small writes have room for `n` bytes before growing.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Pieces {
            small: Vec::with_capacity(n),
            ..Pieces::default()
        }
    }

    /// Appends `bytes` without copying it.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        self.flush();
        self.done_len += bytes.len() as u64;
        self.done.push_back(bytes);
    }

    /// The buffer small writes are copied (or serialised) into.
    pub(crate) fn small(&mut self) -> &mut Vec<u8> {
        &mut self.small
    }

    fn flush(&mut self) {
        if !self.small.is_empty() {
            let small = std::mem::take(&mut self.small);
            self.done_len += small.len() as u64;
            self.done.push_back(Bytes::from(small));
        }
    }

    /// Total length in bytes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.done_len + self.small.len() as u64
    }

    /// Everything as one contiguous buffer (tests, logs).
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for b in &self.done {
            out.extend_from_slice(b);
        }
        out.extend_from_slice(&self.small);
        out
    }

    /// The finished body.
    pub(crate) fn into_body(mut self) -> PiecesBody {
        self.flush();
        PiecesBody {
            pieces: self.done,
            remaining: self.done_len,
        }
    }
}

impl From<Vec<u8>> for Pieces {
    fn from(small: Vec<u8>) -> Self {
        Pieces {
            small,
            ..Pieces::default()
        }
    }
}

/// The body over finished [`Pieces`]: one data frame per piece.
#[derive(Debug)]
pub(crate) struct PiecesBody {
    pieces: VecDeque<Bytes>,
    remaining: u64,
}

impl HttpBody for PiecesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.pieces.pop_front().map(|b| {
            self.remaining -= b.len() as u64;
            Ok(Frame::data(b))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn pieces_keep_order_and_length() {
        let mut p = Pieces::default();
        p.small().extend_from_slice(b"{\"a\":");
        p.push(Bytes::from_static(b"[1,2,3]"));
        p.small().extend_from_slice(b",\"b\":true}");
        assert_eq!(p.len(), 22);
        assert_eq!(p.to_vec(), b"{\"a\":[1,2,3],\"b\":true}");
        let body = p.into_body();
        assert_eq!(body.size_hint().exact(), Some(22));
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"{\"a\":[1,2,3],\"b\":true}");
    }
}
