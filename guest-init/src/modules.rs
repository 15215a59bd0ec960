//! Kernel modules: resolve the requested names through `modules.dep` and load them with
//! `finit_module(2)` (formats as written by `depmod(8)`: `modules.dep(5)`, `modules.builtin`).
//!
//! `modules.dep` lines read `path/a.ko: path/dep1.ko path/dep2.ko`, paths relative to
//! `/lib/modules/$(uname -r)`. rinit does not trust the order of the dependency list: it walks each
//! dependency's own entry depth first, so every module is loaded after all of its dependencies.
//! A built-in module (listed in `modules.builtin`) or one already loaded (`EEXIST`) is a success.
//! Without `modules.dep`, the dependencies come from the modules' own `.modinfo` ([`crate::modinfo`]).

use crate::error::{Error, Result};
use crate::log::step;
use crate::sys;
use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;

/// `MODULE_INIT_COMPRESSED_FILE` (Linux 5.17+, `include/uapi/linux/module.h`): the kernel decompresses.
const MODULE_INIT_COMPRESSED_FILE: libc::c_int = 4;

/// One step of a load plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Built into the kernel: nothing to do.
    Builtin(String),
    /// Load this file (relative to the modules directory).
    Load(String),
}

/// The parsed `modules.dep` and `modules.builtin` of one kernel.
#[derive(Debug, Default)]
pub struct ModDb {
    /// Module name → (path, dependency paths).
    deps: HashMap<String, (String, Vec<String>)>,
    builtin: HashSet<String>,
}

/// A module's name from its path or a user's spelling: basename, no `.ko[.xz|.zst|.gz]`, `-` → `_`.
pub fn name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = [".xz", ".zst", ".gz"]
        .iter()
        .fold(base, |b, ext| b.strip_suffix(ext).unwrap_or(b));
    base.strip_suffix(".ko").unwrap_or(base).replace('-', "_")
}

impl ModDb {
    /// Parses the two files' contents.
    pub fn parse(dep: &str, builtin: &str) -> ModDb {
        let mut db = ModDb::default();
        for line in dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            db.deps.insert(name_of(path), (path.to_owned(), deps));
        }
        db.builtin = builtin
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(name_of)
            .collect();
        db
    }

    /// The ordered steps that load `wanted` and their dependencies, each module once.
    pub fn plan(&self, wanted: &[String]) -> Result<Vec<Step>> {
        let mut plan = Vec::new();
        let mut done = HashSet::new();
        for name in wanted {
            let name = name_of(name);
            if self.builtin.contains(&name) {
                if done.insert(name.clone()) {
                    plan.push(Step::Builtin(name));
                }
                continue;
            }
            if !self.deps.contains_key(&name) {
                return Err(Error::msg(format!(
                    "module {name} not found in modules.dep (nor in modules.builtin)"
                )));
            }
            self.visit(&name, &mut done, &mut Vec::new(), &mut plan)?;
        }
        Ok(plan)
    }

    /// Depth-first: dependencies (in their listed order) before the module itself.
    fn visit(
        &self,
        name: &str,
        done: &mut HashSet<String>,
        stack: &mut Vec<String>,
        plan: &mut Vec<Step>,
    ) -> Result<()> {
        if done.contains(name) || self.builtin.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(Error::msg(format!(
                "modules.dep has a cycle through {name}"
            )));
        }
        let Some((path, deps)) = self.deps.get(name) else {
            return Err(Error::msg(format!(
                "module {name} (a dependency) not found in modules.dep"
            )));
        };
        stack.push(name.to_owned());
        for dep in deps {
            self.visit(&name_of(dep), done, stack, plan)?;
        }
        stack.pop();
        done.insert(name.to_owned());
        plan.push(Step::Load(path.clone()));
        Ok(())
    }
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .map_err(|e| Error::io("read /proc/sys/kernel/osrelease", e))
}

