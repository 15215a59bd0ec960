use super::*;
use crate::config::{Config, RootSource};

fn word(param: &str, value: Option<&str>) -> Word {
    Word {
        param: param.into(),
        value: value.map(Into::into),
    }
}

fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (w, next) = next_word(rest);
        out.push(w);
        rest = next;
    }
    out
}

#[test]
fn kernel_word_splitting() {
    assert_eq!(
        words("console=ttyS0  quiet  rinit.debug"),
        vec![
            word("console", Some("ttyS0")),
            word("quiet", None),
            word("rinit.debug", None)
        ]
    );
}

#[test]
fn kernel_quoting_rules() {
    // Quoted value, quoted word, quote in the middle (kept), empty quoted value.
    assert_eq!(words(r#"k="a b""#), vec![word("k", Some("a b"))]);
    assert_eq!(words(r#""k=a b""#), vec![word("k", Some("a b"))]);
    assert_eq!(words(r#""hello world""#), vec![word("hello world", None)]);
    assert_eq!(words(r#"a"b c"d"#), vec![word(r#"a"b c"d"#, None)]);
    assert_eq!(words(r#"k="""#), vec![word("k", Some(""))]);
    assert_eq!(words(r#"k=""#), vec![word("k", Some(""))]);
    assert_eq!(words(r#"k=a"b c""#), vec![word("k", Some(r#"a"b c""#))]);
    // An unterminated quote runs to the end of the line.
    assert_eq!(words(r#"k="a b"#), vec![word("k", Some("a b"))]);
    // '=' only counts after the first byte, and only the first one.
    assert_eq!(
        words("=x a=b=c"),
        vec![word("=x", None), word("a", Some("b=c"))]
    );
}

#[test]
fn utf8_survives() {
    assert_eq!(
        words("rinit.hostname=ünï köd"),
        vec![word("rinit.hostname", Some("ünï")), word("köd", None)]
    );
}

#[test]
fn argv_after_dashes() {
    let c =
        parse(r#"console=ttyS0 rinit.nonce=abc -- /bin/sh -c "echo hi" X="1 2" rinit.debug --"#);
    assert_eq!(c.keys, vec![word("nonce", Some("abc"))]);
    assert_eq!(
        c.argv,
        ["/bin/sh", "-c", "echo hi", "X=1 2", "rinit.debug", "--"]
    );
}

#[test]
fn trailing_newline_and_nul() {
    let c = parse("rinit.debug -- /bin/true\n");
    assert_eq!(c.argv, ["/bin/true"]);
    assert_eq!(parse("  \n\0").keys, vec![]);
}

#[test]
fn quoted_dashes_are_an_argument_of_the_kernel() {
    // `"--"` is still the word `--` once unquoted (the kernel compares after unquoting).
    let c = parse(r#""--" /bin/x"#);
    assert_eq!(c.argv, ["/bin/x"]);
}

#[test]
fn full_configuration() {
    let c = parse(
        "console=ttyS0 rinit.nonce=N1 rinit.debug rinit.env=A=1 rinit.env=\"B=two words\" \
         rinit.cwd=/work rinit.uid=1000 rinit.gid=100 rinit.hostname=box \
         rinit.modules=virtio_mmio,virtiofs rinit.modules=ext4 rinit.root=virtiofs:ROOTFS rinit.ro \
         rinit.mount=data:/mnt/data:ro rinit.mount=out:/out rinit.console=hvc0 rinit.debugexit \
         rinit.reboot rinit.grace=250 rinit.status=st -- prog arg",
    );
    let mut cfg = Config::default();
    c.apply(&mut cfg).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.argv, ["prog", "arg"]);
    assert_eq!(cfg.nonce.as_str(), "N1");
    assert!(cfg.debug && cfg.reboot);
    assert_eq!(cfg.env, ["A=1", "B=two words"]);
    assert_eq!((cfg.cwd.as_str(), cfg.uid, cfg.gid), ("/work", 1000, 100));
    assert_eq!(cfg.hostname, "box");
    assert_eq!(cfg.modules, ["virtio_mmio", "virtiofs", "ext4"]);
    let root = cfg.root.as_ref().unwrap();
    assert_eq!(root.source, RootSource::Virtiofs("ROOTFS".into()));
    assert!(root.ro);
    assert_eq!(root.fstype, "virtiofs");
    assert_eq!(cfg.mounts.len(), 2);
    assert!(cfg.mounts[0].ro && !cfg.mounts[1].ro);
    assert_eq!(cfg.mounts[1].path, "/out");
    assert_eq!(cfg.console.as_deref(), Some("hvc0"));
    assert_eq!(cfg.debug_exit, Some(0xf4));
    assert_eq!(cfg.grace_ms, 250);
    assert_eq!(cfg.status_port, "st");
    assert!(cfg.warnings.is_empty());
}

#[test]
fn unknown_keys_warn() {
    let mut cfg = Config::default();
    parse("rinit.frobnicate=1 rinit.debug -- x")
        .apply(&mut cfg)
        .unwrap();
    assert_eq!(cfg.warnings, ["unknown key rinit.frobnicate ignored"]);
    assert!(cfg.debug);
}

#[test]
fn over_long_values_are_errors() {
    let mut cfg = Config::default();
    let long = format!("rinit.hostname={} -- x", "h".repeat(65));
    let err = parse(&long).apply(&mut cfg).unwrap_err().to_string();
    assert_eq!(err, "rinit.hostname: value is 65 bytes, the limit is 64");
    let nonce = format!("rinit.nonce={}", "n".repeat(65));
    assert!(parse(&nonce).apply(&mut Config::default()).is_err());
    let module = format!("rinit.modules=a,{}", "m".repeat(56));
    assert!(parse(&module).apply(&mut Config::default()).is_err());
}

#[test]
fn bad_values_are_errors() {
    for text in [
        "rinit.uid=root",
        "rinit.uid",
        "rinit.cwd=relative",
        "rinit.root=sda",
        "rinit.root=virtiofs:",
        "rinit.mount=tag",
        "rinit.mount=tag:rel",
        "rinit.env=NOVALUE",
        "rinit.debug=yes",
        "rinit.nonce=a.b",
        "rinit.debugexit=zz",
        "rinit.modules=../x",
        "rinit.term=a;b",
        "rinit.term",
        "rinit.cols=0",
        "rinit.rows=65536",
        "rinit.rows=-1",
    ] {
        assert!(parse(text).apply(&mut Config::default()).is_err(), "{text}");
    }
}

#[test]
fn flags_accept_zero_and_one() {
    let mut cfg = Config::default();
    parse("rinit.debug=1 rinit.reboot=0 rinit.debugexit=0x501")
        .apply(&mut cfg)
        .unwrap();
    assert!(cfg.debug && !cfg.reboot);
    assert_eq!(cfg.debug_exit, Some(0x501));
}

#[test]
fn block_root_options() {
    let mut cfg = Config::default();
    parse("rinit.rootfstype=xfs rinit.root=/dev/vda rinit.rootflags=noatime -- x")
        .apply(&mut cfg)
        .unwrap();
    let root = cfg.root.unwrap();
    assert_eq!(root.source, RootSource::Block("/dev/vda".into()));
    assert_eq!(
        (root.fstype.as_str(), root.data.as_deref(), root.ro),
        ("xfs", Some("noatime"), false)
    );
}

#[test]
fn overlay_flag() {
    let mut cfg = Config::default();
    parse("rinit.root=virtiofs:R rinit.ro -- x")
        .apply(&mut cfg)
        .unwrap();
    assert!(!cfg.root.as_ref().unwrap().overlay);
    parse("rinit.overlay").apply(&mut cfg).unwrap();
    let root = cfg.root.as_ref().unwrap();
    assert!(root.overlay && root.ro);
    assert_eq!(root.source, RootSource::Virtiofs("R".into()));
    cfg.validate().unwrap();
    parse("rinit.overlay=0").apply(&mut cfg).unwrap();
    assert!(!cfg.root.as_ref().unwrap().overlay);
    assert!(parse("rinit.overlay=yes")
        .apply(&mut Config::default())
        .is_err());
    // Like `ro`, it needs a root.
    let mut cfg = Config::default();
    parse("rinit.overlay -- x").apply(&mut cfg).unwrap();
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("without rinit.root"), "{err}");
}

#[test]
fn validation() {
    let mut cfg = Config::default();
    assert!(cfg.validate().is_err()); // no workload
    parse("rinit.ro -- x").apply(&mut cfg).unwrap();
    assert!(cfg.validate().is_err()); // ro without root
}

#[test]
fn spec_path_and_arg_key() {
    let c = parse("rinit.spec=/a rinit.spec=/b rinit.arg=x");
    assert_eq!(c.spec_path(), Some("/b"));
    let mut cfg = Config::default();
    c.apply(&mut cfg).unwrap();
    assert!(cfg.argv.is_empty());
    assert_eq!(cfg.warnings.len(), 1);
}

#[test]
fn terminal_type_and_window_size() {
    let mut cfg = Config::default();
    assert_eq!(
        (cfg.term.as_str(), cfg.cols, cfg.rows),
        ("linux", None, None)
    );
    parse("rinit.term=xterm-256color rinit.cols=132 rinit.rows=43 -- x")
        .apply(&mut cfg)
        .unwrap();
    assert_eq!(
        (cfg.term.as_str(), cfg.cols, cfg.rows),
        ("xterm-256color", Some(132), Some(43))
    );
    parse("rinit.term=screen.linux rinit.term=rxvt+pcfkeys rinit.rows=65535")
        .apply(&mut cfg)
        .unwrap();
    assert_eq!((cfg.term.as_str(), cfg.rows), ("rxvt+pcfkeys", Some(65535)));
    let long = format!("rinit.term={}", "t".repeat(65));
    assert!(parse(&long).apply(&mut Config::default()).is_err());
}

#[test]
fn standard_stream_keys() {
    use crate::config::Stream;
    let mut cfg = Config::default();
    assert_eq!(
        cfg.stdio,
        [Stream::Console, Stream::Console, Stream::Console]
    );
    parse("rinit.stdin=null rinit.stdout=rinit.stdout rinit.stderr=console rinit.hold=5000 -- x")
        .apply(&mut cfg)
        .unwrap();
    assert_eq!(
        cfg.stdio,
        [
            Stream::Null,
            Stream::Port("rinit.stdout".into()),
            Stream::Console
        ]
    );
    assert_eq!(cfg.hold_ms, 5000);
    cfg.validate().unwrap();
    // One port cannot be both stdout and stderr.
    parse("rinit.stderr=rinit.stdout").apply(&mut cfg).unwrap();
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("same port"), "{err}");
    // A stream needs a value.
    assert!(parse("rinit.stdout").apply(&mut Config::default()).is_err());
    assert!(parse("rinit.hold=soon")
        .apply(&mut Config::default())
        .is_err());
}
