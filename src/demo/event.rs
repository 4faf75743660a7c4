//! One event of a simulated stream and its pacing: what each wire format's writer
//! (`openai`, `anthropic`, `gemini`) produces and the simulated provider (`sim`) sends.

use bytes::Bytes;

/// One SSE event of a simulated stream and when it is due.
#[derive(Debug, Clone)]
pub(super) struct Event {
    bytes: Bytes,
    pace: Pace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pace {
    /// After the time to first token.
    Head,
    /// One token's time after the previous event.
    Token,
    /// Right after the previous event.
    Tail,
}

impl Event {
    pub(super) fn head(bytes: Bytes) -> Event {
        Event {
            bytes,
            pace: Pace::Head,
        }
    }
    pub(super) fn token(bytes: Bytes) -> Event {
        Event {
            bytes,
            pace: Pace::Token,
        }
    }
    pub(super) fn tail(bytes: Bytes) -> Event {
        Event {
            bytes,
            pace: Pace::Tail,
        }
    }
    pub(super) fn pace(&self) -> Pace {
        self.pace
    }
    pub(super) fn into_bytes(self) -> Bytes {
        self.bytes
    }
}
