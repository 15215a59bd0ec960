//! `cargo xtask demo`: the main job on its default — build fw.rom, rinit and mvm, then
//! `mvm run --timings -- uname -a` (the kernel is fetched into the cache on first use).

use std::process::Command;

use crate::{rom, util};

/// Build everything `mvm run` needs and run `uname -a` in a microVM.
pub fn run() -> Result<(), String> {
    rom::build(false)?;
    util::build_musl(&["rinit"])?;
    util::run(util::cargo().args(["build", "--release", "-p", "mvm", "--bin", "mvm"]))?;
    let mvm = util::root().join("target/release/mvm");
    util::run(Command::new(&mvm).args(["kernel", "fetch"]))?;
    util::run(Command::new(&mvm).args(["run", "--timings", "--", "uname", "-a"]))
}
