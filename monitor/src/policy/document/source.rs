//! Reading a vendor document: bounded in size, checked to be text, and named
//! by a stable name so that provenance does not depend on where it was read.

use std::{
    fs::File,
    io::Read as _,
    path::{Path, PathBuf},
};

use crate::policy::{error::CompileError, lines::line_of_bytes};

/// Port documents are a few kilobytes; anything this large is a mistake (a
/// log, an archive) and parsing it would only waste memory and time.
pub const MAX_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;

/// A document ready to be compiled.
#[derive(Debug, Clone)]
pub struct Document {
    /// The stable name used in `doc:line` (the file name).
    pub name: String,
    pub text: String,
}

impl Document {
    /// Reads `path`, refusing files over [`MAX_DOCUMENT_BYTES`] without
    /// reading them whole (the limit holds for pipes and devices too).
    pub fn read(path: &Path) -> Result<Document, CompileError> {
        let read_err = |source| CompileError::Read {
            path: PathBuf::from(path),
            source,
        };
        let name = stable_name(path);
        let file = File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            let size = std::fs::metadata(path)
                .map(|m| m.len())
                .unwrap_or(bytes.len() as u64);
            return Err(CompileError::TooLarge {
                name,
                size: size.max(bytes.len() as u64),
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        Document::from_bytes(name, bytes)
    }

    /// Checks that `bytes` are a text document; `name` is used as is.
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Document, CompileError> {
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(CompileError::TooLarge {
                name,
                size: bytes.len() as u64,
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(CompileError::Empty { name });
        }
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            let line = line_of_bytes(&bytes, nul);
            return Err(CompileError::Binary { name, line });
        }
        match String::from_utf8(bytes) {
            Ok(mut text) => {
                // Editors on Windows start files with a byte-order mark; it
                // would glue itself to the first heading or cell.
                if let Some(rest) = text.strip_prefix('\u{feff}') {
                    text = rest.to_string();
                }
                // Windows line endings would otherwise leave `\r` in cells.
                if text.contains('\r') {
                    text = text.replace("\r\n", "\n").replace('\r', "\n");
                }
                Ok(Document { name, text })
            }
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let line = line_of_bytes(e.as_bytes(), offset);
                Err(CompileError::NotUtf8 { name, line, offset })
            }
        }
    }

    pub fn lines(&self) -> u32 {
        u32::try_from(self.text.lines().count()).unwrap_or(u32::MAX)
    }
}

/// The file name, so that the same document compiles to the same policy on
/// every machine and from every working directory.
pub fn stable_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bom_and_crlf() {
        let doc =
            Document::from_bytes("w.md".into(), b"\xef\xbb\xbf# T\r\n|a|\r\n".to_vec()).unwrap();
        assert_eq!(doc.text, "# T\n|a|\n");
    }

    #[test]
    fn rejects_binary_empty_and_bad_utf8() {
        assert!(matches!(
            Document::from_bytes("e".into(), b" \n ".to_vec()),
            Err(CompileError::Empty { .. })
        ));
        assert!(matches!(
            Document::from_bytes("b".into(), b"a\nb\0c".to_vec()),
            Err(CompileError::Binary { line: 2, .. })
        ));
        assert!(matches!(
            Document::from_bytes("u".into(), b"ok\n\xff".to_vec()),
            Err(CompileError::NotUtf8 { line: 2, .. })
        ));
    }
}
