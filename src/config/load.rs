//! Reading a config file: parse, fill in secrets, check. Syntax errors stop
//! at the first; every other problem is collected.

use std::path::Path;

use super::{Config, ConfigError, Problem, Purpose, DATABASE_URL_ENV};

impl Config {
    /// Reads, parses and checks a file for any command; every problem is reported.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (cfg, problems) = Config::read(path)?;
        cfg.checked(Some(path), problems, Purpose::Any)
    }

    /// Reads and parses a file and fills in its secrets, without checking the
    /// values: the problems so far come back beside it. Syntax errors and
    /// unknown keys stop here, one at a time.
    pub fn read(path: &Path) -> Result<(Config, Vec<Problem>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Config::parse_unchecked(&text, path)?;
        let problems = cfg.resolve_secrets();
        Ok((cfg, problems))
    }

    /// `Ok(self)` when neither `problems` nor the checks for `purpose` find
    /// anything; otherwise all of them. `run` and `check-config` both end here.
    pub fn checked(
        self,
        path: Option<&Path>,
        mut problems: Vec<Problem>,
        purpose: Purpose,
    ) -> Result<Config, ConfigError> {
        problems.extend(self.problems(purpose));
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError::Invalid {
                path: path.map(Path::to_path_buf),
                problems,
            })
        }
    }

    /// Fills `database.url` from `url_file` or the environment; the file wins
    /// over the config text and the environment wins over both.
    fn resolve_secrets(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let first_line =
            |file: &Path, key: &str, problems: &mut Vec<Problem>| match std::fs::read_to_string(
                file,
            ) {
                Ok(text) => Some(text.lines().next().unwrap_or("").trim().to_owned()),
                Err(e) => {
                    problems.push(Problem::new(
                        key,
                        format!("cannot read {}: {e}", file.display()),
                    ));
                    None
                }
            };
        if let Some(file) = self.database.url_file.clone() {
            if let Some(url) = first_line(&file, "database.url_file", &mut problems) {
                self.database.url = url;
            }
        }
        if let Some(file) = self.storage.s3.secret_access_key_file.clone() {
            let key = "storage.s3.secret_access_key_file";
            if let Some(secret) = first_line(&file, key, &mut problems) {
                self.storage.s3.secret_access_key = secret;
            }
        }
        if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
            if !url.is_empty() {
                self.database.url = url;
            }
        }
        let url_file_failed = problems.iter().any(|p| p.key == "database.url_file");
        if self.database.url.is_empty() && !url_file_failed {
            problems.push(Problem::new("database.url", "is empty"));
        }
        problems
    }

    /// Parses and checks config text (secrets are not read). `path` only
    /// names the source in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_unchecked(text, path)?.checked(Some(path), Vec::new(), Purpose::Any)
    }

    fn parse_unchecked(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}
