//! How the actions answer: a library error as a failure that names the device and says what
//! to do ([`failure`]), and the answers of several LUs as one ([`combine`]: the worst exit
//! wins), which the hook, quickCheck's [`Health`](super::assess::Health) and the fence agent
//! all give.

use lkh_common::{Exit, Failure, Outcome};
use sg_persist::Error;

/// Maps a library error to a failure naming the device and saying what to do.
pub fn failure(e: &Error) -> Failure {
    if e.is_bad_input() {
        return Failure::usage(format!("{e}"));
    }
    if e.is_no_sg_node() {
        return Failure::failed(e.to_string());
    }
    if e.is_unsupported() {
        return Failure::failed(format!(
            "{e}: the disk does not support SCSI-3 persistent reservations; run `lkh-scsipr doctor DEVICE` for the cause"
        ));
    }
    Failure::failed(format!(
        "{e}; check the disk's paths (`lkh-scsipr status DEVICE`)"
    ))
}

/// Worst exit wins: fenced over failed over usage; messages joined.
pub fn combine(results: Vec<Result<String, Failure>>) -> Outcome {
    let mut ok = Vec::new();
    let mut worst: Option<Failure> = None;
    let rank = |e: Exit| match e {
        Exit::Fenced => 3,
        Exit::Failed => 2,
        Exit::Usage => 1,
        Exit::Ok => 0,
    };
    for r in results {
        match r {
            Ok(s) => ok.push(s),
            Err(f) => {
                worst = Some(match worst {
                    None => f,
                    Some(w) => {
                        let exit = if rank(f.exit) > rank(w.exit) {
                            f.exit
                        } else {
                            w.exit
                        };
                        Failure::new(exit, format!("{w}; {f}"))
                    }
                });
            }
        }
    }
    match worst {
        Some(f) => Err(f),
        None => Ok(ok.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_exit_wins() {
        let r = combine(vec![
            Ok("a".into()),
            Err(Failure::failed("b")),
            Err(Failure::fenced("c")),
            Err(Failure::usage("d")),
        ]);
        let f = r.unwrap_err();
        assert_eq!(f.exit, Exit::Fenced);
        assert!(f.message.contains('b') && f.message.contains('c') && f.message.contains('d'));
        assert_eq!(
            combine(vec![Ok("x".into()), Ok("y".into())]).unwrap(),
            "x; y"
        );
    }
}
