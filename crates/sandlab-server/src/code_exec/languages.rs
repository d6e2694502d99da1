//! Languages for code execution are data: one TOML file per language (image, file name,
//! compile and run commands). The defaults in the repository's `languages/` are built in;
//! a directory given in the configuration adds to them or replaces one by name.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// One language as written in its file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// `[a-z0-9+#_-]{1,32}`.
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub image: String,
    /// The entry file's name when the request does not name its first file.
    pub file: String,
    /// Runs first when present; its failure stops the run.
    #[serde(default)]
    pub compile: Option<Vec<String>>,
    /// `{file}` becomes the entry file, `{args}` the request's arguments.
    pub run: Vec<String>,
}

const BUILT_IN: &[(&str, &str)] = &[
    (
        "python.toml",
        include_str!("../../../../languages/python.toml"),
    ),
    ("bash.toml", include_str!("../../../../languages/bash.toml")),
    ("perl.toml", include_str!("../../../../languages/perl.toml")),
    ("c.toml", include_str!("../../../../languages/c.toml")),
];

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+#_-".contains(&b))
}

fn parse(file: &str, text: &str) -> Result<Language, String> {
    let lang: Language = toml::from_str(text).map_err(|e| format!("{file}: {}", e.message()))?;
    if !valid_name(&lang.name) || !lang.aliases.iter().all(|a| valid_name(a)) {
        return Err(format!(
            "{file}: a name or alias is not 1 to 32 of a-z, 0-9, '+', '#', '_', '-'"
        ));
    }
    if lang.run.is_empty() || lang.compile.as_ref().is_some_and(Vec::is_empty) {
        return Err(format!("{file}: `run` and `compile` must name a program"));
    }
    if !crate::code_exec::valid_file_name(&lang.file) {
        return Err(format!("{file}: `file` is not a plain file name"));
    }
    Ok(lang)
}

/// The languages a server offers, by name.
#[derive(Debug, Clone, Default)]
pub struct Languages {
    by_name: BTreeMap<String, Language>,
}

impl Languages {
    /// The built-in languages plus those in `dir` (when given and present); a file with a
    /// problem is reported and skipped.
    pub fn load(dir: Option<&Path>) -> (Languages, Vec<String>) {
        let mut langs = Languages::default();
        let mut problems = Vec::new();
        for (file, text) in BUILT_IN {
            match parse(file, text) {
                Ok(l) => langs.insert(l),
                Err(e) => problems.push(e),
            }
        }
        let Some(dir) = dir else {
            return (langs, problems);
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return (langs, problems);
        };
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let shown = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) if text.len() <= 64 * 1024 => match parse(&shown, &text) {
                    Ok(l) => langs.insert(l),
                    Err(e) => problems.push(e),
                },
                Ok(_) => problems.push(format!("{shown}: larger than 64 KiB")),
                Err(e) => problems.push(format!("{shown}: {e}")),
            }
        }
        (langs, problems)
    }

    fn insert(&mut self, lang: Language) {
        self.by_name.insert(lang.name.clone(), lang);
    }

    /// The language called `name` (or one of its aliases), in `version` when given
    /// (`*` or a prefix of the language's version matches).
    pub fn find(&self, name: &str, version: Option<&str>) -> Option<&Language> {
        let lang = self
            .by_name
            .values()
            .find(|l| l.name == name || l.aliases.iter().any(|a| a == name))?;
        match version {
            None | Some("*") | Some("") => Some(lang),
            Some(v) if lang.version.starts_with(v) || v.starts_with(&lang.version) => Some(lang),
            Some(_) => None,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Language> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_parse_and_resolve() {
        let (langs, problems) = Languages::load(None);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(langs.find("py", None).unwrap().name, "python");
        assert_eq!(langs.find("python", Some("3")).unwrap().version, "3");
        assert!(langs.find("python", Some("2")).is_none());
        assert!(langs.find("cobol", None).is_none());
        assert!(langs.find("c", None).unwrap().compile.is_some());
    }

    #[test]
    fn a_directory_adds_and_bad_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ruby.toml"),
            "name='ruby'\nversion='3'\nimage='ruby'\nfile='main.rb'\nrun=['ruby','{file}']\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.toml"), "name='x'\nrun=[]\n").unwrap();
        std::fs::write(
            dir.path().join("evil.toml"),
            "name='x'\nversion='1'\nimage='i'\nfile='../x'\nrun=['a']\n",
        )
        .unwrap();
        let (langs, problems) = Languages::load(Some(dir.path()));
        assert!(langs.find("ruby", None).is_some());
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
