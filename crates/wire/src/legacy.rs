//! OP_QUERY / OP_REPLY and the legacy write and cursor opcodes (OP_INSERT, OP_UPDATE,
//! OP_DELETE, OP_GET_MORE, OP_KILL_CURSORS).
//!
//! Each message is one type with a lifetime: documents and names are [`Cow`]s, borrowed from
//! the frame when decoded and usually owned when built. `into_owned` detaches a decoded value
//! from its frame.

use std::borrow::Cow;

use bson::{RawDocument, RawDocumentBuf};

use crate::codec::{Reader, encode_with, flags, put_cstr, put_i32, put_i64, put_u32, split_frame};
use crate::error::{Error, Result};
use crate::header::OpCode;

flags! {
    /// OP_QUERY flags.
    QueryFlags {
        /// Bit 1: TailableCursor.
        const TAILABLE_CURSOR = 1 << 1;
        /// Bit 2: SlaveOk (secondaryOk).
        const SECONDARY_OK = 1 << 2;
        /// Bit 3: OplogReplay.
        const OPLOG_REPLAY = 1 << 3;
        /// Bit 4: NoCursorTimeout.
        const NO_CURSOR_TIMEOUT = 1 << 4;
        /// Bit 5: AwaitData.
        const AWAIT_DATA = 1 << 5;
        /// Bit 6: Exhaust.
        const EXHAUST = 1 << 6;
        /// Bit 7: Partial.
        const PARTIAL = 1 << 7;
    }
}

flags! {
    /// OP_REPLY `responseFlags`.
    ReplyFlags {
        /// Bit 0: CursorNotFound (the getMore's cursor id is not valid).
        const CURSOR_NOT_FOUND = 1;
        /// Bit 1: QueryFailure (the single document is an `$err` document).
        const QUERY_FAILURE = 1 << 1;
        /// Bit 2: ShardConfigStale.
        const SHARD_CONFIG_STALE = 1 << 2;
        /// Bit 3: AwaitCapable.
        const AWAIT_CAPABLE = 1 << 3;
    }
}

flags! {
    /// OP_INSERT flags.
    InsertFlags {
        /// Bit 0: ContinueOnError.
        const CONTINUE_ON_ERROR = 1;
    }
}

flags! {
    /// OP_UPDATE flags.
    UpdateFlags {
        /// Bit 0: Upsert.
        const UPSERT = 1;
        /// Bit 1: MultiUpdate.
        const MULTI_UPDATE = 1 << 1;
    }
}

flags! {
    /// OP_DELETE flags.
    DeleteFlags {
        /// Bit 0: SingleRemove.
        const SINGLE_REMOVE = 1;
    }
}

