//! GridFS (GridFS specification): files larger than a document stored as chunks in a
//! bucket's two collections, `<bucket>.files` (one document per file) and `<bucket>.chunks`.
//!
//! [`Database::gridfs_bucket`] gives a [`GridFsBucket`]. This file has the bucket, its
//! options, the index rules and the operations on files documents (delete, rename, find,
//! drop); `upload.rs` the uploads (an [`AsyncWrite`](tokio::io::AsyncWrite) upload stream and
//! `upload_from_stream`); `download.rs` the downloads (an
//! [`AsyncRead`](tokio::io::AsyncRead) download stream, by id or by name and revision).
//!
//! ```no_run
//! # async fn f(db: mongo_client::Database) -> mongo_client::Result<()> {
//! let bucket = db.gridfs_bucket(None);
//! let id = bucket.upload_from_stream("notes.txt", &b"hello"[..]).await?;
//! let mut out = Vec::new();
//! bucket.download_to_stream(id, &mut out).await?;
//! assert_eq!(out, b"hello");
//! # Ok(()) }
//! ```
//!
//! Files documents are queried like any collection's: [`GridFsBucket::find`] takes a filter on
//! their fields, e.g. `{ "metadata.owner": "ada" }` for a field of the metadata an upload
//! stored. No MD5 is computed (the specification deprecates it; there is no `disableMD5`
//! option).

mod download;
mod upload;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bson::{Bson, Document, doc};

pub use download::{DownloadToStreamByName, GridFsDownloadStream, OpenDownloadStreamByName};
pub use upload::{GridFsUploadStream, OpenUploadStream, UploadFromStream};

use crate::client::action::BoxFuture;
use crate::client::{Collection, Cursor, Database, DatabaseOptions, ReadConcern};
use crate::crud::{FindOptions, GridFsFindOptions, IndexModel, IndexOptions};
use crate::error::{Error, GridFsError, Result};
use crate::options::{ReadMode, ReadPreference, WriteConcern};

/// The default chunk size: 255 KiB.
pub const DEFAULT_CHUNK_SIZE_BYTES: u32 = 255 * 1024;

/// The options of a [`GridFsBucket`] (`GridFSBucketOptions`). Unset concerns and read
/// preference fall back to the database's, then to the client's.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct GridFsBucketOptions {
    /// `bucketName`: the prefix of the two collections (`fs` when unset).
    pub bucket_name: Option<String>,
    /// `chunkSizeBytes`: the chunk size of new files (255 KiB when unset).
    pub chunk_size_bytes: Option<u32>,
    /// `writeConcern` of the bucket's writes.
    pub write_concern: Option<WriteConcern>,
    /// `readConcern` of the bucket's reads.
    pub read_concern: Option<ReadConcern>,
    /// `readPreference` of the bucket's reads.
    pub read_preference: Option<ReadPreference>,
    /// `timeoutMS` of the bucket's operations (unset: the database's).
    pub timeout: Option<std::time::Duration>,
}

impl GridFsBucketOptions {
    /// Sets the bucket name.
    #[must_use]
    pub fn bucket_name(mut self, name: impl Into<String>) -> Self {
        self.bucket_name = Some(name.into());
        self
    }

    /// Sets the chunk size of new files.
    #[must_use]
    pub fn chunk_size_bytes(mut self, bytes: u32) -> Self {
        self.chunk_size_bytes = Some(bytes);
        self
    }

    /// Sets the write concern.
    #[must_use]
    pub fn write_concern(mut self, wc: WriteConcern) -> Self {
        self.write_concern = Some(wc);
        self
    }

    /// Sets the read concern.
    #[must_use]
    pub fn read_concern(mut self, rc: ReadConcern) -> Self {
        self.read_concern = Some(rc);
        self
    }

    /// Sets the read preference.
    #[must_use]
    pub fn read_preference(mut self, rp: ReadPreference) -> Self {
        self.read_preference = Some(rp);
        self
    }
}

