//! Problems found in a lab, each tied to a file and a line.
//!
//! The parser never stops at the first problem: every stage pushes what it finds into a
//! [`Diags`] list of positions and messages, and the file name is attached once at the end,
//! when the list becomes the public [`Problem`]s.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem in a lab, with the file and line it is about.
///
/// Displays as `labs/nginx/index.md:12: task "serve_page" needs "write_pagee", which is not a task`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line in `file`; 0 when the problem is about the whole file or directory
    /// (it cannot be read, it is too large, its directory name is not a valid slug).
    pub line: usize,
    /// 1-based column in characters, when known.
    pub column: Option<usize>,
    pub message: String,
}

impl Problem {
    /// A problem about a whole file or directory rather than one of its lines.
    pub fn whole_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Problem {
        Problem {
            file: file.into(),
            line: 0,
            column: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A position in the lab's `index.md` (not in the front matter or the body alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Pos {
    /// 1-based; 0 for the whole file.
    pub line: usize,
    /// 1-based, in characters.
    pub column: Option<usize>,
}

impl Pos {
    pub fn line(line: usize) -> Pos {
        Pos { line, column: None }
    }
}

/// The problems found so far in one file, without the file name.
#[derive(Debug, Default)]
pub(crate) struct Diags(Vec<(Pos, String)>);

impl Diags {
    pub fn push(&mut self, at: Pos, message: impl Into<String>) {
        self.0.push((at, message.into()));
    }

    pub fn extend(&mut self, other: Diags) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems in file order (stable: problems on one line keep the order found).
    pub fn into_problems(mut self, file: &Path) -> Vec<Problem> {
        self.0.sort_by_key(|(pos, _)| *pos);
        self.0
            .into_iter()
            .map(|(pos, message)| Problem {
                file: file.to_path_buf(),
                line: pos.line,
                column: pos.column,
                message,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_and_line() {
        let p = Problem {
            file: "labs/nginx/index.md".into(),
            line: 12,
            column: Some(12),
            message: "task \"serve_page\" needs \"write_pagee\", which is not a task".into(),
        };
        assert_eq!(
            p.to_string(),
            "labs/nginx/index.md:12: task \"serve_page\" needs \"write_pagee\", which is not a task"
        );
        let whole = Problem::whole_file("labs/x/index.md", "cannot be read");
        assert_eq!(whole.to_string(), "labs/x/index.md: cannot be read");
    }

    #[test]
    fn problems_come_out_in_line_order() {
        let mut d = Diags::default();
        d.push(Pos::line(9), "b");
        d.push(Pos::line(2), "a");
        d.push(Pos::line(9), "c");
        let lines: Vec<_> = d
            .into_problems(Path::new("f"))
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect();
        assert_eq!(
            lines,
            [(2, "a".into()), (9, "b".into()), (9, "c".into())] as [(usize, String); 3]
        );
    }
}
