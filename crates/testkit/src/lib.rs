//! An in-process MongoDB wire-protocol server for tests, examples and benchmarks.
