//! What an import could not map, per source file.

use std::fmt::Write as _;

/// What a note of [`Notes::dropped`] starts with.
pub const DROPPED: &str = "dropped: ";

/// Notes grouped by source file (a path relative to the source directory), files in the
/// order first noted, notes in the order found. A note that says something of the source
/// is not in the lab (a script, a check, a text, a tab, a file) starts with [`DROPPED`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    files: Vec<(String, Vec<String>)>,
    dropped: usize,
}

impl Notes {
    pub(crate) fn add(&mut self, file: &str, note: impl Into<String>) {
        let note = note.into();
        match self.files.iter_mut().find(|(f, _)| f == file) {
            Some((_, list)) => list.push(note),
            None => self.files.push((file.to_owned(), vec![note])),
        }
    }

    /// Notes that something of the source is left out of the lab: `what` says what and
    /// why.
    pub(crate) fn dropped(&mut self, file: &str, what: impl AsRef<str>) {
        self.add(file, format!("{DROPPED}{}", what.as_ref()));
        self.dropped += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Every note, as `(file, notes)`.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.files.iter().map(|(f, n)| (f.as_str(), n.as_slice()))
    }

    /// The notes of `file`.
    pub fn of(&self, file: &str) -> &[String] {
        self.files
            .iter()
            .find(|(f, _)| f == file)
            .map_or(&[], |(_, n)| n.as_slice())
    }

    pub fn len(&self) -> usize {
        self.files.iter().map(|(_, n)| n.len()).sum()
    }

    /// How many notes say that something was dropped.
    pub fn dropped_count(&self) -> usize {
        self.dropped
    }

    /// `IMPORT_NOTES.md`: what the import dropped, then a heading per file, a bullet per
    /// note.
    pub fn to_markdown(&self, what: &str) -> String {
        let mut out = format!("# Import notes\n\nImported from {what} by `sandlab lab import`. ");
        match self.dropped {
            0 => out.push_str(
                "Nothing was dropped: every text, script, check, tab and file of the source \
                 is in the lab. ",
            ),
            n => {
                let _ = write!(
                    out,
                    "**Not everything is in the lab:** {n} note{s} below start{verb} with \
                     \"dropped:\" and say{verb} what was left out and why. ",
                    s = if n == 1 { "" } else { "s" },
                    verb = if n == 1 { "s" } else { "" },
                );
            }
        }
        out.push_str(
            "Below, per source file, is what was mapped differently and what was not mapped.\n",
        );
        if self.files.is_empty() {
            out.push_str("\nNothing: everything was mapped.\n");
        }
        for (file, notes) in &self.files {
            let _ = write!(out, "\n## `{file}`\n\n");
            for note in notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_says_whether_something_was_dropped() {
        let mut notes = Notes::default();
        notes.add("index.json", "difficulty: not mapped");
        let md = notes.to_markdown("x");
        assert!(md.contains("Nothing was dropped"), "{md}");
        notes.dropped("step1/verify.sh", "it holds only comments");
        notes.dropped("index.json", "the answer of step 2");
        let md = notes.to_markdown("x");
        assert!(!md.contains("Nothing was dropped"), "{md}");
        assert!(
            md.contains("**Not everything is in the lab:** 2 notes below start with"),
            "{md}"
        );
        assert!(md.contains("- dropped: it holds only comments\n"), "{md}");
        assert_eq!((notes.len(), notes.dropped_count()), (3, 2));
    }
}
