//! Byte offsets to 1-based line numbers, for every error and provenance that
//! names a `file:line` (documents, policies, inventories).

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> u32 {
    line_of_bytes(text.as_bytes(), offset)
}

/// Where a TOML syntax error in `text` is, and what to say of it. toml
/// says "duplicate key" without the key; the error's span holds it, so a
/// short one-line span is quoted.
pub fn toml_syntax_error(text: &str, e: &toml::de::Error) -> (usize, String) {
    let span = e.span().unwrap_or(0..0);
    let mut message = e.message().trim().to_string();
    if let Some(snippet) = text.get(span.clone())
        && !snippet.is_empty()
        && snippet.len() <= 64
        && !snippet.contains('\n')
    {
        message = format!("{message} {:?}", snippet.trim());
    }
    (span.start, message)
}

pub(crate) fn line_of_bytes(bytes: &[u8], offset: usize) -> u32 {
    let end = offset.min(bytes.len());
    let newlines = bytes[..end].iter().filter(|&&b| b == b'\n').count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Maps byte offsets to lines in O(log n), for parsers that report offsets.
#[derive(Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub fn line(&self, offset: usize) -> u32 {
        let idx = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(idx.max(1)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_matches_counting() {
        let text = "a\nbb\n\nccc";
        let idx = LineIndex::new(text);
        for off in 0..text.len() {
            assert_eq!(idx.line(off), line_of(text, off), "offset {off}");
        }
    }
}