fn owned_doc(d: Cow<'_, RawDocument>) -> Cow<'static, RawDocument> {
    Cow::Owned(d.into_owned())
}

fn owned_str(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

/// OP_QUERY (2004).
#[derive(Debug, Clone, PartialEq)]
pub struct OpQuery<'a> {
    /// Query flags.
    pub flags: QueryFlags,
    /// `db.collection` (`db.$cmd` for commands).
    pub full_collection_name: Cow<'a, str>,
    /// Documents to skip.
    pub number_to_skip: i32,
    /// Batch size (`-1` for commands: one document and close the cursor).
    pub number_to_return: i32,
    /// The query (or command) document.
    pub query: Cow<'a, RawDocument>,
    /// Optional projection.
    pub return_fields_selector: Option<Cow<'a, RawDocument>>,
}

impl<'a> OpQuery<'a> {
    /// A query with no flags, skip 0, return `number_to_return` and no projection.
    #[must_use]
    pub fn new(
        full_collection_name: impl Into<Cow<'a, str>>,
        query: impl Into<Cow<'a, RawDocument>>,
        number_to_return: i32,
    ) -> Self {
        Self {
            flags: QueryFlags::empty(),
            full_collection_name: full_collection_name.into(),
            number_to_skip: 0,
            number_to_return,
            query: query.into(),
            return_fields_selector: None,
        }
    }

    /// A command in OP_QUERY form: `<db>.$cmd`, numberToReturn -1.
    #[must_use]
    pub fn command(db: &str, command: impl Into<Cow<'a, RawDocument>>) -> Self {
        Self::new(format!("{db}.$cmd"), command, -1)
    }

    /// The `getLastError` query old drivers sent right after an unacknowledged-by-default legacy
    /// write: `{getlasterror: 1, <options>}` on `<db>.$cmd`. `options` holds the write concern
    /// fields (`w`, `wtimeout`, `j`, `fsync`).
    #[must_use]
    pub fn get_last_error(db: &str, options: Option<&RawDocument>) -> OpQuery<'static> {
        let mut cmd = RawDocumentBuf::new();
        cmd.append(bson::cstr!("getlasterror"), 1_i32);
        if let Some(options) = options {
            for elem in options.iter_elements().flatten() {
                if let Ok(value) = elem.value() {
                    cmd.append(elem.key(), value);
                }
            }
        }
        OpQuery::new(format!("{db}.$cmd"), cmd, -1)
    }

    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::InteriorNul`] or [`Error::MessageTooLarge`].
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        encode_with(buf, request_id, response_to, OpCode::Query, |buf| {
            put_u32(buf, self.flags.bits());
            put_cstr(buf, &self.full_collection_name, "fullCollectionName")?;
            put_i32(buf, self.number_to_skip);
            put_i32(buf, self.number_to_return);
            buf.extend_from_slice(self.query.as_bytes());
            if let Some(p) = &self.return_fields_selector {
                buf.extend_from_slice(p.as_bytes());
            }
            Ok(())
        })
    }

    /// Decodes a whole OP_QUERY frame.
    ///
    /// # Errors
    /// Any decoding error.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (_, body) = split_frame(frame, OpCode::Query)?;
        Self::decode_body(body)
    }

    pub(crate) fn decode_body(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let flags = QueryFlags::from_bits(r.u32("flags")?);
        let full_collection_name = Cow::Borrowed(r.cstr("fullCollectionName")?);
        let number_to_skip = r.i32("numberToSkip")?;
        let number_to_return = r.i32("numberToReturn")?;
        let query = Cow::Borrowed(r.document("query")?);
        let return_fields_selector = if r.remaining() > 0 {
            Some(Cow::Borrowed(r.document("returnFieldsSelector")?))
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            flags,
            full_collection_name,
            number_to_skip,
            number_to_return,
            query,
            return_fields_selector,
        })
    }

    /// Detaches from the frame.
    #[must_use]
    pub fn into_owned(self) -> OpQuery<'static> {
        OpQuery {
            flags: self.flags,
            full_collection_name: owned_str(self.full_collection_name),
            number_to_skip: self.number_to_skip,
            number_to_return: self.number_to_return,
            query: owned_doc(self.query),
            return_fields_selector: self.return_fields_selector.map(owned_doc),
        }
    }
}

/// OP_REPLY (1).
#[derive(Debug, Clone, PartialEq)]
pub struct OpReply<'a> {
    /// Response flags.
    pub flags: ReplyFlags,
    /// Cursor id (0 when the cursor is exhausted).
    pub cursor_id: i64,
    /// Position of the first document in the cursor.
    pub starting_from: i32,
    /// The documents (`numberReturned` is their count).
    pub documents: Vec<Cow<'a, RawDocument>>,
}

impl<'a> OpReply<'a> {
    /// A reply with no flags, cursor 0 and the given documents.
    #[must_use]
    pub fn new(documents: Vec<Cow<'a, RawDocument>>) -> Self {
        Self {
            flags: ReplyFlags::empty(),
            cursor_id: 0,
            starting_from: 0,
            documents,
        }
    }

    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`].
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        encode_with(buf, request_id, response_to, OpCode::Reply, |buf| {
            put_u32(buf, self.flags.bits());
            put_i64(buf, self.cursor_id);
            put_i32(buf, self.starting_from);
            put_i32(buf, count_i32(self.documents.len())?);
            for d in &self.documents {
                buf.extend_from_slice(d.as_bytes());
            }
            Ok(())
        })
    }

    /// Decodes a whole OP_REPLY frame.
    ///
    /// # Errors
    /// Any decoding error, including a `numberReturned` that does not match the documents.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (_, body) = split_frame(frame, OpCode::Reply)?;
        Self::decode_body(body)
    }

    pub(crate) fn decode_body(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let flags = ReplyFlags::from_bits(r.u32("responseFlags")?);
        let cursor_id = r.i64("cursorID")?;
        let starting_from = r.i32("startingFrom")?;
        let number_returned = r.i32("numberReturned")?;
        let count = usize::try_from(number_returned)
            .ok()
            .filter(|n| *n <= r.remaining() / 5)
            .ok_or(Error::InvalidCount {
                field: "numberReturned",
                value: i64::from(number_returned),
            })?;
        let mut documents = Vec::with_capacity(count);
        for _ in 0..count {
            documents.push(Cow::Borrowed(r.document("OP_REPLY document")?));
        }
        r.finish()?;
        Ok(Self {
            flags,
            cursor_id,
            starting_from,
            documents,
        })
    }

    /// Detaches from the frame.
    #[must_use]
    pub fn into_owned(self) -> OpReply<'static> {
        OpReply {
            flags: self.flags,
            cursor_id: self.cursor_id,
            starting_from: self.starting_from,
            documents: self.documents.into_iter().map(owned_doc).collect(),
        }
    }
}

