//! `mvm`: run a command in a QEMU microvm. Everything is in the `mvm` library; this file maps
//! the outcome to one line on stderr and the exit status documented in `mvm::error`.

use clap::Parser;
use mvm::cli::{Cli, Command, KernelCommand};
use mvm::error::EXIT_SETUP;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_SETUP } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Run(args) => mvm::run::run(&args),
        Command::Kernel {
            command: KernelCommand::Fetch,
        } => fetch_kernel(),
        Command::Doctor(args) => Ok(mvm::doctor::run(&args)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mvm: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn fetch_kernel() -> mvm::error::Result<u8> {
    let opts = mvm::kernel::FetchOptions::new()?;
    eprintln!(
        "mvm: fetching {} into {}",
        opts.package,
        opts.cache_dir.display()
    );
    let k = mvm::kernel::fetch(&opts)?;
    println!("{}", k.vmlinux.display());
    eprintln!("mvm: kernel {} ready (bzImage and PVH vmlinux)", k.kver);
    Ok(0)
}
