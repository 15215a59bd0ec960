//! What rinit is told: its settings as `rinit.*` kernel command-line words, or, when a value
//! cannot travel on the command line, as a spec file (both formats are rinit's, see
//! `guest-init/src/config.rs` and `spec.rs`).
//!
//! The kernel splits its command line on whitespace outside double quotes and has no escape for
//! `"` itself (`kernel/params.c: next_arg`), and x86 caps the line at 2048 bytes. Words with
//! spaces are quoted; anything with a `"`, a control character or an empty word, or a line that
//! gets too long, goes to the spec file instead, which carries any text.

use rinit_status::Nonce;

/// Longest kernel command line we produce (x86 `COMMAND_LINE_SIZE` is 2048, with room to spare).
pub const MAX_CMDLINE: usize = 1900;

/// The guest's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestRoot {
    /// The initramfs itself (the built-in root).
    Initramfs,
    /// A virtiofs share by tag; `overlay`: rinit puts a tmpfs overlay on it to create the mount
    /// points it lacks (`rinit.overlay`).
    Virtiofs {
        tag: String,
        ro: bool,
        overlay: bool,
    },
    /// A block device with a filesystem type.
    Block {
        device: String,
        fstype: String,
        ro: bool,
    },
}

/// An extra virtiofs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestMount {
    pub tag: String,
    pub path: String,
    pub ro: bool,
}

/// Everything rinit needs for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestConfig {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub root: GuestRoot,
    pub mounts: Vec<GuestMount>,
    pub modules: Vec<String>,
    pub nonce: Nonce,
    pub debug: bool,
    pub debug_exit: bool,
    /// Milliseconds rinit waits for its ports to appear (0: no ports).
    pub wait_port_ms: u32,
    /// The workload's stdin, stdout and stderr: `None` for the console, else `null` or a port
    /// name (rinit's `rinit.stdin=` …).
    pub stdio: [Option<String>; 3],
    /// Milliseconds rinit waits for the host to stop the VM after reporting (`rinit.hold`).
    pub hold_ms: u32,
    /// The terminal type and window size (rows, columns) of an interactive console.
    pub term: Option<String>,
    pub winsize: Option<(u16, u16)>,
    /// The port that carries later window sizes (`rinit.resize`).
    pub resize_port: Option<String>,
}

/// How the settings travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `rinit.*` words (and `-- argv` when there is no spec), to append to the kernel line.
    pub cmdline: String,
    /// The spec file, when the command line cannot carry everything.
    pub spec: Option<String>,
}

impl GuestConfig {
    /// `(key, value)` settings in rinit's vocabulary, argv excluded.
    fn settings(&self) -> Vec<(&'static str, Option<String>)> {
        let mut s: Vec<(&'static str, Option<String>)> = Vec::new();
        if !self.modules.is_empty() {
            s.push(("modules", Some(self.modules.join(","))));
        }
        match &self.root {
            GuestRoot::Initramfs => {}
            GuestRoot::Virtiofs { tag, ro, overlay } => {
                s.push(("root", Some(format!("virtiofs:{tag}"))));
                s.push(("ro", Some(if *ro { "1" } else { "0" }.into())));
                if *overlay {
                    s.push(("overlay", None));
                }
            }
            GuestRoot::Block { device, fstype, ro } => {
                s.push(("root", Some(device.clone())));
                s.push(("rootfstype", Some(fstype.clone())));
                s.push(("ro", Some(if *ro { "1" } else { "0" }.into())));
            }
        }
        for m in &self.mounts {
            let ro = if m.ro { ":ro" } else { "" };
            s.push(("mount", Some(format!("{}:{}{ro}", m.tag, m.path))));
        }
        if let Some(cwd) = &self.cwd {
            s.push(("cwd", Some(cwd.clone())));
        }
        s.extend(self.env.iter().map(|e| ("env", Some(e.clone()))));
        if self.wait_port_ms > 0 {
            s.push(("waitport", Some(self.wait_port_ms.to_string())));
        }
        for (key, stream) in ["stdin", "stdout", "stderr"].into_iter().zip(&self.stdio) {
            if let Some(v) = stream {
                s.push((key, Some(v.clone())));
            }
        }
        if self.hold_ms > 0 {
            s.push(("hold", Some(self.hold_ms.to_string())));
        }
        if let Some(term) = &self.term {
            s.push(("term", Some(term.clone())));
        }
        if let Some((rows, cols)) = self.winsize {
            s.push(("rows", Some(rows.to_string())));
            s.push(("cols", Some(cols.to_string())));
        }
        if let Some(port) = &self.resize_port {
            s.push(("resize", Some(port.clone())));
        }
        if self.debug {
            s.push(("debug", None));
        }
        s
    }

    /// The command line words, or the spec file when they cannot be expressed there.
    pub fn encode(&self) -> Encoded {
        let mut head = format!("rinit.nonce={}", self.nonce.as_str());
        if self.debug_exit {
            head.push_str(" rinit.debugexit");
        }
        let words: Option<Vec<String>> = self
            .settings()
            .iter()
            .map(|(k, v)| match v {
                None => Some(format!("rinit.{k}")),
                Some(v) => setting_value(v).map(|v| format!("rinit.{k}={v}")),
            })
            .chain(std::iter::once(Some("--".to_owned())))
            .chain(self.argv.iter().map(|a| cmdline_word(a)))
            .collect();
        if let Some(words) = words {
            let line = format!("{head} {}", words.join(" "));
            if line.len() <= MAX_CMDLINE {
                return Encoded {
                    cmdline: line,
                    spec: None,
                };
            }
        }
        Encoded {
            cmdline: head,
            spec: Some(self.spec()),
        }
    }

    /// The spec file text: one `KEY VALUE` per line, values escaped (`\n`, `\t`, `\\`).
    pub fn spec(&self) -> String {
        let mut out = String::from("# written by mvm\n");
        for (k, v) in self.settings() {
            match v {
                None => out.push_str(&format!("{k}\n")),
                Some(v) => out.push_str(&format!("{k} {}\n", spec_escape(&v))),
            }
        }
        for a in &self.argv {
            out.push_str(&format!("arg {}\n", spec_escape(a)));
        }
        out
    }
}

/// A setting's value after `rinit.KEY=`: bare, or wholly in double quotes when it has spaces
/// (the kernel strips quotes only when the value starts with one).
fn setting_value(v: &str) -> Option<String> {
    cmdline_word(v).map(|w| {
        if v.contains([' ', '\t']) {
            format!("\"{v}\"")
        } else {
            w
        }
    })
}

/// A value as one kernel command-line word: bare, or in double quotes when it has spaces.
/// `None` when the kernel cannot carry it.
fn cmdline_word(v: &str) -> Option<String> {
    if v.is_empty() || v.contains('"') || v.chars().any(|c| c.is_control() && c != '\t') {
        return None;
    }
    if v.contains([' ', '\t']) {
        // `key="a b"` and `"a b"` both lose their quotes in the kernel's parser; rinit rebuilds
        // `NAME=VALUE` words after `--` from the parts.
        return Some(match v.split_once('=') {
            Some((k, val)) if !k.contains([' ', '\t']) => format!("{k}=\"{val}\""),
            _ => format!("\"{v}\""),
        });
    }
    Some(v.to_owned())
}

fn spec_escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('\n', r"\n")
        .replace('\t', r"\t")
}

#[cfg(test)]
#[path = "guest_tests.rs"]
mod tests;
