//! The kernel command line (`/proc/cmdline`): `rinit.KEY[=VALUE]` settings (table in [`crate::config`])
//! and the workload's argv after `--`.
//!
//! Words are split exactly as the kernel's `next_arg()` (`kernel/params.c`) splits them, so what rinit
//! sees is what the kernel itself would pass to init:
//! - words are separated by whitespace outside double quotes;
//! - `key="a b"` gives the value `a b`, `"key=a b"` too; a quoted word without `=` loses its quotes;
//! - a `"` elsewhere only toggles quoting and is kept; there is no escape for `"` itself
//!   (use the spec file for such values);
//! - the word `--` ends the kernel's parameters: every later word is one argv entry of the workload
//!   (`NAME=VALUE` words included, with the quotes of the value removed).
//!
//! Keys without the `rinit.` prefix belong to the kernel and are ignored.

use crate::config::Config;
use crate::error::Result;

/// One word: `param` and, when it had an `=`, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub param: String,
    pub value: Option<String>,
}

/// The parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// `rinit.*` settings in order, with the prefix removed.
    pub keys: Vec<Word>,
    /// The workload argv (words after `--`).
    pub argv: Vec<String>,
}

/// Splits off the next word as `next_arg()` does; returns it and the rest (leading spaces skipped).
fn next_word(args: &str) -> (Word, &str) {
    let (quoted, args) = match args.strip_prefix('"') {
        Some(rest) => (true, rest),
        None => (false, args),
    };
    let bytes = args.as_bytes();
    let mut in_quote = quoted;
    let mut equals = 0;
    let mut end = 0;
    while end < bytes.len() {
        let b = bytes[end];
        if b.is_ascii_whitespace() && !in_quote {
            break;
        }
        if equals == 0 && b == b'=' {
            equals = end;
        }
        if b == b'"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let rest = args[end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
    // Drop a closing quote as the kernel does: once, when the value or the whole word was quoted.
    let mut word_end = end;
    let mut stripped = false;
    let mut value_start = None;
    if equals != 0 {
        let mut vs = equals + 1;
        if bytes.get(vs) == Some(&b'"') {
            vs += 1;
            if args[..word_end].ends_with('"') {
                word_end -= 1;
                stripped = true;
            }
        }
        value_start = Some(vs);
    }
    if quoted && !stripped && args[..word_end].ends_with('"') {
        word_end -= 1;
    }
    let w = match value_start {
        None => Word {
            param: args[..word_end].to_owned(),
            value: None,
        },
        Some(vs) => Word {
            param: args[..equals].to_owned(),
            value: Some(args[vs.min(word_end)..word_end].to_owned()),
        },
    };
    (w, rest)
}

/// Parses the whole command line.
pub fn parse(text: &str) -> Cmdline {
    let mut out = Cmdline::default();
    let mut rest = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
    let mut after_dashes = false;
    while !rest.is_empty() {
        let (word, next) = next_word(rest);
        rest = next;
        if after_dashes {
            out.argv.push(match word.value {
                Some(v) => format!("{}={v}", word.param),
                None => word.param,
            });
        } else if word.param == "--" && word.value.is_none() {
            after_dashes = true;
        } else if let Some(key) = word.param.strip_prefix("rinit.") {
            out.keys.push(Word {
                param: key.to_owned(),
                value: word.value,
            });
        }
    }
    out
}

impl Cmdline {
    /// The spec file to read: `rinit.spec` if given.
    pub fn spec_path(&self) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|w| w.param == "spec")
            .and_then(|w| w.value.as_deref())
    }

    /// Applies the settings to `cfg` (after the spec file, so the command line wins); a non-empty
    /// argv replaces the spec's.
    pub fn apply(&self, cfg: &mut Config) -> Result<()> {
        for w in &self.keys {
            if w.param == "arg" {
                cfg.warnings
                    .push("rinit.arg is for the spec file; give argv after `--`".into());
                continue;
            }
            cfg.set(&w.param, w.value.as_deref())?;
        }
        if !self.argv.is_empty() {
            cfg.argv = self.argv.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "cmdline_tests.rs"]
mod tests;
