//! Splitting a config file into its `[[models]]` entries, so each can be parsed on its own.
//!
//! `toml` builds a tree of the whole document before deserialising it: for a file of 10,000
//! models (1.8 MB) that is ≈ 35 MB of B-tree nodes and a 17 MB event buffer, freed right after
//! the parse but kept by glibc under the catalogue built next (and the freed buffer raises
//! glibc's trim threshold, so the heap is not trimmed either). That garbage was most of a large
//! gateway's idle RSS (`docs/performance.md`, finding 6). Parsed one entry at a time, the
//! garbage is a few kilobytes, reused by the next entry.
//!
//! The split is by lines: a line that is exactly `[[models]]` (outside multi-line strings)
//! starts an entry, and any other header line except `[models.…]` / `[[models.…]]` ends it;
//! everything else is the rest of the file. A split in an unusual place (a header-looking line
//! inside a multi-line array or inline table) leaves a piece that does not parse on its own;
//! the caller then parses the whole text, so results and errors are always those of the
//! whole-document parse.

/// A config file's text split into the `[[models]]` entries and everything else.
#[derive(Debug)]
pub(super) struct Sections<'a> {
    /// The text without the entries, in file order.
    pub(super) rest: String,
    /// Each `[[models]]` entry with its sub-tables, in file order.
    pub(super) entries: Vec<&'a str>,
}

/// Splits `text`; `None` when it has no `[[models]]` entry (nothing to gain).
pub(super) fn split(text: &str) -> Option<Sections<'_>> {
    let mut rest = String::new();
    let mut entries = Vec::new();
    let mut entry_start = None;
    let mut in_string = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if in_string.is_none() {
            let header = line.trim();
            let header = header.split_once('#').map_or(header, |(h, _)| h).trim_end();
            if header.starts_with('[') {
                let starts_entry = header == "[[models]]";
                let inside_entry =
                    header.starts_with("[models.") || header.starts_with("[[models.");
                if starts_entry || !inside_entry {
                    if let Some(start) = entry_start.take() {
                        entries.push(&text[start..pos]);
                    }
                    if starts_entry {
                        entry_start = Some(pos);
                    }
                }
            }
        }
        in_string = string_state_after(line, in_string);
        if entry_start.is_none() {
            rest.push_str(line);
        }
        pos += line.len();
    }
    if let Some(start) = entry_start {
        entries.push(&text[start..]);
    }
    (!entries.is_empty()).then_some(Sections { rest, entries })
}

/// Whether a multi-line string (`"""` or `'''`, the delimiter returned) is still open after
/// `line`, given the one open before it.
fn string_state_after(line: &str, mut open: Option<&'static str>) -> Option<&'static str> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(delim) = open {
            match find_close(bytes, i, delim.as_bytes()[0]) {
                Some(end) => {
                    open = None;
                    i = end;
                }
                None => return open,
            }
            continue;
        }
        match bytes[i] {
            b'#' => return None,
            q @ (b'"' | b'\'') => {
                if bytes[i..].starts_with(&[q, q, q]) {
                    open = Some(if q == b'"' { "\"\"\"" } else { "'''" });
                    i += 3;
                } else {
                    // A one-line string: skip to its closing quote.
                    i += 1;
                    while i < bytes.len() && bytes[i] != q {
                        i += if q == b'"' && bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    open
}

/// The index after the `"""` / `'''` closing a multi-line string from `from` on (up to two
/// more quotes belong to the content), if the line has one.
fn find_close(bytes: &[u8], mut i: usize, q: u8) -> Option<usize> {
    while i < bytes.len() {
        if q == b'"' && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(&[q, q, q]) {
            let mut end = i + 3;
            while end < bytes.len() && end < i + 5 && bytes[end] == q {
                end += 1;
            }
            return Some(end);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;

    #[test]
    fn splits_entries_with_their_sub_tables() {
        let text = "[server]\nlisten = \"x\"\n\n[[models]]\nslug = \"a/b\"\n[[models.endpoints]]\nprovider = \"p\"\n\n[auth]\nrequired = true\n[[models]] # two\nslug = \"c/d\"\n";
        let s = split(text).unwrap();
        assert_eq!(
            s.entries,
            [
                "[[models]]\nslug = \"a/b\"\n[[models.endpoints]]\nprovider = \"p\"\n\n",
                "[[models]] # two\nslug = \"c/d\"\n",
            ]
        );
        assert_eq!(
            s.rest,
            "[server]\nlisten = \"x\"\n\n[auth]\nrequired = true\n"
        );
        assert!(split("[server]\nlisten = \"x\"\n").is_none());
    }

    #[test]
    fn headers_inside_multi_line_strings_do_not_split() {
        let text = "[[models]]\nslug = \"a/b\"\ndescription = \"\"\"\n[auth]\n[[models]]\n\\\"\"\"\"\"\"\n[[models]]\ndescription = '''x\n[[models]]\n'''\nname = \"#\\\"[[models]]\"\n[auth]\n";
        let s = split(text).unwrap();
        assert_eq!(s.entries.len(), 2, "{:?}", s.entries);
        assert!(s.entries[0].ends_with("\"\"\"\"\"\n"), "{:?}", s.entries);
        assert_eq!(s.rest, "[auth]\n");
    }
}
