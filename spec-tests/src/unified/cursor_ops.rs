//! The operations on a cursor entity: `iterateUntilDocumentOrError`, `iterateOnce`, `close`.

use bson::Document;

use super::Fail;
use super::entities::CursorEntity;
use super::ops::{OpResult, Value, allow};

pub(crate) async fn cursor_op(
    c: &tokio::sync::Mutex<CursorEntity>,
    name: &str,
    args: &Document,
) -> OpResult {
    let mut guard = c.lock().await;
    match name {
        "iterateUntilDocumentOrError" => {
            allow(name, args, &[])?;
            let cursor = guard
                .cursor
                .as_mut()
                .ok_or_else(|| Fail::runner(format!("{name} on a closed cursor")))?;
            match cursor.try_next().await? {
                Some(d) => Ok(Value::Root(d)),
                None => {
                    Err(Fail::runner("iterateUntilDocumentOrError: the cursor is exhausted").into())
                }
            }
        }
        "iterateOnce" => {
            allow(name, args, &[])?;
            let cursor = guard
                .cursor
                .as_mut()
                .ok_or_else(|| Fail::runner(format!("{name} on a closed cursor")))?;
            Ok(match cursor.try_next_once().await? {
                Some(d) => Value::Root(d),
                None => Value::None,
            })
        }
        "close" => {
            allow(name, args, &[])?;
            let timeout = super::ops::op_timeout(args)?;
            if let Some(c) = guard.cursor.take() {
                c.close_within(timeout).await;
            }
            Ok(Value::None)
        }
        other => Err(Fail::unsupported(format!("cursor.{other}")).into()),
    }
}
