//! End-to-end tests of `mvm run` under real QEMU (TCG unless KVM works), the cached Debian cloud
//! kernel, fw.rom and rinit. Needs, besides `cargo build`: `cargo xtask build-fw`, rinit
//! (`cargo build --release -p rinit --target x86_64-unknown-linux-musl`), busybox-static, and
//! for the virtiofs tests a virtiofsd (`./x.sh setup`). A missing piece fails the test with the
//! step that provides it.

mod util;

mod exit_codes;
mod options;
mod shares;
mod stdio;
mod teardown;
