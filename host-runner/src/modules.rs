//! Which kernel modules the guest needs, and their files, from a kernel's modules directory
//! (`lib/modules/<release>`; formats of `modules.dep(5)` and `modules.builtin` as written by
//! `depmod(8)`).
//!
//! The dependencies come from `modules.dep` when the directory has one. A kernel package
//! unpacked with `dpkg -x` (the cached Debian kernel) has none, since Debian runs `depmod` at
//! install time; then the modules are found by walking `kernel/` and each one's dependencies
//! are read from the `depends=` field of its own `.modinfo` ELF section, which is what
//! `modpost` derived from the symbols the module uses (and what `modinfo -F depends` prints).

use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Compressed module suffixes and the program that decompresses each (to stdout, `-dc`).
const COMPRESSED: [(&str, &str); 3] = [(".ko.xz", "xz"), (".ko.zst", "zstd"), (".ko.gz", "gzip")];

/// A module name as the kernel spells it: basename without `.ko[.xz|.zst|.gz]`, `-` → `_`.
pub fn name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = COMPRESSED
        .iter()
        .find_map(|(ext, _)| base.strip_suffix(ext))
        .or_else(|| base.strip_suffix(".ko"))
        .unwrap_or(base);
    stem.replace('-', "_")
}

/// One module to put in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Kernel name, e.g. `virtio_mmio`.
    pub name: String,
    /// Path relative to the modules directory, e.g. `kernel/drivers/virtio/virtio_mmio.ko`.
    pub rel: String,
    /// Names of the modules it needs.
    pub deps: Vec<String>,
}

/// Where the dependency lists come from.
#[derive(Debug)]
enum Source {
    /// Parsed `modules.dep`: name → (relative path, dependency names).
    Dep(HashMap<String, (String, Vec<String>)>),
    /// Files found under `kernel/`: name → relative path; dependencies from `.modinfo`.
    Scan(HashMap<String, String>),
}

/// The modules of one kernel.
#[derive(Debug)]
pub struct ModuleDb {
    dir: PathBuf,
    source: Source,
    builtin: HashSet<String>,
}

impl ModuleDb {
    /// Reads the modules directory `dir` (`lib/modules/<release>`).
    pub fn open(dir: &Path) -> Result<ModuleDb> {
        let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
        let dep_path = dir.join("modules.dep");
        let source = match std::fs::read_to_string(&dep_path) {
            Ok(text) => Source::Dep(parse_dep(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Source::Scan(scan(dir).map_err(|e| Error::io("read modules in", dir, e))?)
            }
            Err(e) => return Err(Error::io("read", dep_path, e)),
        };
        Ok(ModuleDb {
            dir: dir.to_owned(),
            source,
            builtin: parse_builtin(&builtin),
        })
    }

    /// An in-memory database (tests): `modules.dep` and `modules.builtin` texts.
    pub fn from_texts(dir: &Path, dep: &str, builtin: &str) -> ModuleDb {
        ModuleDb {
            dir: dir.to_owned(),
            source: Source::Dep(parse_dep(dep)),
            builtin: parse_builtin(builtin),
        }
    }

    /// The modules directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `name` is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&name_of(name))
    }

    /// Whether `name` exists as a loadable module.
    pub fn has_module(&self, name: &str) -> bool {
        let name = name_of(name);
        match &self.source {
            Source::Dep(map) => map.contains_key(&name),
            Source::Scan(map) => map.contains_key(&name),
        }
    }

    /// The modules to load for `wanted`, dependencies first, each once; built-in ones are left
    /// out. A name that is neither built in nor a module is an error naming it.
    pub fn resolve(&self, wanted: &[&str]) -> Result<Vec<Module>> {
        let mut out = Vec::new();
        let mut done = HashSet::new();
        for w in wanted {
            self.visit(&name_of(w), &mut done, &mut Vec::new(), &mut out)?;
        }
        Ok(out)
    }

