//! Languages for code execution are data: one TOML file per language (image, file name,
//! compile and run commands, Judge0 ids, the least memory it needs, sample programs). The
//! repository's `languages/*.toml` are built in (listed by build.rs); a directory given in
//! the configuration adds to them or replaces one by name. `docs/languages.md` lists them.

use std::collections::BTreeMap;
use std::path::Path;

use sandlab_core::ByteSize;
use serde::Deserialize;

// `BUILT_IN: &[(file name, text)]`, every file of the repository's `languages/`.
include!(concat!(env!("OUT_DIR"), "/languages.rs"));

/// Largest language file read, in bytes.
const MAX_FILE: usize = 64 * 1024;

/// One language as written in its file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// `[a-z0-9+#_.-]{1,32}`; Piston's name for it where Piston has one.
    pub name: String,
    /// The name people read (`C++`); default the name.
    #[serde(default)]
    pub display: Option<String>,
    /// The version the image ships (`12.2.0`).
    pub version: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub image: String,
    /// The entry file's name when the request does not name its first file.
    pub file: String,
    /// Runs first when present; its failure stops the run. `{file}` is the entry file,
    /// `{files}` every file (one item each).
    #[serde(default)]
    pub compile: Option<Vec<String>>,
    /// `{file}` becomes the entry file, `{files}` every file, `{args}` the arguments.
    pub run: Vec<String>,
    /// Extra environment of both steps.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Judge0 CE language ids this language answers to; the first is the one listed.
    #[serde(default)]
    pub judge0: Vec<u32>,
    /// The least memory a sandbox of this language gets (`512M`): a smaller request is
    /// raised to it.
    #[serde(default)]
    pub memory: Option<String>,
    /// The least process count a sandbox of this language gets.
    #[serde(default)]
    pub pids: Option<u32>,
    /// Default wall-clock and CPU time of the compile step (10000 each when unset).
    #[serde(default)]
    pub compile_wall_ms: Option<u64>,
    #[serde(default)]
    pub compile_cpu_ms: Option<u64>,
    /// Programs the test suite runs for every language.
    #[serde(default)]
    pub samples: Samples,
}

/// Sample programs: what `hello` prints is `hello, world\n`; `stdin` echoes one line;
/// `runtime_error` fails at run time; `compile_error` fails to compile; `timeout` loops
/// forever; `memory` allocates well over 1 GiB.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Samples {
    pub hello: Option<String>,
    pub stdin: Option<String>,
    pub runtime_error: Option<String>,
    pub compile_error: Option<String>,
    pub timeout: Option<String>,
    pub memory: Option<String>,
}

impl Language {
    /// The name people read.
    pub fn display_name(&self) -> &str {
        self.display.as_deref().unwrap_or(&self.name)
    }

    /// The least memory its sandbox gets, if it says.
    pub fn min_memory(&self) -> Option<ByteSize> {
        self.memory
            .as_deref()
            .and_then(|m| sandlab_core::parse_size(m).ok())
            .map(ByteSize)
    }

    /// Whether `name` is its name or one of its aliases.
    pub fn is_called(&self, name: &str) -> bool {
        self.name == name || self.aliases.iter().any(|a| a == name)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+#_.-".contains(&b))
}

fn valid_env_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && !k.as_bytes()[0].is_ascii_digit()
        && k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn parse(file: &str, text: &str) -> Result<Language, String> {
    let lang: Language = toml::from_str(text).map_err(|e| format!("{file}: {}", e.message()))?;
    if !valid_name(&lang.name) || !lang.aliases.iter().all(|a| valid_name(a)) {
        return Err(format!(
            "{file}: a name or alias is not 1 to 32 of a-z, 0-9, '+', '#', '_', '.', '-'"
        ));
    }
    if lang.version.is_empty()
        || lang.version.len() > 64
        || lang
            .version
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{file}: `version` must be 1 to 64 characters without spaces"
        ));
    }
    if lang.run.is_empty() || lang.compile.as_ref().is_some_and(Vec::is_empty) {
        return Err(format!("{file}: `run` and `compile` must name a program"));
    }
    if !crate::code_exec::valid_file_name(&lang.file) {
        return Err(format!("{file}: `file` is not a plain file name"));
    }
    if sandlab_image::validate_name(&lang.image).is_err() {
        return Err(format!("{file}: `image` is not a valid image name"));
    }
    if let Some((k, _)) = lang
        .env
        .iter()
        .find(|(k, v)| !valid_env_key(k) || v.contains('\0') || v.len() > 4096)
    {
        return Err(format!(
            "{file}: the environment variable {k:?} needs an upper-case name and a value without NUL"
        ));
    }
    if let Some(m) = &lang.memory {
        match sandlab_core::parse_size(m) {
            Ok(b) if (16 << 20..=4 << 30).contains(&b) => {}
            _ => return Err(format!("{file}: `memory` must be a size from 16M to 4G")),
        }
    }
    if lang.pids.is_some_and(|p| !(8..=1024).contains(&p)) {
        return Err(format!("{file}: `pids` must be from 8 to 1024"));
    }
    if [lang.compile_wall_ms, lang.compile_cpu_ms]
        .iter()
        .flatten()
        .any(|ms| !(1..=120_000).contains(ms))
    {
        return Err(format!(
            "{file}: `compile_wall_ms` and `compile_cpu_ms` must be from 1 to 120000"
        ));
    }
    if lang.judge0.contains(&0) {
        return Err(format!("{file}: Judge0 ids start at 1"));
    }
    Ok(lang)
}

