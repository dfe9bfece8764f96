//! Uploads: [`GridFsUploadStream`], an [`AsyncWrite`] that stores each full chunk as it fills
//! and the files document when shut down, and `upload_from_stream`, which reads an
//! [`AsyncRead`] to its end. Both check the bucket's indexes before their first write.
//!
//! Cancellation: a chunk insert in flight lives in the stream, not in the caller's future; a
//! dropped `write` / `flush` / `shutdown` leaves it to the next call. A stream dropped before
//! it is shut down leaves its chunks behind as orphans (as a failed upload does); call
//! [`abort`](GridFsUploadStream::abort) to delete them.

use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, doc};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::GridFsBucket;
use crate::client::Collection;
use crate::client::action::BoxFuture;
use crate::crud::GridFsUploadOptions;
use crate::error::{Error, GridFsError, Result};

/// What an upload writes: the file's id and name, its chunks so far and the chunk being
/// filled.
struct Uploader {
    files: Collection<Document>,
    chunks: Collection<Document>,
    id: Bson,
    filename: String,
    metadata: Option<Document>,
    chunk_size: usize,
    /// The `n` of the next chunk.
    n: i32,
    /// Bytes stored in chunks so far.
    length: u64,
    /// The chunk being filled (at most `chunk_size` bytes).
    buf: Vec<u8>,
}

impl Uploader {
    fn is_full(&self) -> bool {
        self.buf.len() >= self.chunk_size
    }

    /// Stores the bytes buffered as chunk `n` (nothing when none are).
    async fn write_chunk(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let n = self.n;
        let next = n
            .checked_add(1)
            .ok_or_else(|| Error::invalid_argument("GridFS: a file of more than 2^31 chunks"))?;
        let bytes = std::mem::take(&mut self.buf);
        let len = bytes.len() as u64;
        let data = Binary {
            subtype: BinarySubtype::Generic,
            bytes,
        };
        let chunk = doc! {
            "_id": ObjectId::new(),
            "files_id": self.id.clone(),
            "n": n,
            "data": data,
        };
        self.chunks.insert_one(chunk).await?;
        self.n = next;
        self.length += len;
        Ok(())
    }

    /// Stores the last chunk and the files document.
    async fn finish(&mut self) -> Result<()> {
        self.write_chunk().await?;
        let length = i64::try_from(self.length)
            .map_err(|_| Error::invalid_argument("GridFS: a file longer than 2^63 bytes"))?;
        let chunk_size = i32::try_from(self.chunk_size)
            .map_err(|_| Error::invalid_argument("GridFS: a chunk size above 2^31"))?;
        let mut file = doc! {
            "_id": self.id.clone(),
            "length": length,
            "chunkSize": chunk_size,
            "uploadDate": DateTime::now(),
            "filename": self.filename.clone(),
        };
        if let Some(m) = self.metadata.take() {
            file.insert("metadata", m);
        }
        self.files.insert_one(file).await?;
        Ok(())
    }

    /// Deletes the chunks stored so far.
    async fn abort(&mut self) -> Result<()> {
        self.buf.clear();
        self.chunks
            .delete_many(doc! {"files_id": self.id.clone()})
            .await?;
        Ok(())
    }
}

impl GridFsBucket {
    /// An uploader for a new file, after the index check.
    async fn uploader(
        &self,
        id: Bson,
        filename: String,
        options: GridFsUploadOptions,
    ) -> Result<Uploader> {
        let chunk_size = options.chunk_size_bytes.unwrap_or(self.inner.chunk_size);
        if chunk_size == 0 || i32::try_from(chunk_size).is_err() {
            return Err(Error::invalid_argument(format!(
                "GridFS: chunkSizeBytes {chunk_size} is not between 1 and 2^31 - 1"
            )));
        }
        // One deadline for the stream's whole life (index check, chunks, files document).
        let this = self.pinned();
        this.ensure_indexes().await?;
        Ok(Uploader {
            files: this.inner.files.clone(),
            chunks: this.inner.chunks.clone(),
            id,
            filename,
            metadata: options.metadata,
            chunk_size: chunk_size as usize,
            n: 0,
            length: 0,
            buf: Vec::new(),
        })
    }

