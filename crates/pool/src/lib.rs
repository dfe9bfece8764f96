//! The CMAP connection pool: a sans-I/O state machine (`PoolCore`) and a tokio driver, generic
//! over what it pools.