/// Whether the requested `want` names version `have`: empty, `*`, `x` or the exact
/// version, or a prefix of it that ends at a dot (`3` and `3.11` name `3.11.2`, `3.1`
/// does not), with a trailing `.x` or `.*` ignored.
pub fn version_matches(want: &str, have: &str) -> bool {
    let mut want = want.trim();
    while let Some(w) = want
        .strip_suffix(".x")
        .or_else(|| want.strip_suffix(".*"))
        .or_else(|| want.strip_suffix(".X"))
    {
        want = w;
    }
    if want.is_empty() || want == "*" || want == "x" || want == "X" || want == have {
        return true;
    }
    have.strip_prefix(want)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-') || rest.starts_with('+'))
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
                Ok(text) if text.len() <= MAX_FILE => match parse(&shown, &text) {
                    Ok(l) => langs.insert(l),
                    Err(e) => problems.push(e),
                },
                Ok(_) => problems.push(format!("{shown}: larger than 64 KiB")),
                Err(e) => problems.push(format!("{shown}: {e}")),
            }
        }
        (langs, problems)
    }

    /// Adds `lang`, replacing the one of the same name; a Judge0 id it claims leaves any
    /// other language.
    fn insert(&mut self, lang: Language) {
        for other in self.by_name.values_mut() {
            other.judge0.retain(|id| !lang.judge0.contains(id));
        }
        self.by_name.insert(lang.name.clone(), lang);
    }

    /// The language called `name` (or one of its aliases), in `version` when given (see
    /// [`version_matches`]).
    pub fn find(&self, name: &str, version: Option<&str>) -> Option<&Language> {
        let lang = self.by_name.values().find(|l| l.is_called(name))?;
        match version {
            None => Some(lang),
            Some(v) if version_matches(v, &lang.version) => Some(lang),
            Some(_) => None,
        }
    }

    /// The language Judge0 CE calls `id`.
    pub fn by_judge0(&self, id: u32) -> Option<&Language> {
        self.by_name.values().find(|l| l.judge0.contains(&id))
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
        assert!(langs.find("python", Some("3")).is_some());
        assert!(langs.find("python", Some("2")).is_none());
        assert!(langs.find("no-such-language", None).is_none());
        assert!(langs.find("c", None).unwrap().compile.is_some());
    }

    #[test]
    fn versions_match_at_dots() {
        for (want, have) in [
            ("*", "3.11.2"),
            ("", "3.11.2"),
            ("3", "3.11.2"),
            ("3.11", "3.11.2"),
            ("3.x", "3.11.2"),
            ("3.11.*", "3.11.2"),
            ("3.11.2", "3.11.2"),
        ] {
            assert!(version_matches(want, have), "{want} {have}");
        }
        for (want, have) in [("3.1", "3.11.2"), ("2", "3.11.2"), ("3.11.2.1", "3.11.2")] {
            assert!(!version_matches(want, have), "{want} {have}");
        }
    }

    #[test]
    fn a_directory_adds_and_bad_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ruby.toml"),
            "name='ruby2'\nversion='3'\nimage='ruby'\nfile='main.rb'\nrun=['ruby','{file}']\njudge0=[71]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.toml"), "name='x'\nrun=[]\n").unwrap();
        std::fs::write(
            dir.path().join("evil.toml"),
            "name='x'\nversion='1'\nimage='i'\nfile='../x'\nrun=['a']\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("env.toml"),
            "name='y'\nversion='1'\nimage='i'\nfile='a'\nrun=['a']\nenv={'LD_PRELOAD x'='1'}\n",
        )
        .unwrap();
        let (langs, problems) = Languages::load(Some(dir.path()));
        assert!(langs.find("ruby2", None).is_some());
        // The operator's file took Judge0's id 71 from the built-in python.
        assert_eq!(langs.by_judge0(71).unwrap().name, "ruby2");
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