    /// Opens an upload stream for a new file named `filename` with a generated ObjectId
    /// ([`GridFsUploadStream::id`]); [`open_upload_stream_with_id`](Self::open_upload_stream_with_id)
    /// takes the id. Options: `chunk_size_bytes`, `metadata`.
    ///
    /// Errors (when awaited): a chunk size of 0 or above `i32::MAX`; the index check's.
    pub fn open_upload_stream(&self, filename: impl Into<String>) -> OpenUploadStream<'_> {
        self.open_upload_stream_with_id(ObjectId::new(), filename)
    }

    /// Opens an upload stream for a new file named `filename` with the id `id` (any BSON
    /// value).
    ///
    /// Errors (when awaited): as [`open_upload_stream`](Self::open_upload_stream).
    pub fn open_upload_stream_with_id(
        &self,
        id: impl Into<Bson>,
        filename: impl Into<String>,
    ) -> OpenUploadStream<'_> {
        OpenUploadStream {
            bucket: self,
            id: id.into(),
            filename: filename.into(),
            options: GridFsUploadOptions::default(),
        }
    }

    /// Uploads what `source` reads, to its end, as a new file named `filename` with a
    /// generated ObjectId, which the action returns. The source is not closed. Options:
    /// `chunk_size_bytes`, `metadata`.
    ///
    /// Errors (when awaited): the source's read error, after the chunks stored so far are
    /// deleted (the upload is aborted); write, network and selection errors (the chunks
    /// stored so far stay, as the specification says).
    pub fn upload_from_stream<S>(
        &self,
        filename: impl Into<String>,
        source: S,
    ) -> UploadFromStream<'_, S> {
        self.upload_from_stream_with_id(ObjectId::new(), filename, source)
    }

    /// As [`upload_from_stream`](Self::upload_from_stream), with the id `id` (any BSON
    /// value); the action returns it.
    pub fn upload_from_stream_with_id<S>(
        &self,
        id: impl Into<Bson>,
        filename: impl Into<String>,
        source: S,
    ) -> UploadFromStream<'_, S> {
        UploadFromStream {
            bucket: self,
            id: id.into(),
            filename: filename.into(),
            source,
            options: GridFsUploadOptions::default(),
        }
    }
}

/// Opens an upload stream ([`GridFsBucket::open_upload_stream`]).
#[must_use = "an action does nothing until awaited"]
pub struct OpenUploadStream<'a> {
    bucket: &'a GridFsBucket,
    id: Bson,
    filename: String,
    pub(crate) options: GridFsUploadOptions,
}

impl OpenUploadStream<'_> {
    /// Sets every option at once (`None` keeps those set so far).
    pub fn with_options(mut self, options: impl Into<Option<GridFsUploadOptions>>) -> Self {
        if let Some(options) = options.into() {
            self.options = options;
        }
        self
    }
}

impl<'a> IntoFuture for OpenUploadStream<'a> {
    type Output = Result<GridFsUploadStream>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let id = self.id.clone();
            let up = self
                .bucket
                .uploader(self.id, self.filename, self.options)
                .await?;
            Ok(GridFsUploadStream {
                id,
                state: State::Idle(Box::new(up)),
            })
        })
    }
}

/// Uploads a source to its end ([`GridFsBucket::upload_from_stream`]); gives the file's id.
#[must_use = "an action does nothing until awaited"]
pub struct UploadFromStream<'a, S> {
    bucket: &'a GridFsBucket,
    id: Bson,
    filename: String,
    source: S,
    pub(crate) options: GridFsUploadOptions,
}

impl<S> UploadFromStream<'_, S> {
    /// Sets every option at once (`None` keeps those set so far).
    pub fn with_options(mut self, options: impl Into<Option<GridFsUploadOptions>>) -> Self {
        if let Some(options) = options.into() {
            self.options = options;
        }
        self
    }
}

impl<'a, S: AsyncRead + Unpin + Send + 'a> IntoFuture for UploadFromStream<'a, S> {
    type Output = Result<Bson>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let UploadFromStream {
                bucket,
                id,
                filename,
                mut source,
                options,
            } = self;
            let mut up = bucket.uploader(id.clone(), filename, options).await?;
            loop {
                let want = (up.chunk_size - up.buf.len()) as u64;
                let read = (&mut source).take(want).read_to_end(&mut up.buf).await;
                let read = match read {
                    Ok(n) => n as u64,
                    Err(e) => {
                        // An aborted upload: the chunks go, the source's error is reported.
                        up.abort().await?;
                        return Err(Error::io(e));
                    }
                };
                if read < want {
                    up.finish().await?;
                    return Ok(id);
                }
                up.write_chunk().await?;
            }
        })
    }
}

/// A chunk or files-document write in flight, owning the uploader until it is done.
type Pending = Pin<Box<dyn Future<Output = (Box<Uploader>, Result<()>)> + Send>>;

enum State {
    /// Accepting bytes.
    Idle(Box<Uploader>),
    /// Storing a full chunk.
    Writing(Pending),
    /// Storing the last chunk and the files document (shutdown).
    Closing(Pending),
    /// Shut down: the file is stored.
    Closed,
    /// Aborted: the chunks were deleted.
    Aborted,
    /// A write failed: the error, reported again on every call, and the uploader (for
    /// [`abort`](GridFsUploadStream::abort)).
    Failed(Error, Box<Uploader>),
}

