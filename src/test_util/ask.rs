//! What a request asks the fake for: its fault (from the scenario) and the parts of its body
//! the answers use.

use super::fake::OK_TEXT;

/// Where a stream fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum At {
    /// After the role chunk, before any content.
    Before,
    /// After the first content chunk.
    After,
}

/// A fault of the table in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    Cut,
    Reset,
    Stall,
    NoDone,
    Malformed,
    ErrChunk,
    ErrKeyChunk,
}

pub(super) fn parse_fault(scenario: &str) -> Option<(Fault, At)> {
    if scenario == "nodone" {
        return Some((Fault::NoDone, At::After));
    }
    let (name, at) = if let Some(n) = scenario.strip_suffix("before") {
        (n, At::Before)
    } else {
        (scenario.strip_suffix("after")?, At::After)
    };
    let fault = match name {
        "cut" => Fault::Cut,
        "reset" => Fault::Reset,
        "stall" => Fault::Stall,
        "nodone" => Fault::NoDone,
        "malformed" => Fault::Malformed,
        "errchunk" => Fault::ErrChunk,
        "errkeychunk" => Fault::ErrKeyChunk,
        _ => return None,
    };
    Some((fault, at))
}

/// What a request asked for, as far as the fake cares.
pub(super) struct Ask {
    pub(super) stream: bool,
    pub(super) model: String,
    pub(super) legacy: bool,
    /// `x_echo` from the body, appended to the answer text (soak tests match answers to requests).
    pub(super) echo: Option<String>,
    /// The `Authorization` header received (for the key-echo scenarios).
    pub(super) auth: String,
    /// An embeddings request: how many inputs it sent.
    pub(super) embeddings: Option<usize>,
    /// The first tool the request offers, unless its last message is already a tool result
    /// (for the `toolcall` scenario).
    pub(super) tool: Option<String>,
}

impl Ask {
    pub(super) fn text(&self) -> String {
        match &self.echo {
            Some(e) => format!("{OK_TEXT} [{e}]"),
            None => OK_TEXT.to_owned(),
        }
    }
}
