//! Reading numbers and labels out of server replies for the error types.

use std::collections::BTreeSet;
use std::time::Duration;

use bson::{Bson, Document};

/// A positive number of milliseconds (int32, int64 or double) as a duration.
pub(super) fn positive_millis(b: &Bson) -> Option<Duration> {
    let ms = match b {
        Bson::Int32(v) => f64::from(*v),
        #[allow(clippy::cast_precision_loss)]
        Bson::Int64(v) => *v as f64,
        Bson::Double(v) => *v,
        _ => return None,
    };
    if ms.is_finite() && ms > 0.0 {
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    } else {
        None
    }
}

/// An integer-ish BSON value as an i32.
pub(super) fn as_i32(b: &Bson) -> Option<i32> {
    b.as_i64_lossy().and_then(|v| i32::try_from(v).ok())
}

/// A reply's `errorLabels`.
pub(super) fn labels_of(doc: &Document) -> BTreeSet<String> {
    match doc.get_array("errorLabels") {
        Ok(labels) => labels
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Integer-ish BSON values as i64 (int32, int64, double with no fraction).
pub(crate) trait BsonExt {
    fn as_i64_lossy(&self) -> Option<i64>;
}

impl BsonExt for Bson {
    #[allow(clippy::cast_possible_truncation)]
    fn as_i64_lossy(&self) -> Option<i64> {
        match self {
            Bson::Int32(v) => Some(i64::from(*v)),
            Bson::Int64(v) => Some(*v),
            Bson::Double(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(*v as i64),
            _ => None,
        }
    }
}