/// A GridFS bucket: immutable, cheap to clone (clones share whether the indexes were
/// checked).
#[derive(Clone, Debug)]
pub struct GridFsBucket {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    chunk_size: u32,
    files: Collection<Document>,
    chunks: Collection<Document>,
    /// The files collection read on the primary: the emptiness probe before the first write.
    files_on_primary: Collection<Document>,
    /// Whether the index check ran (it runs before the first write, once).
    indexes_checked: Arc<AtomicBool>,
}

impl Database {
    /// A GridFS bucket in this database (`None`: the default options, bucket `fs`).
    pub fn gridfs_bucket(&self, options: impl Into<Option<GridFsBucketOptions>>) -> GridFsBucket {
        let options = options.into().unwrap_or_default();
        let name = options.bucket_name.unwrap_or_else(|| "fs".to_owned());
        let handle = DatabaseOptions {
            read_concern: options.read_concern,
            write_concern: options.write_concern,
            read_preference: options.read_preference,
            timeout: options.timeout,
        };
        let files_name = format!("{name}.files");
        let chunks_name = format!("{name}.chunks");
        let primary = handle
            .clone()
            .read_preference(ReadPreference::new(ReadMode::Primary));
        GridFsBucket {
            inner: Arc::new(Inner {
                chunk_size: options.chunk_size_bytes.unwrap_or(DEFAULT_CHUNK_SIZE_BYTES),
                files: self.collection_with_options(&files_name, handle.clone()),
                chunks: self.collection_with_options(&chunks_name, handle),
                files_on_primary: self.collection_with_options(&files_name, primary),
                indexes_checked: Arc::new(AtomicBool::new(false)),
                name,
            }),
        }
    }
}

impl GridFsBucket {
    /// This bucket, its operations within `timeout` (their `timeoutMS`, instead of the
    /// bucket's or the database's; zero: no limit). It shares the index check.
    #[must_use]
    pub fn with_timeout(&self, timeout: std::time::Duration) -> GridFsBucket {
        self.mapped(|c| c.with_handle(DatabaseOptions::default().timeout(timeout)))
    }

    /// This bucket with one deadline for all the commands of an operation (client-side
    /// operation timeouts: `timeoutMS` bounds a GridFS operation as a whole, and a stream's
    /// whole life).
    fn pinned(&self) -> GridFsBucket {
        if self.inner.files.client().timeout().is_none() {
            return self.clone();
        }
        self.mapped(crate::client::Client::with_fixed_deadline)
    }

    /// This bucket with each collection's client mapped by `f`.
    fn mapped(&self, f: impl Fn(&crate::client::Client) -> crate::client::Client) -> GridFsBucket {
        let m =
            |c: &Collection<Document>| Collection::new(f(c.client()), c.database_name(), c.name());
        GridFsBucket {
            inner: Arc::new(Inner {
                name: self.inner.name.clone(),
                chunk_size: self.inner.chunk_size,
                files: m(&self.inner.files),
                chunks: m(&self.inner.chunks),
                files_on_primary: m(&self.inner.files_on_primary),
                indexes_checked: self.inner.indexes_checked.clone(),
            }),
        }
    }

    /// The bucket's name (the collections' prefix).
    pub fn bucket_name(&self) -> &str {
        &self.inner.name
    }

    /// The chunk size of new files, in bytes.
    pub fn chunk_size_bytes(&self) -> u32 {
        self.inner.chunk_size
    }

    /// The files collection (`<bucket>.files`).
    pub fn files(&self) -> &Collection<Document> {
        &self.inner.files
    }

    /// The chunks collection (`<bucket>.chunks`).
    pub fn chunks(&self) -> &Collection<Document> {
        &self.inner.chunks
    }

    /// The specification's index rule, run before the first upload of this bucket (the
    /// writes that add files; delete and rename only touch what exists and send nothing
    /// else, as the CSOT GridFS tests expect): when the files collection is empty (a `find`
    /// of one `_id` on the primary), create `{filename: 1, uploadDate: 1}` on the files
    /// collection and the unique `{files_id: 1, n: 1}` on the chunks collection, each only
    /// if `listIndexes` does not show it already (key values compared as numbers, whatever
    /// their BSON type).
    async fn ensure_indexes(&self) -> Result<()> {
        if self.inner.indexes_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let probe = self
            .inner
            .files_on_primary
            .find_one(doc! {})
            .projection(doc! {"_id": 1})
            .await?;
        if probe.is_none() {
            ensure_index(
                &self.inner.files,
                doc! {"filename": 1, "uploadDate": 1},
                false,
            )
            .await?;
            ensure_index(&self.inner.chunks, doc! {"files_id": 1, "n": 1}, true).await?;
        }
        self.inner.indexes_checked.store(true, Ordering::Release);
        Ok(())
    }

