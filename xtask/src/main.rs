//! `cargo xtask <task>`: build, test and benchmark tasks for the mvm workspace.
//!
//! | task | what it does |
//! |---|---|
//! | `build-fw [--log]` | build `target/fw.rom` (firmware, flat 64 KiB image) |
//! | `build-probe` | build the hand-off probe kernels under `target/probe/` |
//! | `fetch-kernel` | download and unpack the Debian cloud kernel into the cache |
//! | `demo` | build fw.rom, rinit and mvm, then `mvm run --timings -- uname -a` |
//! | `test` | everything CI runs: fmt, clippy, unit tests, artefacts, boot tests |
//! | `bench-fw [--runs N]` | firmware benchmark: fw.rom vs qboot vs SeaBIOS (probe and Linux) |
//! | `bench-mvm [--runs N]` | `mvm run -- true` with each firmware (and vng when installed) |
//! | `bench-rinit [--runs N] [--icount]` | rinit's start-up cost against a busybox shell init (wall time under TCG, or guest instructions) |

use std::process::ExitCode;

mod bench;
mod bench_fw_cost;
mod bench_mvm;
mod bench_rinit;
mod ci;
mod demo;
mod kernel;
mod probe;
mod rom;
mod util;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprintln!(
            "usage: cargo xtask <build-fw|build-probe|fetch-kernel|demo|test|bench-fw|bench-mvm|bench-rinit>"
        );
        return ExitCode::from(2);
    };
    let result = match task.as_str() {
        "demo" => demo::run(),
        "test" => ci::test(),
        "bench-mvm" => bench_mvm::run(rest),
        "bench-fw" => bench_fw_cost::report(10).and_then(|()| bench::run(rest)),
        "bench-rinit" => bench_rinit::run(rest),
        "fetch-kernel" => kernel::fetch().map(|_| ()),
        "build-probe" => probe::build().map(|_| ()),
        "build-fw" => rom::build(rest.iter().any(|a| a == "--log")).map(|_| ()),
        other => Err(format!("unknown task `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
