use super::*;

fn nonce() -> Nonce {
    Nonce::new("r4nd0m-N0nce_1").unwrap()
}

fn sample(outcome: Outcome) -> Record {
    Record {
        outcome,
        marks: Marks {
            start: Some(812_345),
            mounts: Some(815_000),
            modules: Some(814_100),
            exec: Some(816_002),
            exit: Some(901_777),
        },
    }
}

#[test]
fn nonce_validation() {
    assert!(Nonce::new("abc-DEF_123").is_ok());
    assert_eq!(Nonce::new(""), Err(NonceError::Length));
    assert_eq!(Nonce::new(&"a".repeat(65)), Err(NonceError::Length));
    assert!(Nonce::new(&"a".repeat(64)).is_ok());
    assert_eq!(Nonce::new("a b"), Err(NonceError::Character));
    assert_eq!(Nonce::new("a=b"), Err(NonceError::Character));
}

#[test]
fn encode_is_stable() {
    let line = sample(Outcome::Signaled(9)).encode(&nonce());
    let body = "RINIT-STATUS r4nd0m-N0nce_1 v1 code=137 how=signal sig=9 t_start=812345 \
                t_mounts=815000 t_modules=814100 t_exec=816002 t_exit=901777";
    assert_eq!(line, format!("{body} sum={:08x}", fnv1a32(body.as_bytes())));
}

#[test]
fn round_trip_every_outcome() {
    let outcomes = [
        Outcome::Exited(0),
        Outcome::Exited(1),
        Outcome::Exited(42),
        Outcome::Exited(255),
        Outcome::Signaled(15),
        Outcome::NotFound,
        Outcome::NotExecutable,
        Outcome::SetupFailed,
    ];
    for outcome in outcomes {
        let rec = sample(outcome);
        assert_eq!(
            Record::decode_line(&rec.encode(&nonce()), &nonce()),
            Ok(rec)
        );
    }
}

#[test]
fn missing_marks_round_trip() {
    let rec = Record {
        outcome: Outcome::SetupFailed,
        marks: Marks {
            start: Some(1),
            ..Marks::default()
        },
    };
    let line = rec.encode(&nonce());
    assert!(line.contains("t_exec=- t_exit=-"));
    assert_eq!(Record::decode_line(&line, &nonce()), Ok(rec));
}

#[test]
fn prefix_garbage_and_crlf_are_tolerated() {
    let rec = sample(Outcome::Exited(3));
    let line = format!("partial workload output{}\r", rec.encode(&nonce()));
    assert_eq!(Record::decode_line(&line, &nonce()), Ok(rec));
}

#[test]
fn wrong_nonce_is_not_a_record() {
    let line = sample(Outcome::Exited(0)).encode(&Nonce::new("other").unwrap());
    assert_eq!(
        Record::decode_line(&line, &nonce()),
        Err(DecodeError::NotARecord)
    );
}

#[test]
fn tampering_is_detected() {
    let line = sample(Outcome::Exited(0)).encode(&nonce());
    let forged = line.replace("code=0", "code=1");
    assert_eq!(
        Record::decode_line(&forged, &nonce()),
        Err(DecodeError::Checksum)
    );
    let truncated = &line[..line.len() - 3];
    assert_eq!(
        Record::decode_line(truncated, &nonce()),
        Err(DecodeError::Field("sum"))
    );
}

#[test]
fn inconsistent_fields_are_rejected() {
    let body = "RINIT-STATUS r4nd0m-N0nce_1 v1 code=1 how=signal sig=9 t_start=- t_mounts=- \
                t_modules=- t_exec=- t_exit=-";
    let line = format!("{body} sum={:08x}", fnv1a32(body.as_bytes()));
    assert_eq!(
        Record::decode_line(&line, &nonce()),
        Err(DecodeError::Inconsistent)
    );
}

#[test]
fn other_versions_and_extra_fields_are_rejected() {
    for body in [
        "RINIT-STATUS r4nd0m-N0nce_1 v2 code=0 how=exit t_start=- t_mounts=- t_modules=- t_exec=- t_exit=-",
        "RINIT-STATUS r4nd0m-N0nce_1 v1 code=0 how=exit t_start=- t_mounts=- t_modules=- t_exec=- t_exit=- x=1",
        "RINIT-STATUS r4nd0m-N0nce_1 v1 code=0 how=exit t_start=- t_modules=- t_mounts=- t_exec=- t_exit=-",
        "RINIT-STATUS r4nd0m-N0nce_1 v1 code=256 how=exit t_start=- t_mounts=- t_modules=- t_exec=- t_exit=-",
    ] {
        let line = format!("{body} sum={:08x}", fnv1a32(body.as_bytes()));
        assert!(Record::decode_line(&line, &nonce()).is_err(), "{body}");
    }
}

#[test]
fn host_takes_the_last_record() {
    let forged = sample(Outcome::Exited(0)).encode(&nonce());
    let real = sample(Outcome::Exited(7));
    let console = format!(
        "[    0.5] kernel line\n{forged}\nworkload output\nRINIT-STATUS other v1 junk\n{}\n",
        real.encode(&nonce())
    );
    assert_eq!(find_last(&console, &nonce()), Ok(Some(real)));
}

#[test]
fn host_never_falls_back_to_an_earlier_record() {
    let good = sample(Outcome::Exited(0)).encode(&nonce());
    let console = format!("{good}\nRINIT-STATUS r4nd0m-N0nce_1 v1 code=0 garbled\n");
    assert!(find_last(&console, &nonce()).is_err());
    assert_eq!(find_last("no record here\n", &nonce()), Ok(None));
}
