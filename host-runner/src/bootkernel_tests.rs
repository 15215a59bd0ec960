//! Tests of kernel inspection and choice. The host-kernel tests build a fake `/boot` and
//! `/lib/modules` around the real Debian cloud kernel from the cache (`cargo xtask
//! fetch-kernel`), so the path taken on a host with a suitable kernel runs here too.

use super::*;
use crate::kernel::Kernel;
use std::fs;

/// A scratch directory under the system temp dir, removed when dropped (also when the test
/// fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mvm-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The cached Debian cloud kernel. Its absence fails the test rather than skipping it.
fn cached_kernel() -> Kernel {
    let cache = crate::kernel::cache_dir().expect("kernel cache directory");
    crate::kernel::cached(&cache)
        .expect("reading the kernel cache")
        .unwrap_or_else(|| {
            panic!(
                "no kernel cached in {}: run `cargo xtask fetch-kernel` first",
                cache.display()
            )
        })
}

/// A host-like tree: `boot/vmlinuz-<kver>` (the cached bzImage), `boot/config-<kver>` and
/// `lib/modules/<kver>` (a symlink to the cached modules).
struct FakeHost {
    kernel: Kernel,
    boot: PathBuf,
    lib_modules: PathBuf,
}

impl FakeHost {
    fn new(root: &Path) -> Self {
        let kernel = cached_kernel();
        let boot = root.join("boot");
        let lib_modules = root.join("lib/modules");
        fs::create_dir_all(&boot).unwrap();
        fs::create_dir_all(&lib_modules).unwrap();
        let host = FakeHost {
            kernel,
            boot,
            lib_modules,
        };
        let (image, release) = (host.image(), &host.kernel.kver);
        // A hard link is free; a copy is the fallback across file systems.
        if fs::hard_link(&host.kernel.vmlinuz, &image).is_err() {
            fs::copy(&host.kernel.vmlinuz, &image).unwrap();
        }
        let config = host.kernel.dir.join(format!("boot/config-{release}"));
        fs::copy(&config, host.config()).unwrap();
        std::os::unix::fs::symlink(&host.kernel.modules, host.lib_modules.join(release)).unwrap();
        host
    }

    fn image(&self) -> PathBuf {
        self.boot.join(format!("vmlinuz-{}", self.kernel.kver))
    }

    fn config(&self) -> PathBuf {
        self.boot.join(format!("config-{}", self.kernel.kver))
    }

    fn choose(&self) -> std::result::Result<BootKernel, String> {
        host_in(&self.boot, &self.lib_modules, &self.kernel.kver)
    }
}

#[test]
fn host_kernel_is_chosen_with_its_release_and_modules() {
    let scratch = Scratch::new("host-chosen");
    let host = FakeHost::new(&scratch.0);
    let modules = host.lib_modules.join(&host.kernel.kver);
    assert_eq!(
        host.choose().unwrap(),
        BootKernel {
            image: host.image(),
            protocol: Protocol::BzImage,
            origin: Origin::Host,
            kver: Some(host.kernel.kver.clone()),
            modules: Some(modules.clone()),
        }
    );
    assert_eq!(
        modules.canonicalize().unwrap(),
        host.kernel.modules.canonicalize().unwrap()
    );
    // No modules directory for the release: the kernel still boots, without modules.
    fs::remove_file(&modules).unwrap();
    assert_eq!(host.choose().unwrap().modules, None);
}

#[test]
fn host_kernel_boots_through_a_cached_pvh_vmlinux() {
    let scratch = Scratch::new("host-pvh");
    let host = FakeHost::new(&scratch.0);
    let cache = scratch.0.join("cache");
    let bz = host.choose().unwrap();
    let pvh = with_pvh(bz.clone(), &cache);
    assert_eq!(pvh.protocol, Protocol::Pvh);
    assert!(pvh.image.starts_with(cache.join("pvh")), "{pvh:?}");
    assert_eq!(inspect(&pvh.image).unwrap(), (Protocol::Pvh, None));
    let entry = crate::kernel::pvh::pvh_entry(&fs::read(&pvh.image).unwrap());
    assert!(entry.is_ok(), "{entry:?}");
    assert_eq!(
        (pvh.origin, &pvh.kver, &pvh.modules),
        (Origin::Host, &bz.kver, &bz.modules)
    );
    // The second run reuses the extracted file instead of writing it again.
    let written = fs::metadata(&pvh.image).unwrap().modified().unwrap();
    let again = with_pvh(bz, &cache);
    assert_eq!(again, pvh);
    let reused = fs::metadata(&again.image).unwrap().modified().unwrap();
    assert_eq!(reused, written);
    let names: Vec<_> = fs::read_dir(cache.join("pvh")).unwrap().collect();
    assert_eq!(names.len(), 1, "one vmlinux, no temporaries: {names:?}");
}

