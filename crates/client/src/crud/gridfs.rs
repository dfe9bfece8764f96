//! The options of the GridFS operations (GridFS specification): an upload's chunk size and
//! metadata, a download by name's revision, and the `find` on a bucket's files collection.
//! The bucket's own options ([`GridFsBucketOptions`](crate::gridfs::GridFsBucketOptions))
//! hold concerns and a read preference, and live beside the bucket.

use std::time::Duration;

use bson::Document;

use super::FindOptions;

options_struct! {
    /// Options of an upload (`GridFSUploadOptions`):
    /// [`GridFsBucket::upload_from_stream`](crate::gridfs::GridFsBucket::upload_from_stream)
    /// and [`GridFsBucket::open_upload_stream`](crate::gridfs::GridFsBucket::open_upload_stream).
    ///
    /// The deprecated `contentType` and `aliases` fields are not offered: the specification
    /// lets a driver drop them and asks applications to keep such values in `metadata`.
    pub struct GridFsUploadOptions for [
        <'a> crate::gridfs::OpenUploadStream<'a>,
        <'a, S> crate::gridfs::UploadFromStream<'a, S>,
    ] {
        /// `chunkSizeBytes`: the size of this file's chunks (the bucket's when unset).
        chunk_size_bytes: u32,
        /// `metadata`: the files collection document's `metadata` (omitted when unset).
        metadata: Document,
    }
}

options_struct! {
    /// Options of a download by name (`GridFSDownloadByNameOptions`).
    pub struct GridFsDownloadByNameOptions for [
        <'a> crate::gridfs::OpenDownloadStreamByName<'a>,
        <'a, W> crate::gridfs::DownloadToStreamByName<'a, W>,
    ] {
        /// `revision`: 0 the original file, 1 the first revision, …; -1 the most recent
        /// (the default), -2 the one before, ….
        revision: i32,
    }
}

options_struct! {
    /// Options of [`GridFsBucket::find`](crate::gridfs::GridFsBucket::find)
    /// (`GridFSFindOptions`), passed on to the `find` on the files collection.
    pub struct GridFsFindOptions for [<'a> crate::gridfs::FindFiles<'a>] {
        /// `allowDiskUse` (sent only when set).
        allow_disk_use: bool,
        /// `batchSize`.
        batch_size: i32,
        /// `limit`.
        limit: i32,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `noCursorTimeout`.
        no_cursor_timeout: bool,
        /// `skip`.
        skip: i32,
        /// `sort`.
        sort: Document,
    }
}

impl From<GridFsFindOptions> for FindOptions {
    fn from(o: GridFsFindOptions) -> Self {
        FindOptions {
            allow_disk_use: o.allow_disk_use,
            batch_size: o.batch_size,
            limit: o.limit.map(i64::from),
            max_time: o.max_time,
            no_cursor_timeout: o.no_cursor_timeout,
            skip: o.skip.map(i64::from),
            sort: o.sort,
            ..FindOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn options_read_the_specification_names() {
        let u: GridFsUploadOptions =
            bson::deserialize_from_document(doc! {"chunkSizeBytes": 4, "metadata": {"x": 1}})
                .unwrap();
        assert_eq!(u.chunk_size_bytes, Some(4));
        assert_eq!(u.metadata, Some(doc! {"x": 1}));
        assert!(
            bson::deserialize_from_document::<GridFsUploadOptions>(doc! {"chunkSizeBytes": -1})
                .is_err()
        );
        let f: GridFsFindOptions = bson::deserialize_from_document(
            doc! {"limit": 2, "skip": 1, "sort": {"uploadDate": -1}, "maxTimeMS": 5},
        )
        .unwrap();
        let find = FindOptions::from(f);
        assert_eq!(find.limit, Some(2));
        assert_eq!(find.skip, Some(1));
        assert_eq!(find.max_time, Some(Duration::from_millis(5)));
        assert_eq!(find.sort, Some(doc! {"uploadDate": -1}));
    }
}
