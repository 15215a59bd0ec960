use super::*;

const DEP: &str = "\
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/fs/fuse/fuse.ko:
kernel/drivers/char/virtio_console.ko.zst: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio-blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
";

fn db() -> ModuleDb {
    ModuleDb::from_texts(Path::new("/m"), DEP, "kernel/fs/ext4/ext4.ko\n")
}

fn names(mods: &[Module]) -> Vec<&str> {
    mods.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn dependencies_first_each_once() {
    let mods = db()
        .resolve(&["virtio_mmio", "virtiofs", "virtio_console"])
        .unwrap();
    assert_eq!(
        names(&mods),
        [
            "virtio_ring",
            "virtio",
            "virtio_mmio",
            "fuse",
            "virtiofs",
            "virtio_console"
        ]
    );
}

#[test]
fn dashes_and_builtins() {
    let db = db();
    let mods = db.resolve(&["virtio-blk", "ext4"]).unwrap();
    assert_eq!(names(&mods), ["virtio_ring", "virtio", "virtio_blk"]);
    assert!(db.is_builtin("ext4"));
    assert!(db.has_module("virtio-blk") && !db.has_module("ext4"));
}

#[test]
fn missing_module_is_named() {
    let err = db()
        .resolve(&["virtio_mmio", "9p"])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "kernel module 9p is neither built in nor in /m");
    let db = ModuleDb::from_texts(Path::new("/m"), "a.ko: b.ko\n", "");
    assert!(db
        .resolve(&["a"])
        .unwrap_err()
        .to_string()
        .contains("module b "));
}

#[test]
fn cycles_are_errors() {
    let db = ModuleDb::from_texts(Path::new("/m"), "a.ko: b.ko\nb.ko: a.ko\n", "");
    assert!(db
        .resolve(&["a"])
        .unwrap_err()
        .to_string()
        .contains("cycle"));
}

#[test]
fn compressed_names_and_dep_lines() {
    assert_eq!(name_of("x/virtio_console.ko.zst"), "virtio_console");
    assert_eq!(name_of("virtio-blk.ko"), "virtio_blk");
    assert_eq!(uncompressed_rel("a/b.ko.xz"), "a/b.ko");
    assert_eq!(uncompressed_rel("a/b.ko"), "a/b.ko");
    let mods = db().resolve(&["virtio_console"]).unwrap();
    assert_eq!(
        dep_line(&mods[2], &mods),
        "kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko"
    );
    assert_eq!(
        dep_line(&mods[0], &mods),
        "kernel/drivers/virtio/virtio_ring.ko: "
    );
}

/// A minimal ELF64 relocatable file whose only section is `.modinfo` holding `modinfo`.
fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
    let shstrtab = b"\0.modinfo\0.shstrtab\0";
    let data_off = 64u64;
    let strtab_off = data_off + modinfo.len() as u64;
    let sh_off = (strtab_off + shstrtab.len() as u64).next_multiple_of(8);
    let mut f = Vec::new();
    f.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    f.extend(1u16.to_le_bytes()); // ET_REL
    f.extend(62u16.to_le_bytes()); // EM_X86_64
    f.extend(1u32.to_le_bytes());
    f.extend([0u8; 16]); // entry, phoff
    f.extend(sh_off.to_le_bytes());
    f.extend(0u32.to_le_bytes()); // flags
    f.extend([64u16, 0, 0, 64, 3, 2].iter().flat_map(|v| v.to_le_bytes()));
    f.extend(modinfo);
    f.extend(shstrtab);
    f.resize(sh_off as usize, 0);
    let section = |name: u32, ty: u32, off: u64, size: u64| {
        let mut s = Vec::new();
        s.extend(name.to_le_bytes());
        s.extend(ty.to_le_bytes());
        s.extend([0u8; 16]); // flags, addr
        s.extend(off.to_le_bytes());
        s.extend(size.to_le_bytes());
        s.extend([0u8; 8]); // link, info
        s.extend(1u64.to_le_bytes());
        s.extend(0u64.to_le_bytes());
        s
    };
    f.extend(section(0, 0, 0, 0));
    f.extend(section(1, 1, data_off, modinfo.len() as u64));
    f.extend(section(10, 3, strtab_off, shstrtab.len() as u64));
    f
}

#[test]
fn modinfo_depends_field() {
    let elf = elf_with_modinfo(b"license=GPL\0depends=fuse,virtio,virtio-ring\0vermagic=6.1\0");
    assert_eq!(
        modinfo_depends(&elf).unwrap(),
        ["fuse", "virtio", "virtio_ring"]
    );
    let elf = elf_with_modinfo(b"depends=\0name=fuse\0");
    assert!(modinfo_depends(&elf).unwrap().is_empty());
    assert!(modinfo_depends(b"not an elf").is_err());
}

#[test]
fn scanned_directory_without_modules_dep() {
    let dir = std::env::temp_dir().join(format!("mvm-mods-{}", std::process::id()));
    let sub = dir.join("kernel/fs/fuse");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("fuse.ko"), elf_with_modinfo(b"depends=\0")).unwrap();
    std::fs::write(sub.join("virtiofs.ko"), elf_with_modinfo(b"depends=fuse\0")).unwrap();
    std::fs::write(dir.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").unwrap();
    let db = ModuleDb::open(&dir).unwrap();
    let mods = db.resolve(&["virtiofs", "ext4"]).unwrap();
    assert_eq!(names(&mods), ["fuse", "virtiofs"]);
    assert_eq!(mods[1].rel, "kernel/fs/fuse/virtiofs.ko");
    assert_eq!(db.read(&mods[0].rel).unwrap()[..4], *b"\x7fELF");
    std::fs::remove_dir_all(&dir).unwrap();
}