    fn visit(
        &self,
        name: &str,
        done: &mut HashSet<String>,
        stack: &mut Vec<String>,
        out: &mut Vec<Module>,
    ) -> Result<()> {
        if done.contains(name) || self.builtin.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(Error::Module(format!(
                "module dependency cycle through {name} in {}",
                self.dir.display()
            )));
        }
        let module = self.lookup(name)?;
        stack.push(name.to_owned());
        for dep in &module.deps {
            self.visit(dep, done, stack, out)?;
        }
        stack.pop();
        done.insert(name.to_owned());
        out.push(module);
        Ok(())
    }

    fn lookup(&self, name: &str) -> Result<Module> {
        let missing = || {
            Error::Module(format!(
                "kernel module {name} is neither built in nor in {}",
                self.dir.display()
            ))
        };
        match &self.source {
            Source::Dep(map) => {
                let (rel, deps) = map.get(name).ok_or_else(missing)?;
                Ok(Module {
                    name: name.to_owned(),
                    rel: rel.clone(),
                    deps: deps.clone(),
                })
            }
            Source::Scan(map) => {
                let rel = map.get(name).ok_or_else(missing)?;
                let bytes = self.read(rel)?;
                let deps = modinfo_depends(&bytes)
                    .map_err(|e| Error::Module(format!("{}: {e}", self.dir.join(rel).display())))?;
                Ok(Module {
                    name: name.to_owned(),
                    rel: rel.clone(),
                    deps,
                })
            }
        }
    }

    /// The module file `rel`, decompressed when it is compressed. Returns the uncompressed
    /// bytes; the caller stores them under [`uncompressed_rel`].
    pub fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(rel);
        match COMPRESSED.iter().find(|(ext, _)| rel.ends_with(ext)) {
            None => std::fs::read(&path).map_err(|e| Error::io("read", path, e)),
            Some((_, tool)) => decompress(tool, &path),
        }
    }
}

/// The path a module is stored under once decompressed (`x.ko.zst` → `x.ko`).
pub fn uncompressed_rel(rel: &str) -> String {
    COMPRESSED
        .iter()
        .find_map(|(ext, _)| rel.strip_suffix(ext))
        .map_or_else(|| rel.to_owned(), |stem| format!("{stem}.ko"))
}

/// A `modules.dep` line for `m` as stored in the initramfs (uncompressed paths).
pub fn dep_line(m: &Module, all: &[Module]) -> String {
    let deps: Vec<String> = m
        .deps
        .iter()
        .filter_map(|d| all.iter().find(|x| &x.name == d))
        .map(|x| uncompressed_rel(&x.rel))
        .collect();
    format!("{}: {}", uncompressed_rel(&m.rel), deps.join(" "))
}

fn decompress(tool: &str, path: &Path) -> Result<Vec<u8>> {
    let out = std::process::Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(|e| Error::Program {
            program: tool.into(),
            detail: format!("cannot run it to decompress {}: {e}", path.display()),
        })?;
    if !out.status.success() {
        return Err(Error::Program {
            program: tool.into(),
            detail: format!(
                "decompressing {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out.stdout)
}

fn parse_dep(text: &str) -> HashMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(path, deps)| {
            let path = path.trim();
            let deps = deps.split_whitespace().map(name_of).collect();
            (name_of(path), (path.to_owned(), deps))
        })
        .collect()
}

fn parse_builtin(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(name_of)
        .collect()
}

/// Every module file under `dir/kernel`, by name.
fn scan(dir: &Path) -> std::io::Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    let mut stack = vec![PathBuf::from("kernel")];
    while let Some(rel_dir) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel_dir))? {
            let entry = entry?;
            let rel = rel_dir.join(entry.file_name());
            let rel_str = rel.to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() {
                stack.push(rel);
            } else if rel_str.ends_with(".ko")
                || COMPRESSED.iter().any(|(e, _)| rel_str.ends_with(e))
            {
                map.insert(name_of(&rel_str), rel_str);
            }
        }
    }
    Ok(map)
}

/// The `depends=` names of a module's `.modinfo` section (empty when it depends on nothing).
pub fn modinfo_depends(elf: &[u8]) -> Result<Vec<String>, String> {
    let parsed = goblin::elf::Elf::parse(elf).map_err(|e| format!("not an ELF module: {e}"))?;
    let section = parsed
        .section_headers
        .iter()
        .find(|sh| parsed.shdr_strtab.get_at(sh.sh_name) == Some(".modinfo"))
        .ok_or("no .modinfo section")?;
    let start = usize::try_from(section.sh_offset).map_err(|_| "bad .modinfo offset")?;
    let len = usize::try_from(section.sh_size).map_err(|_| "bad .modinfo size")?;
    let data = start
        .checked_add(len)
        .and_then(|end| elf.get(start..end))
        .ok_or(".modinfo lies outside the file")?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|v| v.split(|&b| b == b','))
        .filter(|d| !d.is_empty())
        .map(|d| name_of(&String::from_utf8_lossy(d)))
        .collect())
}

#[cfg(test)]
#[path = "modules_tests.rs"]
mod tests;
