//! Tests of kernel resolution and the cache layout (no downloads).

use super::*;

#[test]
fn parses_apt_cache_depends() {
    let out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n";
    let kver = parse_depends(out, DEFAULT_PACKAGE);
    assert_eq!(kver.as_deref(), Some("6.1.0-56-cloud-amd64"));
    let odd = "x\n  PreDepends: foo\n |Depends: <virtual>\n  Depends: linux-image-6.2-cloud\n";
    assert_eq!(
        parse_depends(odd, DEFAULT_PACKAGE).as_deref(),
        Some("6.2-cloud")
    );
    assert_eq!(parse_depends("nothing here\n", DEFAULT_PACKAGE), None);
}

#[test]
fn rejects_path_like_kver() {
    assert!(check_kver("6.1.0-56-cloud-amd64").is_ok());
    for bad in ["", "../x", "a/b", ".hidden", "a b"] {
        assert!(check_kver(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn cached_reads_latest_and_checks_completeness() {
    let root = std::env::temp_dir().join(format!("mvm-kernel-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    assert_eq!(cached(&root).unwrap(), None);
    let k = Kernel::at(&root.join("kernels"), "1.2.3-test");
    fs::create_dir_all(&k.modules).unwrap();
    fs::write(&k.vmlinuz, b"bz").unwrap();
    fs::write(root.join("kernels/latest"), "1.2.3-test\n").unwrap();
    assert_eq!(cached(&root).unwrap(), None, "vmlinux missing");
    fs::write(&k.vmlinux, b"elf").unwrap();
    assert_eq!(cached(&root).unwrap(), Some(k));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn fetch_with_pinned_kver_reuses_complete_cache() {
    let root = std::env::temp_dir().join(format!("mvm-fetch-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let k = Kernel::at(&root.join("kernels"), "9.9.9-fake");
    fs::create_dir_all(&k.modules).unwrap();
    for f in [&k.vmlinuz, &k.vmlinux] {
        fs::write(f, b"x").unwrap();
    }
    fs::create_dir_all(root.join("kernels/.tmp-stale-1")).unwrap();
    let opts = FetchOptions {
        cache_dir: root.clone(),
        package: DEFAULT_PACKAGE.into(),
        kver: Some("9.9.9-fake".into()),
    };
    assert_eq!(fetch(&opts).unwrap(), k);
    assert!(!root.join("kernels/.tmp-stale-1").exists());
    assert_eq!(cached(&root).unwrap(), Some(k));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn concurrent_fetches_serialise_on_the_lock() {
    // A cached kernel whose vmlinux is missing: every fetch wants to extract it,
    // and each one removes other fetches' temporary files unless the lock serialises them.
    let root = std::env::temp_dir().join(format!("mvm-lock-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let elf = super::pvh::tests::tiny_elf("Xen", 18, &0x100_0850u64.to_le_bytes());
    let payload = super::bzimage::tests::lz4_payload(&elf, 64);
    let k = Kernel::at(&root.join("kernels"), "9.9.9-lock");
    fs::create_dir_all(&k.modules).unwrap();
    fs::write(
        &k.vmlinuz,
        super::bzimage::tests::fake_image(20, 0x100, &payload),
    )
    .unwrap();
    let opts = FetchOptions {
        cache_dir: root.clone(),
        package: DEFAULT_PACKAGE.into(),
        kver: Some("9.9.9-lock".into()),
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| fetch(&opts))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), k);
        }
    });
    assert_eq!(fs::read(&k.vmlinux).unwrap(), elf);
    fs::remove_dir_all(&root).unwrap();
}
