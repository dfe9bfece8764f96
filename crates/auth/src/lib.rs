//! MongoDB authentication as sans-I/O conversations: credentials, mechanism negotiation,
//! SCRAM-SHA-1 and SCRAM-SHA-256, PLAIN, MONGODB-X509, speculative authentication and the
//! per-connection credential set.