#[test]
fn host_kernel_without_config_is_refused() {
    let scratch = Scratch::new("host-no-config");
    let host = FakeHost::new(&scratch.0);
    fs::remove_file(host.config()).unwrap();
    let why = host.choose().unwrap_err();
    let expected = format!(
        "{}: No such file or directory (os error 2) (cannot check the kernel's drivers)",
        host.config().display()
    );
    assert_eq!(why, expected);
}

#[test]
fn host_kernel_without_virtio_mmio_is_refused() {
    let scratch = Scratch::new("host-no-mmio");
    let host = FakeHost::new(&scratch.0);
    let config = fs::read_to_string(host.config()).unwrap();
    assert_eq!(config_value(&config, "CONFIG_VIRTIO_MMIO"), Some("m"));
    let without = config.replace("CONFIG_VIRTIO_MMIO=m", "# CONFIG_VIRTIO_MMIO is not set");
    fs::write(host.config(), without).unwrap();
    assert_eq!(
        host.choose().unwrap_err(),
        "host kernel lacks CONFIG_VIRTIO_MMIO (virtio devices on microvm)"
    );
}

#[test]
fn missing_unreadable_or_bogus_host_image_is_refused() {
    let scratch = Scratch::new("host-bad-image");
    let host = FakeHost::new(&scratch.0);
    let image = host.image();
    fs::remove_file(&image).unwrap();
    let missing = format!(
        "kernel {}: No such file or directory (os error 2)",
        image.display()
    );
    assert_eq!(host.choose().unwrap_err(), missing);
    // Opens but cannot be read (root reads any file, so a directory stands in).
    fs::create_dir(&image).unwrap();
    let unreadable = format!("read {}: Is a directory (os error 21)", image.display());
    assert_eq!(host.choose().unwrap_err(), unreadable);
    fs::remove_dir(&image).unwrap();
    fs::write(&image, b"not a kernel").unwrap();
    let bogus = format!(
        "kernel {}: neither a bzImage nor an ELF vmlinux",
        image.display()
    );
    assert_eq!(host.choose().unwrap_err(), bogus);
}

#[test]
fn release_from_bzimage_header() {
    let mut head = vec![0u8; 0x400];
    head[0x202..0x206].copy_from_slice(b"HdrS");
    head[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    let s = b"6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1\0";
    head[0x300..0x300 + s.len()].copy_from_slice(s);
    assert_eq!(
        bzimage_release(&head).as_deref(),
        Some("6.1.0-56-cloud-amd64")
    );
    head[0x20e..0x210].copy_from_slice(&0xffffu16.to_le_bytes());
    assert_eq!(bzimage_release(&head), None);
}

#[test]
fn config_values() {
    let c = "CONFIG_ACPI=y\nCONFIG_VIRTIO_MMIO=m\n# CONFIG_PVH is not set\nCONFIG_X=n\n";
    assert_eq!(config_value(c, "CONFIG_ACPI"), Some("y"));
    assert_eq!(config_value(c, "CONFIG_VIRTIO_MMIO"), Some("m"));
    assert_eq!(config_value(c, "CONFIG_PVH"), None);
    assert_eq!(config_value(c, "CONFIG_X"), None);
    assert_eq!(config_value(c, "CONFIG_VIRTIO"), None);
}

#[test]
fn pvh_extraction_refuses_non_kernels() {
    let scratch = Scratch::new("pvh-refuses");
    let not_kernel = Path::new("/etc/hostname");
    assert_eq!(pvh_cached(not_kernel, "x", &scratch.0), None);
    assert!(
        !scratch.0.join("pvh").read_dir().unwrap().any(|_| true),
        "no temp left"
    );
    let bz = BootKernel {
        image: not_kernel.to_owned(),
        protocol: Protocol::BzImage,
        origin: Origin::Host,
        kver: Some("x".into()),
        modules: None,
    };
    assert_eq!(with_pvh(bz.clone(), &scratch.0), bz, "kept as it was");
}

#[test]
fn missing_or_bogus_kernel_is_a_clear_error() {
    let err = given(Path::new("/nonexistent/vmlinuz"), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kernel /nonexistent/vmlinuz: No such file or directory (os error 2)"
    );
    assert_eq!(err.exit_code(), 125);
    let err = given(Path::new("/etc/hostname"), None).unwrap_err();
    assert!(err.to_string().contains("neither a bzImage"));
}
