//! `cargo xtask test`: exactly what CI runs, in order, failing fast.

use crate::util;

/// Lint, build every artefact the boot tests need, then run all tests.
pub fn test() -> Result<(), String> {
    util::run(util::cargo().args(["fmt", "--all", "--check"]))?;
    util::run(util::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    for (package, target) in CROSS {
        util::run(util::cargo().args([
            "clippy", "-p", package, "--target", target, "--", "-D", "warnings",
        ]))?;
    }
    crate::rom::build(false)?;
    crate::rom::build(true)?;
    artefacts()?;
    util::run(util::cargo().args(["test", "--workspace", "--no-fail-fast"]))
}

/// Crates that run on another target than the host's, linted there too.
const CROSS: &[(&str, &str)] = &[
    ("mvm-firmware", "x86_64-unknown-none"),
    ("mvm-probe", "x86_64-unknown-none"),
    ("rinit", util::MUSL),
    ("mvm-guest-check", util::MUSL),
];

/// Everything the boot tests read from `target/` besides fw.rom.
fn artefacts() -> Result<(), String> {
    crate::probe::build()?;
    // The mvm end-to-end tests boot rinit from here.
    util::build_musl(&["rinit"])?;
    crate::kernel::fetch()?;
    Ok(())
}
