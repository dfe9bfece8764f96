//! Downloads: [`GridFsDownloadStream`], an [`AsyncRead`] over a stored file's chunks (found by
//! id, or by filename and revision), checking that each chunk is the next one and as long as
//! the file's length and chunk size say; and the `download_to_stream` helpers that copy it
//! into an [`AsyncWrite`].

use std::future::IntoFuture;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bson::{Bson, Document, doc};
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{GridFsBucket, whole};
use crate::client::Cursor;
use crate::client::action::BoxFuture;
use crate::crud::GridFsDownloadByNameOptions;
use crate::error::{Error, GridFsError, Result};

/// A stream over a stored file's bytes ([`GridFsBucket::open_download_stream`],
/// [`GridFsBucket::open_download_stream_by_name`]). It reads the chunks in order of `n`
/// through one cursor and fails with [`GridFsError::ChunkIsMissing`],
/// [`GridFsError::ChunkWrongLength`] or, after the last chunk, [`GridFsError::ExtraChunk`];
/// a reader that stops early sees no error beyond where it stopped.
///
/// I/O errors wrap the client's [`Error`]: `err.get_ref()` and `downcast_ref::<Error>()`
/// give it back.
pub struct GridFsDownloadStream {
    file: Document,
    length: u64,
    chunk_size: u64,
    /// How many chunks the file has.
    total: u64,
    /// The `n` of the next chunk.
    next: u64,
    /// The current chunk's data and how much of it was read.
    buf: Vec<u8>,
    pos: usize,
    /// The chunks' cursor (`None` for an empty file: no query is made).
    cursor: Option<Cursor<Document>>,
    failed: Option<Error>,
}

impl std::fmt::Debug for GridFsDownloadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GridFsDownloadStream")
            .field("id", &self.file.get("_id"))
            .field("length", &self.length)
            .field("next_chunk", &self.next)
            .finish()
    }
}

impl GridFsDownloadStream {
    /// The files collection document of the file.
    pub fn file(&self) -> &Document {
        &self.file
    }

    /// The file's length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The length chunk `n` must have.
    fn expected_len(&self, n: u64) -> u64 {
        if n + 1 < self.total {
            self.chunk_size
        } else {
            self.length - self.chunk_size * n
        }
    }

    /// Checks the chunk read for `self.next` and makes it current.
    fn take_chunk(&mut self, mut chunk: Document) -> Result<()> {
        let n = whole(chunk.get("n"), "a chunk's n")?;
        if n != self.next {
            return Err(GridFsError::ChunkIsMissing {
                n: i64::try_from(self.next).unwrap_or(i64::MAX),
            }
            .into());
        }
        let data = match chunk.remove("data") {
            Some(Bson::Binary(b)) => b.bytes,
            _ => return Err(GridFsError::Corrupt(format!("chunk {n} has no binary data")).into()),
        };
        let expected = self.expected_len(n);
        if data.len() as u64 != expected {
            return Err(GridFsError::ChunkWrongLength {
                n: i64::try_from(n).unwrap_or(i64::MAX),
                expected,
                actual: data.len() as u64,
            }
            .into());
        }
        self.buf = data;
        self.pos = 0;
        self.next += 1;
        Ok(())
    }

    /// Polls the cursor for the next chunk document.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Document>>> {
        let Some(cursor) = self.cursor.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        match ready!(Pin::new(cursor).poll_next(cx)) {
            Some(Ok(d)) => Poll::Ready(Ok(Some(d))),
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => {
                self.cursor = None;
                Poll::Ready(Ok(None))
            }
        }
    }

    /// Fills the buffer with the next chunk, or leaves it empty at the end of the file.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.next >= self.total {
            // After the last chunk: one more from the cursor is an extra chunk (read from the
            // batch at hand, or one getMore when the cursor is still open).
            return match ready!(self.poll_chunk(cx))? {
                Some(extra) => {
                    let n = whole(extra.get("n"), "a chunk's n")?;
                    Poll::Ready(Err(GridFsError::ExtraChunk {
                        n: i64::try_from(n).unwrap_or(i64::MAX),
                    }
                    .into()))
                }
                None => Poll::Ready(Ok(())),
            };
        }
        match ready!(self.poll_chunk(cx))? {
            Some(chunk) => Poll::Ready(self.take_chunk(chunk)),
            None => Poll::Ready(Err(GridFsError::ChunkIsMissing {
                n: i64::try_from(self.next).unwrap_or(i64::MAX),
            }
            .into())),
        }
    }
}

