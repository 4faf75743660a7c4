//! The request log: one JSON object per line per finished request ([`RequestSummary`]).
//!
//! A line is written whole with one `write_all` under a lock, so lines from concurrent
//! requests never interleave. What a line may hold is fixed by [`RequestSummary`]'s fields: a
//! key appears by its label only, and nothing from the request's headers (where the keys are)
//! or from the provider configuration (where the upstream keys are) is ever part of it.

use super::RequestSummary;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

/// Where request log lines go.
pub struct RequestLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestLog(..)")
    }
}

impl RequestLog {
    /// Lines to standard output (the process's own log lines go to standard error).
    pub fn stdout() -> RequestLog {
        RequestLog::to_writer(io::stdout())
    }

    /// Lines appended to `path`, created if missing.
    pub fn append_to(path: &Path) -> io::Result<RequestLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RequestLog::to_writer(file))
    }

    /// Lines to any writer (a test's buffer, a pipe).
    pub fn to_writer(w: impl Write + Send + 'static) -> RequestLog {
        RequestLog {
            out: Mutex::new(Box::new(w)),
        }
    }

    /// Writes `summary` as one line. A failed write is dropped, not retried: the request it
    /// describes has already been answered.
    pub fn write(&self, summary: &RequestSummary) {
        let Ok(mut line) = serde_json::to_vec(summary) else {
            return;
        };
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(&line).and_then(|()| out.flush());
    }
}
