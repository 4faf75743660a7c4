//! The response future of the layers that decide before calling inner
//! ([`Route`](crate::route::Route), [`Alias`](crate::alias::Alias),
//! [`AutoRoute`](crate::autoroute::AutoRoute)): the inner service's own
//! future, an immediate refusal, or — when the layer had to read the request body itself
//! first (no parse layer in front) — a boxed future doing both.

use crate::BoxError;
use futures_util::future::BoxFuture;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project! {
    /// Either the inner service's future or an immediate error.
    pub struct ResponseFuture<F, T> {
        #[pin]
        kind: Kind<F, T>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T> {
        Called { #[pin] future: F },
        Refused { error: Option<BoxError> },
        Read { future: BoxFuture<'static, Result<T, BoxError>> },
    }
}

impl<F, T> ResponseFuture<F, T> {
    pub(crate) fn called(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Called { future },
        }
    }

    pub(crate) fn refused(error: impl Into<BoxError>) -> Self {
        ResponseFuture {
            kind: Kind::Refused {
                error: Some(error.into()),
            },
        }
    }

    pub(crate) fn read(future: BoxFuture<'static, Result<T, BoxError>>) -> Self {
        ResponseFuture {
            kind: Kind::Read { future },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx).map_err(Into::into),
            KindProj::Refused { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "polled after completion".into()))),
            KindProj::Read { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, T> std::fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}