impl AsyncRead for GridFsDownloadStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(io::Error::other(e.clone())));
        }
        if this.pos >= this.buf.len() {
            if let Err(e) = ready!(this.poll_fill(cx)) {
                this.failed = Some(e.clone());
                return Poll::Ready(Err(io::Error::other(e)));
            }
        }
        let rest = this.buf.get(this.pos..).unwrap_or_default();
        let take = rest.len().min(out.remaining());
        out.put_slice(rest.get(..take).unwrap_or_default());
        this.pos += take;
        Poll::Ready(Ok(()))
    }
}

/// Unwraps the client's error from an I/O error of a GridFS stream, or wraps another.
fn from_io(e: io::Error) -> Error {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(inner) => inner.clone(),
        None => Error::io(e),
    }
}

/// Copies a download stream into `dest` (flushed, not shut down).
async fn copy_to<W: AsyncWrite + Unpin>(
    mut stream: GridFsDownloadStream,
    mut dest: W,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    tokio::io::copy(&mut stream, &mut dest)
        .await
        .map_err(from_io)?;
    dest.flush().await.map_err(Error::io)?;
    Ok(())
}

impl GridFsBucket {
    /// A download stream over a files document: its chunks' cursor, unless it is empty.
    async fn stream_of(&self, file: Document) -> Result<GridFsDownloadStream> {
        let length = whole(file.get("length"), "the file's length")?;
        let chunk_size = whole(file.get("chunkSize"), "the file's chunkSize")?;
        let total = match length {
            0 => 0,
            _ if chunk_size == 0 => {
                return Err(GridFsError::Corrupt("a chunkSize of 0".to_owned()).into());
            }
            _ => length.div_ceil(chunk_size),
        };
        let cursor = if total == 0 {
            None
        } else {
            let id = file.get("_id").cloned().unwrap_or(Bson::Null);
            Some(
                self.inner
                    .chunks
                    .find(doc! {"files_id": id})
                    .sort(doc! {"n": 1})
                    .await?,
            )
        };
        Ok(GridFsDownloadStream {
            file,
            length,
            chunk_size,
            total,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            cursor,
            failed: None,
        })
    }

    /// Opens a download stream over the file with this id.
    ///
    /// # Errors
    /// [`GridFsError::FileNotFound`]; a files document without a usable length or chunk
    /// size; network, selection and command errors.
    pub async fn open_download_stream(&self, id: impl Into<Bson>) -> Result<GridFsDownloadStream> {
        let id = id.into();
        // One deadline for the stream's whole life (the files document and the chunks).
        let this = self.pinned();
        let file = this
            .inner
            .files
            .find_one(doc! {"_id": id.clone()})
            .await?
            .ok_or(GridFsError::FileNotFound { id })?;
        this.stream_of(file).await
    }

    /// Writes the file with this id into `dest` (flushed, not shut down).
    ///
    /// # Errors
    /// As [`open_download_stream`](Self::open_download_stream); a missing, short or extra
    /// chunk; `dest`'s write errors.
    pub async fn download_to_stream<W: AsyncWrite + Unpin>(
        &self,
        id: impl Into<Bson>,
        dest: W,
    ) -> Result<()> {
        let stream = self.open_download_stream(id).await?;
        copy_to(stream, dest).await
    }