    /// Deletes the file with this id: its files document, then its chunks.
    ///
    /// # Errors
    /// [`GridFsError::FileNotFound`] when no files document has this id (its orphaned chunks,
    /// if any, are deleted first); write, network and selection errors.
    pub async fn delete(&self, id: impl Into<Bson>) -> Result<()> {
        let this = self.pinned();
        let id = id.into();
        let deleted = this
            .inner
            .files
            .delete_one(doc! {"_id": id.clone()})
            .await?
            .deleted_count;
        this.inner
            .chunks
            .delete_many(doc! {"files_id": id.clone()})
            .await?;
        if deleted == 0 {
            return Err(GridFsError::FileNotFound { id }.into());
        }
        Ok(())
    }

    /// Deletes every revision of the files named `filename` (their files documents, then
    /// their chunks).
    ///
    /// # Errors
    /// [`GridFsError::FileNameNotFound`] when no file has this name; write, network and
    /// selection errors.
    pub async fn delete_by_name(&self, filename: &str) -> Result<()> {
        let this = self.pinned();
        let found = this
            .inner
            .files
            .find(doc! {"filename": filename})
            .projection(doc! {"_id": 1})
            .await?
            .collect_all()
            .await?;
        let ids: Vec<Bson> = found
            .into_iter()
            .filter_map(|mut d| d.remove("_id"))
            .collect();
        if ids.is_empty() {
            return Err(GridFsError::FileNameNotFound {
                filename: filename.to_owned(),
            }
            .into());
        }
        this.inner
            .files
            .delete_many(doc! {"_id": {"$in": ids.clone()}})
            .await?;
        this.inner
            .chunks
            .delete_many(doc! {"files_id": {"$in": ids}})
            .await?;
        Ok(())
    }

    /// Renames the file with this id.
    ///
    /// # Errors
    /// [`GridFsError::FileNotFound`] when no files document has this id; write, network and
    /// selection errors.
    pub async fn rename(&self, id: impl Into<Bson>, new_filename: &str) -> Result<()> {
        let this = self.pinned();
        let id = id.into();
        let r = this
            .inner
            .files
            .update_one(
                doc! {"_id": id.clone()},
                doc! {"$set": {"filename": new_filename}},
            )
            .await?;
        if r.matched_count == 0 {
            return Err(GridFsError::FileNotFound { id }.into());
        }
        Ok(())
    }

    /// Renames every revision of the files named `filename`.
    ///
    /// # Errors
    /// [`GridFsError::FileNameNotFound`] when no file has this name; write, network and
    /// selection errors.
    pub async fn rename_by_name(&self, filename: &str, new_filename: &str) -> Result<()> {
        let this = self.pinned();
        let r = this
            .inner
            .files
            .update_many(
                doc! {"filename": filename},
                doc! {"$set": {"filename": new_filename}},
            )
            .await?;
        if r.matched_count == 0 {
            return Err(GridFsError::FileNameNotFound {
                filename: filename.to_owned(),
            }
            .into());
        }
        Ok(())
    }

    /// Drops the files collection, then the chunks collection. The next write checks the
    /// indexes again.
    ///
    /// # Errors
    /// Write concern, command, network and selection errors.
    pub async fn drop(&self) -> Result<()> {
        let this = self.pinned();
        this.inner.files.drop().await?;
        this.inner.chunks.drop().await?;
        this.inner.indexes_checked.store(false, Ordering::Release);
        Ok(())
    }

