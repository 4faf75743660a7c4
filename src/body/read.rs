//! Reading a whole body under a limit.

use crate::BoxError;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

/// Largest response body any layer reads whole (a non-streaming completion, an error body).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Reads a whole body, up to `max` bytes.
///
/// Awaited in place (no boxed future), and a body of one data frame (the usual upstream answer)
/// is returned as that frame, without the buffer list `collect` builds: two allocations fewer
/// per response.
pub async fn read_limited<B>(body: B, max: usize) -> Result<Bytes, BoxError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(Limited::new(body, max));
    let mut first: Option<Bytes> = None;
    // Only when a second data frame comes: the frames so far, joined.
    let mut joined: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        // Trailers carry no body bytes.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match (&first, &mut joined) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut all = Vec::with_capacity(f.len() + data.len());
                all.extend_from_slice(f);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
            (Some(_), Some(all)) => all.extend_from_slice(&data),
        }
    }
    Ok(match joined {
        Some(all) => Bytes::from(all),
        None => first.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Body;
    use http::HeaderValue;
    use http_body::Frame;
    use http_body_util::StreamBody;

    fn frames(parts: Vec<Frame<Bytes>>) -> Body {
        let items: Vec<Result<Frame<Bytes>, BoxError>> = parts.into_iter().map(Ok).collect();
        crate::body::boxed(StreamBody::new(futures_util::stream::iter(items)))
    }

    fn data(s: &'static str) -> Frame<Bytes> {
        Frame::data(Bytes::from_static(s.as_bytes()))
    }

    #[tokio::test]
    async fn one_frame_comes_back_as_it_came() {
        let frame = Bytes::from_static(b"{\"a\":1}");
        let got = read_limited(frames(vec![Frame::data(frame.clone())]), 100)
            .await
            .expect("read");
        assert_eq!(got, frame);
        assert_eq!(got.as_ptr(), frame.as_ptr(), "not copied");
    }

    #[tokio::test]
    async fn frames_are_joined_in_order_and_trailers_skipped() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-t", HeaderValue::from_static("1"));
        let body = frames(vec![
            data(""),
            data("ab"),
            Frame::trailers(trailers),
            data(""),
            data("cd"),
            data("e"),
        ]);
        assert_eq!(read_limited(body, 100).await.expect("read"), "abcde");
        assert_eq!(read_limited(frames(vec![]), 100).await.expect("read"), "");
    }

    #[tokio::test]
    async fn more_than_the_limit_is_a_length_limit_error() {
        let err = read_limited(frames(vec![data("abc"), data("def")]), 5)
            .await
            .expect_err("over the limit");
        assert!(err.is::<http_body_util::LengthLimitError>(), "{err}");
        assert_eq!(
            read_limited(frames(vec![data("abc"), data("de")]), 5)
                .await
                .expect("at the limit"),
            "abcde"
        );
    }
}
