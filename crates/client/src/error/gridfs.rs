//! The GridFS specification's errors ([`GridFsError`]), carried by
//! [`ErrorKind::GridFs`](super::ErrorKind::GridFs): a stored file that is missing or
//! inconsistent, and misuse of an upload stream. They are client errors: no server reply
//! carries them.

use bson::Bson;

/// What went wrong in a GridFS operation, as the GridFS specification names it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridFsError {
    /// No files collection document has this id (download, delete, rename).
    #[error("GridFS: no file with id {id}")]
    FileNotFound {
        /// The id asked for.
        id: Bson,
    },
    /// No files collection document has this filename (download, delete or rename by
    /// name).
    #[error("GridFS: no file named {filename:?}")]
    FileNameNotFound {
        /// The filename asked for.
        filename: String,
    },
    /// Files with this name exist, but not the revision asked for.
    #[error("GridFS: file {filename:?} has no revision {revision}")]
    RevisionNotFound {
        /// The filename asked for.
        filename: String,
        /// The revision asked for (0 the first, -1 the latest).
        revision: i32,
    },
    /// The chunk with this `n` is not in the chunks collection (the next chunk read had
    /// another `n`, or there were no more).
    #[error("GridFS: chunk {n} of the file is missing")]
    ChunkIsMissing {
        /// The chunk expected next.
        n: i64,
    },
    /// A chunk's data is not as long as the file's length and chunk size say.
    #[error("GridFS: chunk {n} holds {actual} bytes, {expected} expected")]
    ChunkWrongLength {
        /// The chunk's `n`.
        n: i64,
        /// The length the files collection document implies.
        expected: u64,
        /// The length of its `data`.
        actual: u64,
    },
    /// A chunk follows the last one the file's length implies.
    #[error("GridFS: chunk {n} is past the end of the file")]
    ExtraChunk {
        /// The extra chunk's `n`.
        n: i64,
    },
    /// A files collection document or a chunk that is not in the GridFS format (a length
    /// or chunk size that is not a non-negative number, data that is not binary).
    #[error("GridFS: {0}")]
    Corrupt(String),
    /// An upload stream was written to after it was closed or aborted.
    #[error("GridFS: the upload stream is {0}")]
    UploadClosed(&'static str),
}

impl From<GridFsError> for super::Error {
    fn from(e: GridFsError) -> Self {
        super::Error::new(super::ErrorKind::GridFs(e))
    }
}
