//! GridFS against the testkit: a multi-chunk round trip through the upload stream
//! (`AsyncWrite`) and the download stream (`AsyncRead`), revisions by name, the index rule
//! (created before the first write, not again when present with other numeric types),
//! missing / short / extra chunks, deleting and renaming missing files, and aborted uploads.

use std::time::Duration;

use bson::{Bson, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{Database, ErrorKind, GridFsBucketOptions, GridFsError, IndexModel};
use mongo_testkit::{ServerOptions, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{client_for, started_names};

/// `len` bytes that differ from chunk to chunk.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i * 7 % 251).unwrap())
        .collect()
}

async fn db(server: &TestServer) -> Database {
    client_for(&server.uri(), None).await.database("files")
}

/// The GridFS error of a client error.
fn gridfs_error(e: &mongo_client::Error) -> &GridFsError {
    match e.kind() {
        ErrorKind::GridFs(g) => g,
        other => panic!("not a GridFS error: {other:?}"),
    }
}

#[tokio::test]
async fn a_multi_chunk_file_round_trips_through_the_streams() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let db = db(&server).await;
    let bucket = db.gridfs_bucket(GridFsBucketOptions::default().chunk_size_bytes(1000));
    let content = data(5500);

    let mut upload = bucket
        .open_upload_stream("big.bin")
        .metadata(doc! {"owner": "ada"})
        .await
        .unwrap();
    // Odd-sized writes that straddle chunk boundaries.
    for piece in content.chunks(333) {
        upload.write_all(piece).await.unwrap();
    }
    upload.shutdown().await.unwrap();
    let id = upload.id().clone();
    assert!(matches!(id, Bson::ObjectId(_)));
    // A closed stream takes no more bytes.
    assert!(upload.write_all(b"late").await.is_err());

    let file = bucket
        .find(doc! {"metadata.owner": "ada"})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(file.len(), 1);
    assert_eq!(file[0].get("length"), Some(&Bson::Int64(5500)));
    assert_eq!(file[0].get("chunkSize"), Some(&Bson::Int32(1000)));
    assert_eq!(file[0].get_str("filename").unwrap(), "big.bin");
    assert!(file[0].get_datetime("uploadDate").is_ok());
    assert!(!file[0].contains_key("md5"));
    let chunks = bucket
        .chunks()
        .find(doc! {"files_id": id.clone()})
        .sort(doc! {"n": 1})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    let sizes: Vec<usize> = chunks
        .iter()
        .map(|c| c.get_binary_generic("data").unwrap().len())
        .collect();
    assert_eq!(sizes, [1000, 1000, 1000, 1000, 1000, 500]);

    // The indexes were made before the first write.
    let files_ix = bucket.files().list_index_names().await.unwrap();
    assert!(
        files_ix.contains(&"filename_1_uploadDate_1".to_owned()),
        "{files_ix:?}"
    );
    let chunks_ix = bucket
        .chunks()
        .list_indexes()
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    let unique = chunks_ix
        .iter()
        .find(|ix| ix.get_document("key").ok() == Some(&doc! {"files_id": 1, "n": 1}))
        .expect("the chunks index");
    assert_eq!(unique.get_bool("unique").ok(), Some(true));

    // Read back through the AsyncRead stream, in small reads.
    let mut download = bucket.open_download_stream(id.clone()).await.unwrap();
    assert_eq!(download.length(), 5500);
    let mut back = Vec::new();
    let mut buf = [0_u8; 77];
    loop {
        let n = download.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, content);

    // And into an AsyncWrite.
    let mut out = Vec::new();
    bucket.download_to_stream(id, &mut out).await.unwrap();
    assert_eq!(out, content);
}

#[tokio::test]
async fn an_empty_file_has_a_files_document_and_no_chunk() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let bucket = db(&server).await.gridfs_bucket(None);
    let id = bucket.upload_from_stream("empty", &b""[..]).await.unwrap();
    assert_eq!(bucket.chunks().count_documents(doc! {}).await.unwrap(), 0);
    let mut out = Vec::new();
    bucket.download_to_stream(id, &mut out).await.unwrap();
    assert!(out.is_empty());
}

