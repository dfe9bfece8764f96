//! `$where` without a JavaScript engine. The testkit evaluates only the bodies the
//! specification tests send: a boolean literal, optionally after `sleep(N) ||`
//! (`"sleep(2000) || true"`: mongod's shell `sleep` returns `undefined`, so the expression is
//! the literal, after N milliseconds). Every other body is refused at parse time with the
//! error a mongod without a script engine (`--noscripting`) gives:
//! `6108304 "no globalScriptEngine in $where parsing"`, with a note that this is the testkit.
//!
//! The sleep is not taken on the thread that evaluates the filter (that would stall a tokio
//! worker): each evaluation adds its time to a per-thread account, [`take_js_time`] hands the
//! total to the command pipeline, and the connection's task waits that long before it sends
//! the reply. Like on mongod, the time is spent per document the filter is evaluated on.
//! Unlike mongod, a write's effects are applied before the wait rather than after it.

use std::cell::Cell;
use std::time::Duration;

use bson::Bson;

use crate::error::{CmdResult, CommandError};

/// mongod's code for `$where` when it has no script engine (`Location6108304`).
const NO_SCRIPT_ENGINE: i32 = 6_108_304;

thread_local! {
    /// Time the `$where` bodies evaluated on this thread asked to sleep, not yet taken.
    static JS_TIME: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// A `$where` body the testkit can evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WhereBody {
    sleep_ms: u64,
    result: bool,
}

/// Parses a `$where` argument (a string or JavaScript code), refusing what it cannot run.
pub(crate) fn parse_where(arg: &Bson) -> CmdResult<WhereBody> {
    let code = match arg {
        Bson::String(s) => s.as_str(),
        Bson::JavaScriptCode(s) => s.as_str(),
        Bson::JavaScriptCodeWithScope(c) => c.code.as_str(),
        _ => return Err(CommandError::bad_value("$where got bad type")),
    };
    parse_body(code).ok_or_else(|| {
        CommandError::new(
            NO_SCRIPT_ENGINE,
            "",
            "no globalScriptEngine in $where parsing (the testkit has no JavaScript engine; \
             it evaluates only `true`, `false` and `sleep(N) || true|false`)",
        )
    })
}

fn parse_body(code: &str) -> Option<WhereBody> {
    let code = code.trim().trim_end_matches(';').trim();
    let (sleep_ms, rest) = match code.strip_prefix("sleep(") {
        Some(after) => {
            let (ms, rest) = after.split_once(')')?;
            let ms: u64 = ms.trim().parse().ok()?;
            (ms, rest.trim_start().strip_prefix("||")?.trim())
        }
        None => (0, code),
    };
    let result = match rest {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    Some(WhereBody { sleep_ms, result })
}

/// Evaluates a `$where` argument on one document: books its sleep, gives its result.
pub(crate) fn eval_where(arg: &Bson) -> CmdResult<bool> {
    let body = parse_where(arg)?;
    if body.sleep_ms > 0 {
        JS_TIME.with(|t| {
            t.set(t.get().saturating_add(Duration::from_millis(body.sleep_ms)));
        });
    }
    Ok(body.result)
}

/// Takes (and resets) the time this thread's `$where` evaluations asked to sleep.
pub(crate) fn take_js_time() -> Duration {
    JS_TIME.with(|t| t.replace(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_the_testkit_evaluates() {
        assert_eq!(
            parse_body("sleep(2000) || true"),
            Some(WhereBody {
                sleep_ms: 2000,
                result: true
            })
        );
        assert_eq!(
            parse_body(" false; "),
            Some(WhereBody {
                sleep_ms: 0,
                result: false
            })
        );
        assert_eq!(parse_body("this.x == 1"), None);
        assert_eq!(parse_body("sleep(x) || true"), None);
        assert_eq!(parse_body("sleep(1) && true"), None);
        let err = parse_where(&Bson::String("return this.a".into())).unwrap_err();
        assert_eq!(err.code, NO_SCRIPT_ENGINE);
        assert_eq!(
            parse_where(&Bson::Int32(1)).unwrap_err().code,
            crate::error::codes::BAD_VALUE
        );
        take_js_time();
        assert!(eval_where(&Bson::String("sleep(5) || true".into())).unwrap());
        assert!(!eval_where(&Bson::JavaScriptCode("sleep(7) || false".into())).unwrap());
        assert_eq!(take_js_time(), Duration::from_millis(12));
        assert_eq!(take_js_time(), Duration::ZERO);
    }
}
