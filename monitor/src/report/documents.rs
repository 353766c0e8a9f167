//! The vendor documents the HTML page quotes. The policy keeps only each
//! rule's `doc:line`, not the document text (the project does not carry the
//! vendors' prose), so the text comes from the directories given with
//! `--docs`, looked up by the document's name as the policy records it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use crate::policy::Document;

/// Text of the documents found, by name.
#[derive(Debug, Default)]
pub struct Documents {
    texts: BTreeMap<String, Vec<String>>,
    /// Why a cited document has no text in the page (not found, unreadable).
    pub missing: BTreeMap<String, String>,
}

impl Documents {
    /// Reads the documents `names` from the first of `dirs` that has each.
    /// A name that is not a plain file name (it comes from an events file,
    /// which anyone could have edited) is never joined to a directory.
    pub fn load<'a>(names: impl IntoIterator<Item = &'a str>, dirs: &[PathBuf]) -> Self {
        let mut docs = Documents::default();
        if dirs.is_empty() {
            return docs;
        }
        let names: BTreeSet<&str> = names.into_iter().collect();
        for name in names {
            if !is_plain_file_name(name) {
                docs.missing
                    .insert(name.to_string(), "not a plain file name".into());
                continue;
            }
            let Some(path) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) else {
                docs.missing.insert(
                    name.to_string(),
                    format!(
                        "not found in {}",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            match Document::read(&path) {
                Ok(doc) => {
                    docs.texts.insert(
                        name.to_string(),
                        doc.text.lines().map(str::to_string).collect(),
                    );
                }
                Err(e) => {
                    docs.missing.insert(name.to_string(), e.to_string());
                }
            }
        }
        docs
    }

    /// Lines `line - context ..= line + context` (1-based) of `doc`, with
    /// their numbers; `None` when the text is not available.
    pub fn excerpt(&self, doc: &str, line: u32, context: u32) -> Option<Vec<(u32, &str)>> {
        let text = self.texts.get(doc)?;
        let first = line.saturating_sub(context).max(1);
        let last = line.saturating_add(context);
        Some(
            (first..=last)
                .filter_map(|n| text.get(n as usize - 1).map(|l| (n, l.as_str())))
                .collect(),
        )
    }

    pub fn lines(&self, doc: &str) -> Option<usize> {
        self.texts.get(doc).map(Vec::len)
    }
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name).file_name().is_some_and(|f| f == name)
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_with_context_clipped_to_the_document() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("v.md"), "one\ntwo\nthree\nfour\n").unwrap();
        let docs = Documents::load(["v.md", "gone.md"], &[dir.path().to_path_buf()]);
        assert_eq!(
            docs.excerpt("v.md", 1, 2).unwrap(),
            [(1, "one"), (2, "two"), (3, "three")]
        );
        assert_eq!(
            docs.excerpt("v.md", 4, 1).unwrap(),
            [(3, "three"), (4, "four")]
        );
        assert_eq!(docs.excerpt("v.md", 9, 1).unwrap(), []);
        assert!(docs.excerpt("gone.md", 1, 1).is_none());
        assert!(docs.missing["gone.md"].contains("not found in"));
        assert_eq!(docs.lines("v.md"), Some(4));
    }

    #[test]
    fn names_from_events_never_leave_the_directories() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("docs");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(dir.path().join("secret"), "x\n").unwrap();
        let docs = Documents::load(["../secret", "/etc/passwd", ".."], &[inner]);
        for name in ["../secret", "/etc/passwd", ".."] {
            assert!(docs.excerpt(name, 1, 0).is_none(), "{name}");
            assert_eq!(docs.missing[name], "not a plain file name");
        }
    }

    #[test]
    fn without_directories_nothing_is_read_or_missing() {
        let docs = Documents::load(["a.md"], &[]);
        assert!(docs.missing.is_empty());
        assert!(docs.excerpt("a.md", 1, 1).is_none());
    }
}
