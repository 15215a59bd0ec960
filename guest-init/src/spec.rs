//! The spec file (`/rinit.spec` in the initramfs, `rinit.spec=PATH`, or the fw_cfg file
//! `opt/rinit/spec` from QEMU's `-fw_cfg`): what the kernel command line cannot carry well, such as
//! argv words with spaces or quotes, and many variables.
//!
//! One setting per line, `KEY VALUE`: the key, one space, and the value up to the end of the line.
//! Keys are those of the command-line table in [`crate::config`] without the `rinit.` prefix, plus
//! `arg` (one workload argv word per line, in order). A flag is a key alone on its line. Empty lines
//! and lines starting with `#` are skipped. In values, `\n`, `\t` and `\\` stand for a newline, a tab
//! and a backslash; any other backslash sequence is an error. Settings on the command line are
//! applied after the file and win; a command-line argv replaces the file's.
//!
//! ```text
//! # run a shell snippet as user 1000
//! arg /bin/sh
//! arg -c
//! arg printf '%s\n' "$GREETING" > /out/log
//! env GREETING=hello,  world
//! uid 1000
//! cwd /home/user
//! ```

use crate::config::Config;
use crate::error::{Error, Result};

/// Largest spec file accepted.
pub const MAX_SIZE: usize = 1024 * 1024;

/// Undoes the `\n`, `\t`, `\\` escapes of a value.
fn unescape(value: &str, line: usize) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            other => {
                let seq = other
                    .map(|c| format!("\\{c}"))
                    .unwrap_or_else(|| "\\ at end of line".into());
                return Err(Error::msg(format!(
                    "spec line {line}: unknown escape {seq}"
                )));
            }
        }
    }
    Ok(out)
}

/// Applies the spec `text` to `cfg`.
pub fn apply(text: &str, cfg: &mut Config) -> Result<()> {
    if text.len() > MAX_SIZE {
        return Err(Error::msg(format!(
            "spec file is {} bytes, the limit is {MAX_SIZE}",
            text.len()
        )));
    }
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(' ') {
            Some((key, value)) => (key, Some(unescape(value, n)?)),
            None => (line, None),
        };
        if key == "spec" {
            return Err(Error::msg(format!(
                "spec line {n}: `spec` is only valid on the command line"
            )));
        }
        if key.is_empty() || key.starts_with("rinit.") {
            return Err(Error::msg(format!(
                "spec line {n}: write the key without `rinit.` and with no leading space"
            )));
        }
        let before = cfg.warnings.len();
        cfg.set(key, value.as_deref())
            .map_err(|e| Error::msg(format!("spec line {n}: {e}")))?;
        for w in &mut cfg.warnings[before..] {
            *w = format!("spec line {n}: {w}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_with_spaces_and_escapes() {
        let mut cfg = Config::default();
        let text = "# comment\n\narg /bin/sh\narg -c\narg echo \"a  b\" 'c'\\n\\\\done\narg \n";
        apply(text, &mut cfg).unwrap();
        assert_eq!(cfg.argv, ["/bin/sh", "-c", "echo \"a  b\" 'c'\n\\done", ""]);
    }

    #[test]
    fn many_variables_and_settings() {
        let mut cfg = Config::default();
        let mut text =
            String::from("uid 1000\ngid 1000\ncwd /home/u\ndebug\nroot virtiofs:ROOT\nro\n");
        for i in 0..500 {
            text.push_str(&format!("env VAR{i}=value with spaces {i}\n"));
        }
        apply(&text, &mut cfg).unwrap();
        assert_eq!(cfg.env.len(), 500);
        assert_eq!(cfg.env[499], "VAR499=value with spaces 499");
        assert_eq!(
            (cfg.uid, cfg.gid, cfg.cwd.as_str(), cfg.debug),
            (1000, 1000, "/home/u", true)
        );
        assert!(cfg.root.unwrap().ro);
    }

    #[test]
    fn command_line_wins() {
        let mut cfg = Config::default();
        apply("arg /bin/spec\nhostname spec\nenv A=1\n", &mut cfg).unwrap();
        crate::cmdline::parse("rinit.hostname=cmd rinit.env=B=2 -- /bin/cmd")
            .apply(&mut cfg)
            .unwrap();
        assert_eq!(cfg.hostname, "cmd");
        assert_eq!(cfg.env, ["A=1", "B=2"]);
        assert_eq!(cfg.argv, ["/bin/cmd"]);
        let mut cfg = Config::default();
        apply("arg /bin/spec\n", &mut cfg).unwrap();
        crate::cmdline::parse("rinit.debug")
            .apply(&mut cfg)
            .unwrap();
        assert_eq!(cfg.argv, ["/bin/spec"]);
    }

    #[test]
    fn errors_name_the_line() {
        let mut cfg = Config::default();
        let err = apply("arg x\nuid abc\n", &mut cfg).unwrap_err().to_string();
        assert_eq!(err, "spec line 2: rinit.uid: \"abc\" is not a valid number");
        assert!(apply("arg a\\qb\n", &mut cfg)
            .unwrap_err()
            .to_string()
            .contains("line 1: unknown escape \\q"));
        assert!(apply("arg a\\\n", &mut cfg).is_err());
        assert!(apply("spec /x\n", &mut cfg).is_err());
        assert!(apply("rinit.debug\n", &mut cfg).is_err());
        assert!(apply(" arg x\n", &mut cfg).is_err());
    }

    #[test]
    fn unknown_keys_warn_with_line() {
        let mut cfg = Config::default();
        apply("colour blue\n", &mut cfg).unwrap();
        assert_eq!(
            cfg.warnings,
            ["spec line 1: unknown key rinit.colour ignored"]
        );
    }

    #[test]
    fn size_limit() {
        let text = "#".repeat(MAX_SIZE + 1);
        assert!(apply(&text, &mut Config::default()).is_err());
    }
}
