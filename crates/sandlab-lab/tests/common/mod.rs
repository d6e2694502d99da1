//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use sandlab_lab::{parse_index, Lab, Problem};

pub const PATH: &str = "labs/lab/index.md";

/// The image store of these tests: only `debian`, `alpine` and `kubernetes` exist.
pub fn images(name: &str) -> bool {
    matches!(name, "debian" | "alpine" | "kubernetes")
}

pub fn parse(text: &str) -> Result<Lab, Vec<Problem>> {
    parse_index("lab", text, Path::new(PATH), Some(&images))
}

/// Parses `text`, which must be valid.
pub fn lab(text: &str) -> Lab {
    match parse(text) {
        Ok(lab) => lab,
        Err(problems) => panic!("unexpected problems:\n{}", lines(&problems).join("\n")),
    }
}

/// Parses `text`, which must be invalid, and returns its problems as displayed.
pub fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("parsed without problems:\n{text}"),
        Err(problems) => lines(&problems),
    }
}

pub fn lines(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

/// The 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    nth_line_of(text, needle, 1)
}

/// The 1-based line of the `n`-th line of `text` containing `needle`.
pub fn nth_line_of(text: &str, needle: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} (#{n}) not in:\n{text}"))
}

/// `labs/lab/index.md:LINE: MESSAGE`.
pub fn at(line: usize, message: &str) -> String {
    format!("{PATH}:{line}: {message}")
}

/// A minimal valid front matter with `tasks` appended.
pub fn with_tasks(tasks: &str) -> String {
    format!("---\ntitle: T\ntasks:\n{tasks}---\nBody.\n")
}