#[tokio::test]
async fn revisions_by_name_count_from_either_end() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let bucket = db(&server).await.gridfs_bucket(None);
    for content in [b"r0", b"r1", b"r2"] {
        bucket
            .upload_from_stream("notes", &content[..])
            .await
            .unwrap();
        // Distinct uploadDates (milliseconds).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (revision, want) in [
        (0, "r0"),
        (1, "r1"),
        (2, "r2"),
        (-1, "r2"),
        (-2, "r1"),
        (-3, "r0"),
    ] {
        let mut out = Vec::new();
        bucket
            .download_to_stream_by_name("notes", &mut out)
            .revision(revision)
            .await
            .unwrap();
        assert_eq!(out, want.as_bytes(), "revision {revision}");
    }
    // The default is the most recent.
    let mut latest = Vec::new();
    bucket
        .open_download_stream_by_name("notes")
        .await
        .unwrap()
        .read_to_end(&mut latest)
        .await
        .unwrap();
    assert_eq!(latest, b"r2");

    let e = bucket
        .download_to_stream_by_name("notes", Vec::new())
        .revision(3)
        .await
        .unwrap_err();
    assert!(matches!(
        gridfs_error(&e),
        GridFsError::RevisionNotFound { revision: 3, .. }
    ));
    let e = bucket
        .download_to_stream_by_name("nope", Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(
        gridfs_error(&e),
        GridFsError::FileNameNotFound { .. }
    ));

    bucket.rename_by_name("notes", "renamed").await.unwrap();
    assert_eq!(
        bucket
            .files()
            .count_documents(doc! {"filename": "renamed"})
            .await
            .unwrap(),
        3
    );
    bucket.delete_by_name("renamed").await.unwrap();
    assert_eq!(bucket.files().count_documents(doc! {}).await.unwrap(), 0);
    assert_eq!(bucket.chunks().count_documents(doc! {}).await.unwrap(), 0);
}

#[tokio::test]
async fn missing_short_and_extra_chunks_are_errors() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let bucket = db(&server)
        .await
        .gridfs_bucket(GridFsBucketOptions::default().chunk_size_bytes(4));
    let id = bucket.upload_from_stream("f", &data(10)[..]).await.unwrap();
    let chunks = bucket.chunks();
    let download = |id: Bson| {
        let bucket = bucket.clone();
        async move {
            let mut out = Vec::new();
            bucket.download_to_stream(id, &mut out).await.map(|()| out)
        }
    };
    assert_eq!(download(id.clone()).await.unwrap(), data(10));

    // An extra chunk after the last one.
    chunks
        .insert_one(
            doc! {"files_id": id.clone(), "n": 3, "data": Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1] })},
        )
        .await
        .unwrap();
    let e = download(id.clone()).await.unwrap_err();
    assert_eq!(gridfs_error(&e), &GridFsError::ExtraChunk { n: 3 });
    chunks
        .delete_one(doc! {"files_id": id.clone(), "n": 3})
        .await
        .unwrap();

    // The last chunk too short.
    chunks
        .update_one(
            doc! {"files_id": id.clone(), "n": 2},
            doc! {"$set": {"data": Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic, bytes: vec![9] })}},
        )
        .await
        .unwrap();
    let e = download(id.clone()).await.unwrap_err();
    assert_eq!(
        gridfs_error(&e),
        &GridFsError::ChunkWrongLength {
            n: 2,
            expected: 2,
            actual: 1
        }
    );

    // A chunk in the middle missing.
    chunks
        .delete_one(doc! {"files_id": id.clone(), "n": 1})
        .await
        .unwrap();
    let e = download(id.clone()).await.unwrap_err();
    assert_eq!(gridfs_error(&e), &GridFsError::ChunkIsMissing { n: 1 });
    // The error comes back through the AsyncRead stream as an io::Error around it.
    let mut stream = bucket.open_download_stream(id).await.unwrap();
    let io = stream.read_to_end(&mut Vec::new()).await.unwrap_err();
    let inner = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<mongo_client::Error>());
    assert!(inner.is_some_and(|e| matches!(gridfs_error(e), GridFsError::ChunkIsMissing { n: 1 })));
}

