use super::*;

fn words(a: &[OsString]) -> Vec<String> {
    a.iter().map(|w| w.to_string_lossy().into_owned()).collect()
}

fn share(readonly: bool) -> Share {
    Share {
        host: "/srv/root".into(),
        tag: "root".into(),
        readonly,
    }
}

#[test]
fn flavour_from_help_text() {
    assert_eq!(
        flavour_from_help("Usage: virtiofsd --shared-dir <SHARED_DIR> --socket-path <P>"),
        Some(Flavour::Rust)
    );
    assert_eq!(
        flavour_from_help("    -o source=PATH             shared directory tree"),
        Some(Flavour::C)
    );
    assert_eq!(flavour_from_help("usage: something else"), None);
}

#[test]
fn rust_flags() {
    let d = Virtiofsd {
        path: "virtiofsd".into(),
        flavour: Flavour::Rust,
    };
    assert_eq!(
        words(&d.args(&share(true), 3, true)),
        [
            "--fd=3",
            "--shared-dir=/srv/root",
            "--cache=always",
            "--sandbox=namespace",
            "--log-level=error",
            "--readonly"
        ]
    );
    assert_eq!(
        words(&d.args(&share(false), 3, false)),
        [
            "--fd=3",
            "--shared-dir=/srv/root",
            "--cache=auto",
            "--sandbox=none",
            "--log-level=error"
        ]
    );
}

#[test]
fn c_flags() {
    let d = Virtiofsd {
        path: "/usr/lib/qemu/virtiofsd".into(),
        flavour: Flavour::C,
    };
    assert_eq!(
        words(&d.args(&share(false), 3, true)),
        [
            "--fd=3",
            "-o",
            "source=/srv/root",
            "-o",
            "cache=auto",
            "-o",
            "log_level=err"
        ]
    );
}

#[test]
fn installed_daemons_are_recognised() {
    for path in ["/usr/lib/qemu/virtiofsd"] {
        if Path::new(path).is_file() {
            assert_eq!(detect(Path::new(path)), Some(Flavour::C), "{path}");
        }
    }
    assert_eq!(detect(Path::new("/nonexistent/virtiofsd")), None);
}

#[test]
fn last_log_line_skips_blank_lines() {
    let p = std::env::temp_dir().join(format!("mvm-vfs-log-{}", std::process::id()));
    std::fs::write(&p, "first\nsecond error\n\n").unwrap();
    assert_eq!(last_log_line(&p).as_deref(), Some("second error"));
    std::fs::remove_file(&p).unwrap();
}
