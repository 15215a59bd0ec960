use super::*;

fn run_args(argv: &[&str]) -> Result<RunArgs, clap::Error> {
    let full: Vec<&str> = ["mvm", "run"].iter().chain(argv).copied().collect();
    match Cli::try_parse_from(full)?.command {
        Command::Run(args) => Ok(*args),
        other => panic!("not run: {other:?}"),
    }
}

#[test]
fn command_after_double_dash_keeps_its_options() {
    let a = run_args(&["-m", "1G", "--", "sh", "-c", "exit 42"]).unwrap();
    assert_eq!(a.memory_mib, 1024);
    assert_eq!(a.command, ["sh", "-c", "exit 42"]);
    let a = run_args(&["ls", "-l", "/"]).unwrap();
    assert_eq!(a.command, ["ls", "-l", "/"]);
}

#[test]
fn defaults() {
    let a = run_args(&["--", "true"]).unwrap();
    assert_eq!(a.firmware, FirmwareChoice::Fw);
    assert_eq!(a.accel, AccelChoice::Auto);
    assert_eq!((a.memory_mib, a.cpus), (256, 1));
    assert!(a.timeout.is_none() && a.volumes.is_empty() && !a.rw);
}

#[test]
fn all_options() {
    let a = run_args(&[
        "--firmware",
        "qboot",
        "--kernel",
        "/k",
        "--root",
        "/r",
        "--rw",
        "-v",
        "/a:/mnt/a:ro",
        "-v",
        "/b:/b",
        "-w",
        "/mnt/a",
        "-e",
        "A=1",
        "-c",
        "2",
        "--timeout",
        "1500ms",
        "--accel",
        "tcg",
        "--console",
        "--timings",
        "--print-cmd",
        "--",
        "x",
    ])
    .unwrap();
    assert_eq!(a.firmware, FirmwareChoice::Qboot);
    assert_eq!(a.volumes.len(), 2);
    assert!(a.volumes[0].readonly && !a.volumes[1].readonly);
    assert_eq!(a.env, ["A=1"]);
    assert_eq!(a.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(a.accel, AccelChoice::Tcg);
    assert!(a.console && a.timings && a.print_cmd && a.rw);
}

#[test]
fn option_validation_errors() {
    assert!(run_args(&[]).is_err(), "CMD is required");
    assert!(run_args(&["--root", "/r", "--disk", "d.img", "--", "x"]).is_err());
    assert!(run_args(&["-m", "lots", "--", "x"]).is_err());
    assert!(run_args(&["-c", "0", "--", "x"]).is_err());
    assert!(run_args(&["--timeout", "soon", "--", "x"]).is_err());
    assert!(run_args(&["--accel", "hvf", "--", "x"]).is_err());
    assert!(run_args(&["-v", "/a", "--", "x"]).is_err());
}

#[test]
fn firmware_values() {
    assert_eq!(parse_firmware("seabios"), Ok(FirmwareChoice::Seabios));
    assert_eq!(
        parse_firmware("/x/rom.bin"),
        Ok(FirmwareChoice::Path("/x/rom.bin".into()))
    );
    assert!(parse_firmware("").is_err());
}

#[test]
fn volumes() {
    let v = parse_volume("/home/u/src:/src:ro").unwrap();
    assert_eq!(
        v,
        Volume {
            host: "/home/u/src".into(),
            guest: "/src".into(),
            readonly: true
        }
    );
    assert!(!parse_volume("rel:/x:rw").unwrap().readonly);
    assert!(parse_volume("/a:relative").is_err());
    assert!(parse_volume("/a:/").is_err());
    assert!(parse_volume(":/x").is_err());
    assert!(parse_volume("/a:/x y").is_err());
}

#[test]
fn env_values() {
    assert_eq!(parse_env("A=b=c").unwrap(), "A=b=c");
    assert_eq!(parse_env("EMPTY=").unwrap(), "EMPTY=");
    assert!(parse_env("=x").is_err());
    assert!(parse_env("MVM_SURELY_UNSET_VARIABLE").is_err());
    std::env::set_var("MVM_CLI_TEST_VAR", "v1");
    assert_eq!(
        parse_env("MVM_CLI_TEST_VAR").unwrap(),
        "MVM_CLI_TEST_VAR=v1"
    );
}

#[test]
fn memory_sizes() {
    assert_eq!(parse_memory("256"), Ok(256));
    assert_eq!(parse_memory("256M"), Ok(256));
    assert_eq!(parse_memory("2g"), Ok(2048));
    assert_eq!(parse_memory("512MiB"), Ok(512));
    assert!(parse_memory("8").is_err());
    assert!(parse_memory("1T").is_err());
    assert!(parse_memory("-1").is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
    for bad in ["", "0", "x", "5 parsecs", "-3s", "1e400"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
}

#[test]
fn help_shows_examples() {
    let err = Cli::try_parse_from(["mvm", "run", "--help"]).unwrap_err();
    assert!(err.to_string().contains("mvm run -- uname -a"));
}
