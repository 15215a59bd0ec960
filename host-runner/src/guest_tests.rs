use super::*;

fn cfg(argv: &[&str]) -> GuestConfig {
    GuestConfig {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        cwd: None,
        root: GuestRoot::Initramfs,
        mounts: Vec::new(),
        modules: Vec::new(),
        nonce: Nonce::new("n1").unwrap(),
        debug: false,
        debug_exit: true,
        wait_port_ms: 0,
        stdio: [None, None, None],
        hold_ms: 0,
        term: None,
        winsize: None,
        resize_port: None,
    }
}

#[test]
fn simple_run_fits_the_command_line() {
    let e = cfg(&["true"]).encode();
    assert_eq!(e.cmdline, "rinit.nonce=n1 rinit.debugexit -- true");
    assert_eq!(e.spec, None);
}

#[test]
fn spaces_are_quoted() {
    let mut c = cfg(&["sh", "-c", "exit 42", "K=a b"]);
    c.env = vec!["GREETING=hello world".into()];
    c.cwd = Some("/tmp".into());
    let e = c.encode();
    assert_eq!(
        e.cmdline,
        "rinit.nonce=n1 rinit.debugexit rinit.cwd=/tmp rinit.env=\"GREETING=hello world\" -- sh -c \"exit 42\" K=\"a b\""
    );
}

#[test]
fn roots_mounts_modules() {
    let mut c = cfg(&["ls"]);
    c.root = GuestRoot::Virtiofs {
        tag: "root".into(),
        ro: true,
        overlay: false,
    };
    c.mounts = vec![GuestMount {
        tag: "v0".into(),
        path: "/src".into(),
        ro: true,
    }];
    c.modules = vec!["virtio_mmio".into(), "virtiofs".into()];
    c.debug = true;
    c.debug_exit = false;
    let e = c.encode();
    assert_eq!(
        e.cmdline,
        "rinit.nonce=n1 rinit.modules=virtio_mmio,virtiofs rinit.root=virtiofs:root rinit.ro=1 rinit.mount=v0:/src:ro rinit.debug -- ls"
    );
    c.root = GuestRoot::Block {
        device: "/dev/vda".into(),
        fstype: "ext4".into(),
        ro: false,
    };
    c.mounts.clear();
    assert!(c
        .encode()
        .cmdline
        .contains("rinit.root=/dev/vda rinit.rootfstype=ext4 rinit.ro=0"));
}

#[test]
fn overlay_root() {
    let mut c = cfg(&["true"]);
    c.root = GuestRoot::Virtiofs {
        tag: "mvmroot".into(),
        ro: true,
        overlay: true,
    };
    assert_eq!(
        c.encode().cmdline,
        "rinit.nonce=n1 rinit.debugexit rinit.root=virtiofs:mvmroot rinit.ro=1 rinit.overlay -- true"
    );
    assert!(c.spec().contains("ro 1\noverlay\n"));
}

#[test]
fn quotes_newlines_and_empty_words_go_to_the_spec() {
    for argv in [
        &["echo", "say \"hi\""][..],
        &["printf", "a\nb"],
        &["echo", ""],
    ] {
        let e = cfg(argv).encode();
        assert_eq!(e.cmdline, "rinit.nonce=n1 rinit.debugexit", "{argv:?}");
        assert!(e.spec.is_some());
    }
    let mut c = cfg(&["printf", "a\\n\tb\nc", "say \"hi\""]);
    c.env = vec!["X=1".into()];
    c.debug = true;
    assert_eq!(
        c.spec(),
        "# written by mvm\nenv X=1\ndebug\narg printf\narg a\\\\n\\tb\\nc\narg say \"hi\"\n"
    );
}

#[test]
fn long_lines_go_to_the_spec() {
    let long = "x".repeat(MAX_CMDLINE);
    let e = cfg(&["echo", &long]).encode();
    assert!(e.spec.is_some());
    assert!(e.cmdline.len() < 100);
}

#[test]
fn streams_hold_and_terminal() {
    let c = GuestConfig {
        stdio: [Some("null".into()), Some("rinit.stdout".into()), None],
        hold_ms: 10000,
        term: Some("xterm-256color".into()),
        winsize: Some((40, 120)),
        resize_port: Some("rinit.resize".into()),
        ..cfg(&["true"])
    };
    let line = c.encode().cmdline;
    assert!(
        line.contains("rinit.stdin=null rinit.stdout=rinit.stdout rinit.hold=10000 rinit.term=xterm-256color rinit.rows=40 rinit.cols=120 rinit.resize=rinit.resize -- true"),
        "{line}"
    );
    assert!(!line.contains("rinit.stderr"), "{line}");
}
