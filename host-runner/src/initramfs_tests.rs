use super::*;
use std::io::Write;
use std::process::{Command, Stdio};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("mvm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cpio -t` of an archive given as bytes: the listed names.
fn cpio_list(bytes: &[u8]) -> Vec<String> {
    let mut child = Command::new("cpio")
        .args(["-t", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cpio is installed (x.sh installs it)");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn fake_modules(dir: &Path) -> ModuleDb {
    let sub = dir.join("kernel/fs/fuse");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("fuse.ko"), b"fuse module").unwrap();
    std::fs::write(sub.join("virtiofs.ko"), b"virtiofs module").unwrap();
    ModuleDb::from_texts(
        dir,
        "kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko\nkernel/fs/fuse/fuse.ko:\n",
        "",
    )
}

#[test]
fn archive_holds_init_and_modules_and_is_cached() {
    let t = TempDir::new("initramfs");
    let rinit = t.0.join("rinit");
    std::fs::write(&rinit, b"\x7fELF fake rinit").unwrap();
    let db = fake_modules(&t.0.join("mods"));
    let set = || ModuleSet {
        db: &db,
        kver: "6.1.0-test",
        modules: db.resolve(&["virtiofs"]).unwrap(),
    };
    let inputs = Inputs {
        rinit: &rinit,
        modules: Some(set()),
        busybox: None,
    };
    let cache = t.0.join("cache");
    let path = build(&inputs, &cache).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let names = cpio_list(&bytes);
    for want in [
        "init",
        "dev/console",
        "tmp",
        "lib/modules/6.1.0-test/modules.dep",
        "lib/modules/6.1.0-test/kernel/fs/fuse/fuse.ko",
        "lib/modules/6.1.0-test/kernel/fs/fuse/virtiofs.ko",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    // The same inputs reuse the file; a different rinit gets another one.
    let again = build(&inputs, &cache).unwrap();
    assert_eq!(again, path);
    std::fs::write(&rinit, b"\x7fELF other rinit").unwrap();
    let other = build(
        &Inputs {
            rinit: &rinit,
            modules: Some(set()),
            busybox: None,
        },
        &cache,
    )
    .unwrap();
    assert_ne!(other, path);
}

#[test]
fn spec_is_appended_as_a_second_archive() {
    let t = TempDir::new("initramfs-spec");
    let rinit = t.0.join("rinit");
    std::fs::write(&rinit, b"rinit").unwrap();
    let inputs = Inputs {
        rinit: &rinit,
        modules: None,
        busybox: None,
    };
    let base = build(&inputs, &t.0.join("cache")).unwrap();
    let out = t.0.join("initrd");
    with_spec(&base, "arg true\n", &out).unwrap();
    let base_len = std::fs::metadata(&base).unwrap().len() as usize;
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(base_len % 4096, 0, "whole pages");
    assert_eq!(bytes.len() % 4096, 0, "whole pages");
    assert_eq!(bytes[..base_len], std::fs::read(&base).unwrap()[..]);
    assert_eq!(cpio_list(&bytes[base_len..]), ["rinit.spec"]);
}

#[test]
fn busybox_root_has_applet_links() {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() || !is_static_elf(busybox).unwrap_or(false) {
        eprintln!("skipped: no static /bin/busybox (apt-get install busybox-static)");
        return;
    }
    let t = TempDir::new("initramfs-bb");
    let rinit = t.0.join("rinit");
    std::fs::write(&rinit, b"rinit").unwrap();
    let inputs = Inputs {
        rinit: &rinit,
        modules: None,
        busybox: Some(busybox),
    };
    let path = build(&inputs, &t.0.join("cache")).unwrap();
    let names = cpio_list(&std::fs::read(path).unwrap());
    for want in ["bin/busybox", "bin/sh", "bin/true", "etc/passwd"] {
        assert!(names.iter().any(|n| n == want), "{want}");
    }
}

#[test]
fn static_elf_detection() {
    assert!(is_static_elf(Path::new("/nonexistent")).is_err());
    if Path::new("/bin/ls").is_file() {
        assert!(!is_static_elf(Path::new("/bin/ls")).unwrap());
    }
}