/// A stream that uploads what is written to it as a new GridFS file
/// ([`GridFsBucket::open_upload_stream`]). Each full chunk is stored as it fills;
/// `shutdown` (`AsyncWriteExt::shutdown`) stores the last chunk and the files document,
/// after which writes fail. `flush` stores only full chunks. [`abort`](Self::abort) deletes
/// the chunks stored so far.
///
/// I/O errors wrap the client's [`Error`]: `err.get_ref()` and `downcast_ref::<Error>()`
/// give it back.
pub struct GridFsUploadStream {
    id: Bson,
    state: State,
}

impl std::fmt::Debug for GridFsUploadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Idle(_) => "open",
            State::Writing(_) => "writing",
            State::Closing(_) => "closing",
            State::Closed => "closed",
            State::Aborted => "aborted",
            State::Failed(..) => "failed",
        };
        f.debug_struct("GridFsUploadStream")
            .field("id", &self.id)
            .field("state", &state)
            .finish()
    }
}

fn io_error(e: Error) -> io::Error {
    io::Error::other(e)
}

impl GridFsUploadStream {
    /// The file's id.
    pub fn id(&self) -> &Bson {
        &self.id
    }

    /// Polls a write in flight to its end; the uploader is idle again after it.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let closing = matches!(self.state, State::Closing(_));
            let (State::Writing(fut) | State::Closing(fut)) = &mut self.state else {
                return Poll::Ready(Ok(()));
            };
            let (up, result) = ready!(fut.as_mut().poll(cx));
            self.state = match result {
                Err(e) => {
                    self.state = State::Failed(e.clone(), up);
                    return Poll::Ready(Err(io_error(e)));
                }
                Ok(()) if closing => State::Closed,
                Ok(()) => State::Idle(up),
            };
        }
    }

    /// The error of a stream that takes no more bytes.
    fn refused(&self) -> Option<io::Error> {
        match &self.state {
            State::Closed => Some(io_error(GridFsError::UploadClosed("closed").into())),
            State::Aborted => Some(io_error(GridFsError::UploadClosed("aborted").into())),
            State::Failed(e, _) => Some(io_error(e.clone())),
            _ => None,
        }
    }

    /// Starts storing the full chunk of an idle uploader.
    fn start_chunk(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Idle(mut up) if up.is_full() => State::Writing(Box::pin(async move {
                let r = up.write_chunk().await;
                (up, r)
            })),
            other => other,
        };
    }

    /// Aborts the upload: waits for a write in flight, deletes the chunks stored so far and
    /// refuses further writes.
    ///
    /// # Errors
    /// A stream already shut down ([`GridFsError::UploadClosed`]); the delete's write,
    /// network and selection errors.
    pub async fn abort(&mut self) -> Result<()> {
        let state = std::mem::replace(&mut self.state, State::Aborted);
        let mut up = match state {
            State::Idle(up) => up,
            State::Writing(fut) => fut.await.0,
            State::Closing(_) | State::Closed => {
                self.state = State::Closed;
                return Err(GridFsError::UploadClosed("closed").into());
            }
            State::Aborted => return Ok(()),
            // A failed stream still deletes what it stored.
            State::Failed(_, up) => up,
        };
        up.abort().await
    }
}

impl AsyncWrite for GridFsUploadStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_pending(cx))?;
            if let Some(e) = this.refused() {
                return Poll::Ready(Err(e));
            }
            let State::Idle(up) = &mut this.state else {
                continue;
            };
            if up.is_full() {
                this.start_chunk();
                continue;
            }
            let take = data.len().min(up.chunk_size - up.buf.len());
            up.buf
                .extend_from_slice(data.get(..take).unwrap_or_default());
            if up.is_full() {
                // Started now, driven by the next call (its error reported there).
                this.start_chunk();
            }
            return Poll::Ready(Ok(take));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_pending(cx))?;
            match &this.state {
                State::Idle(up) if up.is_full() => this.start_chunk(),
                State::Failed(e, _) => return Poll::Ready(Err(io_error(e.clone()))),
                _ => return Poll::Ready(Ok(())),
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_pending(cx))?;
            match std::mem::replace(&mut this.state, State::Closed) {
                State::Idle(mut up) => {
                    this.state = State::Closing(Box::pin(async move {
                        let r = up.finish().await;
                        (up, r)
                    }));
                }
                State::Closed => return Poll::Ready(Ok(())),
                other => {
                    this.state = other;
                    if let Some(e) = this.refused() {
                        return Poll::Ready(Err(e));
                    }
                }
            }
        }
    }
}