#[tokio::test]
async fn deleting_or_renaming_a_missing_file_fails_after_removing_orphans() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let bucket = db(&server).await.gridfs_bucket(None);
    let ghost = Bson::Int32(42);
    bucket
        .chunks()
        .insert_one(
            doc! {"files_id": ghost.clone(), "n": 0, "data": Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] })},
        )
        .await
        .unwrap();
    let e = bucket.delete(ghost.clone()).await.unwrap_err();
    assert_eq!(
        gridfs_error(&e),
        &GridFsError::FileNotFound { id: ghost.clone() }
    );
    assert_eq!(bucket.chunks().count_documents(doc! {}).await.unwrap(), 0);
    let e = bucket.rename(ghost.clone(), "x").await.unwrap_err();
    assert_eq!(
        gridfs_error(&e),
        &GridFsError::FileNotFound { id: ghost.clone() }
    );
    let e = bucket
        .download_to_stream(ghost, Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(gridfs_error(&e), GridFsError::FileNotFound { .. }));

    // A custom id round trips; delete removes the file and its chunks.
    bucket
        .upload_from_stream_with_id("custom", "c", &b"abc"[..])
        .await
        .unwrap();
    bucket.rename("custom", "d").await.unwrap();
    let mut out = Vec::new();
    bucket
        .download_to_stream_by_name("d", &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"abc");
    bucket.delete("custom").await.unwrap();
    assert_eq!(bucket.files().count_documents(doc! {}).await.unwrap(), 0);
    assert_eq!(bucket.chunks().count_documents(doc! {}).await.unwrap(), 0);
}

#[tokio::test]
async fn an_aborted_upload_deletes_its_chunks_and_refuses_writes() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let bucket = db(&server)
        .await
        .gridfs_bucket(GridFsBucketOptions::default().chunk_size_bytes(100));
    let mut upload = bucket.open_upload_stream("partial").await.unwrap();
    upload.write_all(&data(250)).await.unwrap();
    upload.flush().await.unwrap();
    assert_eq!(bucket.chunks().count_documents(doc! {}).await.unwrap(), 2);
    upload.abort().await.unwrap();
    assert_eq!(bucket.chunks().count_documents(doc! {}).await.unwrap(), 0);
    assert_eq!(bucket.files().count_documents(doc! {}).await.unwrap(), 0);
    assert!(upload.write_all(b"more").await.is_err());
    assert!(upload.shutdown().await.is_err());
}

#[tokio::test]
async fn indexes_present_with_other_numeric_types_are_not_created_again() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let db = client.database("files");
    let bucket = db.gridfs_bucket(None);
    // The files index as the shell makes it: doubles.
    bucket
        .files()
        .create_index(IndexModel::new(doc! {"filename": 1.0, "uploadDate": 1.0}))
        .await
        .unwrap();
    recorder.clear();
    bucket.upload_from_stream("a", &b"x"[..]).await.unwrap();
    bucket.upload_from_stream("b", &b"y"[..]).await.unwrap();
    let names = started_names(&recorder);
    // One emptiness probe, one listIndexes per collection, the chunks index only, and no
    // second check on the second upload.
    assert_eq!(
        names,
        [
            "find",
            "listIndexes",
            "listIndexes",
            "createIndexes",
            "insert",
            "insert",
            "insert",
            "insert"
        ]
    );

    // A bucket over a non-empty files collection creates nothing.
    recorder.clear();
    let again = db.gridfs_bucket(None);
    again.upload_from_stream("c", &b"z"[..]).await.unwrap();
    assert_eq!(started_names(&recorder), ["find", "insert", "insert"]);
}

/// A source that fails on every read.
struct Failing;

impl tokio::io::AsyncRead for Failing {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::Error::other("disk on fire")))
    }
}

#[tokio::test]
async fn a_failing_source_aborts_the_upload_with_its_own_error() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let bucket = db(&server)
        .await
        .gridfs_bucket(GridFsBucketOptions::default().chunk_size_bytes(100));
    let content = data(250);
    let source = (&content[..]).chain(Failing);
    let e = bucket
        .upload_from_stream("broken", source)
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Io(io) if io.to_string() == "disk on fire"),
        "{e}"
    );
    // The two full chunks it stored are gone, and no files document was made.
    assert_eq!(bucket.chunks().count_documents(doc! {}).await.unwrap(), 0);
    assert_eq!(bucket.files().count_documents(doc! {}).await.unwrap(), 0);
}
