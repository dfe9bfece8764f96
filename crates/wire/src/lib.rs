//! The MongoDB wire protocol: message header, OP_MSG, OP_QUERY / OP_REPLY, the legacy write
//! opcodes, OP_COMPRESSED and an incremental frame reader.