    /// The files documents matching `filter` (a `find` on the files collection; filter on
    /// their fields, e.g. `{ "metadata.owner": "ada" }`).
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn find(&self, filter: Document) -> FindFiles<'_> {
        FindFiles {
            bucket: self,
            filter,
            options: GridFsFindOptions::default(),
        }
    }
}

/// `find` on a bucket's files collection ([`GridFsBucket::find`]).
#[must_use = "an action does nothing until awaited"]
pub struct FindFiles<'a> {
    bucket: &'a GridFsBucket,
    filter: Document,
    pub(crate) options: GridFsFindOptions,
}

impl FindFiles<'_> {
    /// Sets every option at once (`None` keeps those set so far).
    pub fn with_options(mut self, options: impl Into<Option<GridFsFindOptions>>) -> Self {
        if let Some(options) = options.into() {
            self.options = options;
        }
        self
    }
}

impl<'a> IntoFuture for FindFiles<'a> {
    type Output = Result<Cursor<Document>>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let options: FindOptions = self.options.into();
            self.bucket
                .pinned()
                .inner
                .files
                .find(self.filter)
                .with_options(options)
                .await
        })
    }
}

/// Creates the index on `keys` unless `listIndexes` shows one with the same keys.
async fn ensure_index(coll: &Collection<Document>, keys: Document, unique: bool) -> Result<()> {
    let existing = coll.list_indexes().await?.collect_all().await?;
    let present = existing
        .iter()
        .filter_map(|ix| ix.get_document("key").ok())
        .any(|k| same_keys(k, &keys));
    if present {
        return Ok(());
    }
    let mut model = IndexModel::new(keys);
    if unique {
        model = model.options(IndexOptions::default().unique(true));
    }
    coll.create_index(model).await?;
    Ok(())
}

/// Whether two index key patterns are the same: the same fields in the same order, numeric
/// directions equal by value (`1`, `1i64` and `1.0` alike), other values equal.
fn same_keys(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (number(va), number(vb)) {
                    (Some(x), Some(y)) => x == y,
                    _ => va == vb,
                }
        })
}

/// A numeric BSON value as an `f64`.
fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// A whole, non-negative number of a files or chunks document (`length`, `chunkSize`, `n`),
/// whatever its numeric type.
pub(crate) fn whole(v: Option<&Bson>, what: &str) -> Result<u64> {
    let n = match v {
        Some(Bson::Int32(i)) => u64::try_from(*i).ok(),
        Some(Bson::Int64(i)) => u64::try_from(*i).ok(),
        Some(Bson::Double(d)) if d.fract() == 0.0 && *d >= 0.0 && *d < 9.0e15 => {
            format!("{d:.0}").parse().ok()
        }
        _ => None,
    };
    n.ok_or_else(|| {
        Error::from(GridFsError::Corrupt(format!(
            "{what} is not a whole non-negative number"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns_compare_numbers_by_value() {
        let want = doc! {"filename": 1, "uploadDate": 1};
        assert!(same_keys(
            &doc! {"filename": 1.0, "uploadDate": 1_i64},
            &want
        ));
        assert!(same_keys(
            &doc! {"filename": 1_i64, "uploadDate": 1.0},
            &want
        ));
        assert!(!same_keys(&doc! {"uploadDate": 1, "filename": 1}, &want));
        assert!(!same_keys(&doc! {"filename": 1, "uploadDate": -1}, &want));
        assert!(!same_keys(&doc! {"filename": 1}, &want));
        assert!(!same_keys(
            &doc! {"filename": "text", "uploadDate": 1},
            &want
        ));
    }

    #[test]
    fn lengths_take_any_whole_numeric_type() {
        assert_eq!(whole(Some(&Bson::Int32(4)), "x").unwrap(), 4);
        assert_eq!(whole(Some(&Bson::Int64(10)), "x").unwrap(), 10);
        assert_eq!(whole(Some(&Bson::Double(8.0)), "x").unwrap(), 8);
        assert!(whole(Some(&Bson::Double(8.5)), "x").is_err());
        assert!(whole(Some(&Bson::Int32(-1)), "x").is_err());
        assert!(whole(Some(&Bson::String("4".into())), "x").is_err());
        assert!(whole(None, "x").is_err());
    }
}