/// OP_INSERT (2002), legacy.
#[derive(Debug, Clone, PartialEq)]
pub struct OpInsert<'a> {
    /// Insert flags.
    pub flags: InsertFlags,
    /// `db.collection`.
    pub full_collection_name: Cow<'a, str>,
    /// One or more documents.
    pub documents: Vec<Cow<'a, RawDocument>>,
}

impl<'a> OpInsert<'a> {
    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::InteriorNul`], [`Error::MessageTooLarge`].
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        encode_with(buf, request_id, response_to, OpCode::Insert, |buf| {
            put_u32(buf, self.flags.bits());
            put_cstr(buf, &self.full_collection_name, "fullCollectionName")?;
            for d in &self.documents {
                buf.extend_from_slice(d.as_bytes());
            }
            Ok(())
        })
    }

    /// Decodes a whole OP_INSERT frame.
    ///
    /// # Errors
    /// Any decoding error; at least one document is required.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (_, body) = split_frame(frame, OpCode::Insert)?;
        Self::decode_body(body)
    }

    pub(crate) fn decode_body(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let flags = InsertFlags::from_bits(r.u32("flags")?);
        let full_collection_name = Cow::Borrowed(r.cstr("fullCollectionName")?);
        let mut documents = Vec::new();
        while r.remaining() > 0 {
            documents.push(Cow::Borrowed(r.document("OP_INSERT document")?));
        }
        if documents.is_empty() {
            return Err(Error::Truncated("OP_INSERT document"));
        }
        Ok(Self {
            flags,
            full_collection_name,
            documents,
        })
    }

    /// Detaches from the frame.
    #[must_use]
    pub fn into_owned(self) -> OpInsert<'static> {
        OpInsert {
            flags: self.flags,
            full_collection_name: owned_str(self.full_collection_name),
            documents: self.documents.into_iter().map(owned_doc).collect(),
        }
    }
}

/// OP_UPDATE (2001), legacy.
#[derive(Debug, Clone, PartialEq)]
pub struct OpUpdate<'a> {
    /// `db.collection`.
    pub full_collection_name: Cow<'a, str>,
    /// Update flags.
    pub flags: UpdateFlags,
    /// Which documents to update.
    pub selector: Cow<'a, RawDocument>,
    /// The update (operators or replacement).
    pub update: Cow<'a, RawDocument>,
}

impl<'a> OpUpdate<'a> {
    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::InteriorNul`], [`Error::MessageTooLarge`].
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        encode_with(buf, request_id, response_to, OpCode::Update, |buf| {
            put_i32(buf, 0);
            put_cstr(buf, &self.full_collection_name, "fullCollectionName")?;
            put_u32(buf, self.flags.bits());
            buf.extend_from_slice(self.selector.as_bytes());
            buf.extend_from_slice(self.update.as_bytes());
            Ok(())
        })
    }

    /// Decodes a whole OP_UPDATE frame.
    ///
    /// # Errors
    /// Any decoding error.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (_, body) = split_frame(frame, OpCode::Update)?;
        Self::decode_body(body)
    }

    pub(crate) fn decode_body(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let full_collection_name = Cow::Borrowed(r.cstr("fullCollectionName")?);
        let flags = UpdateFlags::from_bits(r.u32("flags")?);
        let selector = Cow::Borrowed(r.document("selector")?);
        let update = Cow::Borrowed(r.document("update")?);
        r.finish()?;
        Ok(Self {
            full_collection_name,
            flags,
            selector,
            update,
        })
    }

    /// Detaches from the frame.
    #[must_use]
    pub fn into_owned(self) -> OpUpdate<'static> {
        OpUpdate {
            full_collection_name: owned_str(self.full_collection_name),
            flags: self.flags,
            selector: owned_doc(self.selector),
            update: owned_doc(self.update),
        }
    }
}

/// OP_DELETE (2006), legacy.
#[derive(Debug, Clone, PartialEq)]
pub struct OpDelete<'a> {
    /// `db.collection`.
    pub full_collection_name: Cow<'a, str>,
    /// Delete flags.
    pub flags: DeleteFlags,
    /// Which documents to delete.
    pub selector: Cow<'a, RawDocument>,
}

