//! The status contract, written once: what every kit's one look at its resource answers.
//!
//! Each kit has one assessment (`assess`: it looks, changes nothing, and returns its typed
//! `Health`). That value implements [`Assessment`]: its [`outcome`](Assessment::outcome) is
//! quickCheck's answer (the one-line summary, or the failure with its exit code) and its
//! [`verdict`](Assessment::verdict) says the same in a few words. Everything else the hooks and
//! `status -t TAG` show of it is derived here, so it cannot differ between kits or between
//! quickCheck and `status`: the exit code, the one message, the `status` line that ends the
//! text form, and the members every JSON form carries (`healthy`, `verdict`, `exit`,
//! `message`).

use std::borrow::Cow;

use crate::exit::{Exit, Outcome};
use crate::json::Json;

/// One look at a resource (see the module docs).
pub trait Assessment {
    /// quickCheck's answer: the one-line summary, or the failure with its exit code (and, for
    /// Pacemaker, its hint: not active here, missing here).
    fn outcome(&self) -> Outcome;

    /// The verdict in a few words: "healthy", "address missing", "fenced", …
    fn verdict(&self) -> Cow<'_, str>;

    /// The exit code quickCheck returns for this look.
    fn exit(&self) -> Exit {
        self.outcome().map_or_else(|f| f.exit, |_| Exit::Ok)
    }

    /// Whether quickCheck would exit 0.
    fn healthy(&self) -> bool {
        self.exit() == Exit::Ok
    }

    /// quickCheck's one message: the summary, or the failure's message.
    fn message(&self) -> String {
        self.outcome().unwrap_or_else(|f| f.message)
    }

    /// The last line of `status`'s text: `exit N: message`.
    fn conclusion(&self) -> String {
        format!("exit {}: {}", self.exit().code(), self.message())
    }

    /// `obj` (a JSON object) with the contract's members appended: `healthy`, `verdict`,
    /// `exit` and `message`, in that order.
    fn json(&self, obj: Json) -> Json {
        obj.with("healthy", self.healthy())
            .with("verdict", self.verdict().as_ref())
            .with("exit", u32::from(self.exit().code()))
            .with("message", self.message())
    }

    /// What `status -t TAG` returns once it has shown this look: quickCheck's exit code, and
    /// nothing more to log (the failure's message is in what was shown).
    fn status(&self) -> Outcome {
        self.outcome().map(|_| String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Failure;

    struct Look(Outcome);

    impl Assessment for Look {
        fn outcome(&self) -> Outcome {
            self.0.clone()
        }
        fn verdict(&self) -> Cow<'_, str> {
            match &self.0 {
                Ok(_) => "healthy".into(),
                Err(f) => format!("bad ({})", f.exit.code()).into(),
            }
        }
    }

    #[test]
    fn exit_message_and_json_come_from_the_outcome() {
        let ok = Look(Ok("disk held".into()));
        assert_eq!(
            (ok.exit(), ok.healthy(), ok.message()),
            (Exit::Ok, true, "disk held".to_owned())
        );
        assert_eq!(ok.conclusion(), "exit 0: disk held");
        assert_eq!(ok.status(), Ok(String::new()));
        let fenced = Look(Err(Failure::fenced("held by node b")));
        assert_eq!(
            (fenced.exit(), fenced.healthy(), fenced.message()),
            (Exit::Fenced, false, "held by node b".to_owned())
        );
        assert_eq!(fenced.conclusion(), "exit 3: held by node b");
        assert_eq!(fenced.status(), Err(Failure::fenced("held by node b")));
        assert_eq!(
            fenced.json(Json::obj().with("tag", "d1")).to_string(),
            r#"{"tag":"d1","healthy":false,"verdict":"bad (3)","exit":3,"message":"held by node b"}"#
        );
    }
}
