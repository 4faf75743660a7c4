//! The accept loop: HTTP/1 and HTTP/2 connections with header limits and slow-client
//! deadlines, completions straight to their stacks, and the graceful stop.

use super::{Gateway, Repoll, direct};
use crate::context::ApiKind;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// After the grace, how long ended requests get to write their last bytes.
const LAST_WRITES: Duration = Duration::from_secs(5);

impl Gateway {
    /// Serves on `listener` until `shutdown` resolves: then stops accepting, lets in-flight
    /// requests (streams included) finish for at most `[server].shutdown_grace_ms`, ends the
    /// rest (a 503; a stream gets a final error event, its generation recorded as cancelled)
    /// and flushes the ledger. Connections get the default [`ServerLimits`].
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with_limits(listener, shutdown, ServerLimits::default())
            .await
    }

    /// As [`Gateway::serve`], with explicit connection limits (header size, slow clients).
    pub async fn serve_with_limits(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        limits: ServerLimits,
    ) -> std::io::Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;

        let grace = Duration::from_millis(self.config.server.shutdown_grace_ms);
        self.watch_config();
        self.start_shared_state();
        let ledger = self.ledger.clone();
        let keys = self.keys.clone();
        // Completions skip the router (see `direct`); everything else goes through it.
        let direct = direct::Direct {
            router: self.router(),
            chat: self.completion_stack(ApiKind::Chat, self.upstream.clone()),
            completions: self.completion_stack(ApiKind::Completions, self.upstream.clone()),
        };
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                direct.call(req)
            });
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        let builder = Arc::new(builder);
        // Dropped at shutdown: every connection then finishes gracefully.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
        // Each connection holds a clone; `closed()` resolves when the last one is gone.
        let (done_tx, done_rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (tcp, _) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let builder = builder.clone();
            let service = service.clone();
            let mut stop = stop_rx.clone();
            let done = done_tx.clone();
            let first_byte_within = limits.header_read_timeout;
            // `Repoll`: hyper wakes this task while it runs whenever the body is read.
            tokio::spawn(Repoll::new(async move {
                // A client that connects and sends nothing is dropped at the header deadline
                // (hyper's own deadline only starts once the protocol is known).
                let mut probe = [0u8; 1];
                match tokio::time::timeout(first_byte_within, tcp.peek(&mut probe)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                }
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                drop(done);
            }));
        }
        drop(listener);
        drop(stop_tx);
        drop(done_tx);
        let mut done_rx = done_rx;
        if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
            tracing::warn!(
                "requests still in flight after the {} ms grace; ending them",
                grace.as_millis()
            );
            self.drain.end_now();
            // Each ended request writes its 503 or last stream event, then its connection
            // closes; a client that stops reading does not hold the exit up for long.
            if tokio::time::timeout(LAST_WRITES, done_rx.recv())
                .await
                .is_err()
            {
                tracing::warn!("connections still open after ending their requests; exiting");
            }
        }
        // Everything the ledger acknowledged reaches the disk before the process exits, and
        // the keys' spend waiting in memory its store.
        ledger.flush();
        if let Some(keys) = keys {
            keys.flush();
        }
        Ok(())
    }
}

/// Limits on client connections (slowloris and oversized headers).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Largest request head (request line and headers) in bytes; larger ones get 431. Default
    /// 64 KiB (at least 8 KiB is always accepted).
    pub max_header_bytes: usize,
    /// A client must send its complete request head within this time (default 15 s); slower
    /// ones, and keep-alive connections idle for longer, are closed.
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(15),
        }
    }
}