impl<'a> OpDelete<'a> {
    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::InteriorNul`], [`Error::MessageTooLarge`].
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        encode_with(buf, request_id, response_to, OpCode::Delete, |buf| {
            put_i32(buf, 0);
            put_cstr(buf, &self.full_collection_name, "fullCollectionName")?;
            put_u32(buf, self.flags.bits());
            buf.extend_from_slice(self.selector.as_bytes());
            Ok(())
        })
    }

    /// Decodes a whole OP_DELETE frame.
    ///
    /// # Errors
    /// Any decoding error.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (_, body) = split_frame(frame, OpCode::Delete)?;
        Self::decode_body(body)
    }

    pub(crate) fn decode_body(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let full_collection_name = Cow::Borrowed(r.cstr("fullCollectionName")?);
        let flags = DeleteFlags::from_bits(r.u32("flags")?);
        let selector = Cow::Borrowed(r.document("selector")?);
        r.finish()?;
        Ok(Self {
            full_collection_name,
            flags,
            selector,
        })
    }

    /// Detaches from the frame.
    #[must_use]
    pub fn into_owned(self) -> OpDelete<'static> {
        OpDelete {
            full_collection_name: owned_str(self.full_collection_name),
            flags: self.flags,
            selector: owned_doc(self.selector),
        }
    }
}

/// OP_GET_MORE (2005), legacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpGetMore<'a> {
    /// `db.collection`.
    pub full_collection_name: Cow<'a, str>,
    /// Batch size.
    pub number_to_return: i32,
    /// The cursor to continue.
    pub cursor_id: i64,
}

impl<'a> OpGetMore<'a> {
    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::InteriorNul`].
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        encode_with(buf, request_id, response_to, OpCode::GetMore, |buf| {
            put_i32(buf, 0);
            put_cstr(buf, &self.full_collection_name, "fullCollectionName")?;
            put_i32(buf, self.number_to_return);
            put_i64(buf, self.cursor_id);
            Ok(())
        })
    }

    /// Decodes a whole OP_GET_MORE frame.
    ///
    /// # Errors
    /// Any decoding error.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (_, body) = split_frame(frame, OpCode::GetMore)?;
        Self::decode_body(body)
    }

    pub(crate) fn decode_body(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let full_collection_name = Cow::Borrowed(r.cstr("fullCollectionName")?);
        let number_to_return = r.i32("numberToReturn")?;
        let cursor_id = r.i64("cursorID")?;
        r.finish()?;
        Ok(Self {
            full_collection_name,
            number_to_return,
            cursor_id,
        })
    }

    /// Detaches from the frame.
    #[must_use]
    pub fn into_owned(self) -> OpGetMore<'static> {
        OpGetMore {
            full_collection_name: owned_str(self.full_collection_name),
            number_to_return: self.number_to_return,
            cursor_id: self.cursor_id,
        }
    }
}

/// OP_KILL_CURSORS (2007), legacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpKillCursors {
    /// The cursors to close.
    pub cursor_ids: Vec<i64>,
}

impl OpKillCursors {
    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`].
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        encode_with(buf, request_id, response_to, OpCode::KillCursors, |buf| {
            put_i32(buf, 0);
            put_i32(buf, count_i32(self.cursor_ids.len())?);
            for id in &self.cursor_ids {
                put_i64(buf, *id);
            }
            Ok(())
        })
    }

    /// Decodes a whole OP_KILL_CURSORS frame.
    ///
    /// # Errors
    /// Any decoding error, including a count that does not match the ids that follow.
    pub fn decode(frame: &[u8]) -> Result<Self> {
        let (_, body) = split_frame(frame, OpCode::KillCursors)?;
        Self::decode_body(body)
    }

    pub(crate) fn decode_body(body: &[u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let n = r.i32("numberOfCursorIDs")?;
        let count = usize::try_from(n)
            .ok()
            .filter(|c| c.checked_mul(8) == Some(r.remaining()))
            .ok_or(Error::InvalidCount {
                field: "numberOfCursorIDs",
                value: i64::from(n),
            })?;
        let mut cursor_ids = Vec::with_capacity(count);
        for _ in 0..count {
            cursor_ids.push(r.i64("cursorIDs")?);
        }
        Ok(Self { cursor_ids })
    }
}

fn count_i32(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::MessageTooLarge {
        size: n,
        max: crate::codec::MAX_I32_LEN,
    })
}
