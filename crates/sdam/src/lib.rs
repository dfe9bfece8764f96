//! Server discovery and monitoring (SDAM) and server selection: descriptions, their update
//! rules, error handling decisions, the monitor state machine and read-preference selection.
