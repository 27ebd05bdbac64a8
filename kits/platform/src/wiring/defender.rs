//! lkh-scsipr's defender, judged where its resources are wired: a node that holds SCSI-3
//! reservations without `lkh-scsipr watch` running loses its disks to a node that stops
//! hearing it. One finding, whatever the number of lkh-scsipr resources.

use super::findings::{Finding, Level, Report};

/// lkh-scsipr resources are wired on this node: its defender (`lkh-scsipr watch`, which holds
/// `<run dir>/scsipr/watch.pid` while it runs and renews it every second) must run here, or a
/// node that stops hearing this one takes the disks this node holds after the challenge
/// window. A standby node needs it as much: it is the holder after a failover.
pub(super) fn check_defender(tags: &[String], report: &mut Report) {
    let run = lkh_common::runstate::RunDir::new("scsipr");
    let file = run.path().join("watch.pid");
    let (level, what) = match run.daemon("watch") {
        Ok(Some(d)) if d.since_beat.is_some_and(|a| a.as_secs() < 10) => (
            Level::Ok,
            format!(
                "lkh-scsipr watch (pid {}) runs and defends the disks of {}",
                d.pid,
                tags.join(", ")
            ),
        ),
        Ok(Some(d)) => (
            Level::Warning,
            format!(
                "lkh-scsipr watch (pid {}) has not ticked for {} s: it is stopped or stuck, so nothing defends the disks of {} this node holds",
                d.pid,
                d.since_beat.map_or("?".into(), |a| a.as_secs().to_string()),
                tags.join(", ")
            ),
        ),
        Ok(None) => (
            Level::Warning,
            format!(
                "no lkh-scsipr watch runs on this node: nothing defends the disks of {} while this node holds them (a node that stops hearing this one takes them after the challenge window) and nothing acts on ON_FENCED",
                tags.join(", ")
            ),
        ),
        Err(f) => (
            Level::Warning,
            format!("cannot tell whether lkh-scsipr watch runs: {f}"),
        ),
    };
    let remedy = if level == Level::Ok {
        String::new()
    } else {
        "systemctl enable --now lkh-scsipr-watch (or restart it)".into()
    };
    report
        .findings
        .push(Finding::new(level, None, &file, what, remedy));
}