/// Loads `wanted` from `/lib/modules/<release>/`.
pub fn load(wanted: &[String]) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let dir = format!("/lib/modules/{}", kernel_release()?);
    let dep_path = format!("{dir}/modules.dep");
    let dep = match std::fs::read_to_string(&dep_path) {
        Ok(dep) => dep,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            step!("no {dep_path}: reading dependencies from the modules");
            crate::modinfo::synthesize_dep(std::path::Path::new(&dir), wanted)?
        }
        Err(e) => return Err(Error::io(format_args!("read {dep_path}"), e)),
    };
    let builtin = std::fs::read_to_string(format!("{dir}/modules.builtin")).unwrap_or_default();
    let plan = ModDb::parse(&dep, &builtin)
        .plan(wanted)
        .map_err(|e| Error::msg(format!("{dir}: {e}")))?;
    for step in plan {
        match step {
            Step::Builtin(name) => step!("module {name} is built in"),
            Step::Load(rel) => load_file(&format!("{dir}/{rel}"))?,
        }
    }
    Ok(())
}

fn load_file(path: &str) -> Result<()> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::io(format_args!("open module {path}"), e))?;
    let compressed = [".xz", ".zst", ".gz"].iter().any(|ext| path.ends_with(ext));
    let flags = if compressed {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    match sys::finit_module(file.as_fd(), flags) {
        Ok(()) => step!("loaded module {}", name_of(path)),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            step!("module {} already loaded", name_of(path))
        }
        Err(e) => return Err(Error::io(format_args!("load module {path}"), e)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/fs/fuse/fuse.ko:
kernel/drivers/char/virtio_console.ko.xz: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
";
    const BUILTIN: &str = "kernel/fs/ext4/ext4.ko\nkernel/drivers/block/loop.ko\n";

    fn plan(wanted: &[&str]) -> Result<Vec<Step>> {
        let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        ModDb::parse(DEP, BUILTIN).plan(&wanted)
    }

    fn load(p: &str) -> Step {
        Step::Load(p.into())
    }

    #[test]
    fn names() {
        assert_eq!(
            name_of("kernel/drivers/char/virtio_console.ko.xz"),
            "virtio_console"
        );
        assert_eq!(name_of("virtio-mmio"), "virtio_mmio");
        assert_eq!(name_of("fuse.ko"), "fuse");
        assert_eq!(name_of("a/b/c.ko.zst"), "c");
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let steps = plan(&["virtio_mmio", "virtiofs", "virtio-console"]).unwrap();
        assert_eq!(
            steps,
            [
                load("kernel/drivers/virtio/virtio_ring.ko"),
                load("kernel/drivers/virtio/virtio.ko"),
                load("kernel/drivers/virtio/virtio_mmio.ko"),
                load("kernel/fs/fuse/fuse.ko"),
                load("kernel/fs/fuse/virtiofs.ko"),
                load("kernel/drivers/char/virtio_console.ko.xz"),
            ]
        );
    }

    #[test]
    fn order_does_not_depend_on_the_listed_order() {
        // virtio is listed before virtio_ring here, yet virtio needs virtio_ring.
        let dep = "m.ko: virtio.ko virtio_ring.ko\nvirtio.ko: virtio_ring.ko\nvirtio_ring.ko:\n";
        let steps = ModDb::parse(dep, "").plan(&["m".into()]).unwrap();
        assert_eq!(
            steps,
            [load("virtio_ring.ko"), load("virtio.ko"), load("m.ko")]
        );
    }

    #[test]
    fn builtin_is_success_and_missing_is_named() {
        assert_eq!(
            plan(&["ext4", "ext4"]).unwrap(),
            [Step::Builtin("ext4".into())]
        );
        let err = plan(&["virtio_blk", "nosuchmod"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "module nosuchmod not found in modules.dep (nor in modules.builtin)"
        );
    }

    #[test]
    fn missing_dependency_and_cycles_are_errors() {
        let err = ModDb::parse("a.ko: b.ko\n", "")
            .plan(&["a".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("module b (a dependency)"), "{err}");
        let err = ModDb::parse("a.ko: b.ko\nb.ko: a.ko\n", "")
            .plan(&["a".into()])
            .unwrap_err();
        assert!(err.to_string().contains("cycle"));
    }

    #[test]
    fn builtin_dependency_is_skipped() {
        let steps = ModDb::parse("a.ko: b.ko\n", "kernel/b.ko\n")
            .plan(&["a".into()])
            .unwrap();
        assert_eq!(steps, [load("a.ko")]);
    }
}
