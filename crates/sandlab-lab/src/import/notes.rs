//! What an import could not map, per source file.

use std::fmt::Write as _;

/// Notes grouped by source file (a path relative to the source directory), files in the
/// order first noted, notes in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes(Vec<(String, Vec<String>)>);

impl Notes {
    pub(crate) fn add(&mut self, file: &str, note: impl Into<String>) {
        let note = note.into();
        match self.0.iter_mut().find(|(f, _)| f == file) {
            Some((_, list)) => list.push(note),
            None => self.0.push((file.to_owned(), vec![note])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every note, as `(file, notes)`.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(f, n)| (f.as_str(), n.as_slice()))
    }

    /// The notes of `file`.
    pub fn of(&self, file: &str) -> &[String] {
        self.0
            .iter()
            .find(|(f, _)| f == file)
            .map_or(&[], |(_, n)| n.as_slice())
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|(_, n)| n.len()).sum()
    }

    /// `IMPORT_NOTES.md`: a heading per file, a bullet per note.
    pub fn to_markdown(&self, what: &str) -> String {
        let mut out = format!(
            "# Import notes\n\nImported from {what} by `sandlab lab import`. Every text and \
             check was kept; below, per source file, is what could not be mapped.\n"
        );
        if self.0.is_empty() {
            out.push_str("\nNothing: everything was mapped.\n");
        }
        for (file, notes) in &self.0 {
            let _ = write!(out, "\n## `{file}`\n\n");
            for note in notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}