    /// Opens a download stream over a revision of the files named `filename` (option
    /// `revision`: -1, the most recent, by default).
    ///
    /// Errors (when awaited): [`GridFsError::FileNameNotFound`],
    /// [`GridFsError::RevisionNotFound`]; as
    /// [`open_download_stream`](Self::open_download_stream).
    pub fn open_download_stream_by_name(
        &self,
        filename: impl Into<String>,
    ) -> OpenDownloadStreamByName<'_> {
        OpenDownloadStreamByName {
            bucket: self,
            filename: filename.into(),
            options: GridFsDownloadByNameOptions::default(),
        }
    }

    /// Writes a revision of the files named `filename` into `dest` (option `revision`).
    ///
    /// Errors (when awaited): as
    /// [`open_download_stream_by_name`](Self::open_download_stream_by_name) and
    /// [`download_to_stream`](Self::download_to_stream).
    pub fn download_to_stream_by_name<W>(
        &self,
        filename: impl Into<String>,
        dest: W,
    ) -> DownloadToStreamByName<'_, W> {
        DownloadToStreamByName {
            bucket: self,
            filename: filename.into(),
            dest,
            options: GridFsDownloadByNameOptions::default(),
        }
    }

    /// The files document of a revision: sorted by uploadDate, descending for a negative
    /// revision (skipping `-revision - 1`), ascending otherwise (skipping `revision`).
    async fn file_by_name(&self, filename: &str, revision: i32) -> Result<Document> {
        let (order, skip) = if revision < 0 {
            (-1, -(i64::from(revision)) - 1)
        } else {
            (1, i64::from(revision))
        };
        let found = self
            .inner
            .files
            .find_one(doc! {"filename": filename})
            .sort(doc! {"uploadDate": order})
            .skip(skip)
            .await?;
        if let Some(file) = found {
            return Ok(file);
        }
        // Tell a missing name from a missing revision (a second query, on failure only).
        let any = if skip == 0 {
            None
        } else {
            self.inner
                .files
                .find_one(doc! {"filename": filename})
                .projection(doc! {"_id": 1})
                .await?
        };
        Err(match any {
            Some(_) => GridFsError::RevisionNotFound {
                filename: filename.to_owned(),
                revision,
            },
            None => GridFsError::FileNameNotFound {
                filename: filename.to_owned(),
            },
        }
        .into())
    }
}

/// Opens a download stream by name ([`GridFsBucket::open_download_stream_by_name`]).
#[must_use = "an action does nothing until awaited"]
pub struct OpenDownloadStreamByName<'a> {
    bucket: &'a GridFsBucket,
    filename: String,
    pub(crate) options: GridFsDownloadByNameOptions,
}

impl OpenDownloadStreamByName<'_> {
    /// Sets every option at once (`None` keeps those set so far).
    pub fn with_options(mut self, options: impl Into<Option<GridFsDownloadByNameOptions>>) -> Self {
        if let Some(options) = options.into() {
            self.options = options;
        }
        self
    }
}

impl<'a> IntoFuture for OpenDownloadStreamByName<'a> {
    type Output = Result<GridFsDownloadStream>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let revision = self.options.revision.unwrap_or(-1);
            let bucket = self.bucket.pinned();
            let file = bucket.file_by_name(&self.filename, revision).await?;
            bucket.stream_of(file).await
        })
    }
}

/// Downloads a file by name into a destination
/// ([`GridFsBucket::download_to_stream_by_name`]).
#[must_use = "an action does nothing until awaited"]
pub struct DownloadToStreamByName<'a, W> {
    bucket: &'a GridFsBucket,
    filename: String,
    dest: W,
    pub(crate) options: GridFsDownloadByNameOptions,
}

impl<W> DownloadToStreamByName<'_, W> {
    /// Sets every option at once (`None` keeps those set so far).
    pub fn with_options(mut self, options: impl Into<Option<GridFsDownloadByNameOptions>>) -> Self {
        if let Some(options) = options.into() {
            self.options = options;
        }
        self
    }
}

impl<'a, W: AsyncWrite + Unpin + Send + 'a> IntoFuture for DownloadToStreamByName<'a, W> {
    type Output = Result<()>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let revision = self.options.revision.unwrap_or(-1);
            let bucket = self.bucket.pinned();
            let file = bucket.file_by_name(&self.filename, revision).await?;
            let stream = bucket.stream_of(file).await?;
            copy_to(stream, self.dest).await
        })
    }
}
