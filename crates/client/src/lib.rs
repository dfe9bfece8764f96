//! The client facade: connection strings, options, connections, the topology (one pool and one
//! monitor per server), commands, cursors and command monitoring.
