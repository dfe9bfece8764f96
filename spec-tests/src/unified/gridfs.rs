//! GridFS in the unified format: `bucket` entities (a database's
//! [`GridFsBucket`](mongo_client::GridFsBucket) with `bucketOptions`) and the bucket
//! operations of the gridfs, retryable-reads and format test files (upload, uploadWithId,
//! download, downloadByName, delete, deleteByName, rename, renameByName, find, drop).
//! Upload sources are `{$$hexBytes: "…"}`; downloads give the file's bytes as a binary
//! value, which `$$matchesHexBytes` compares.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document};
use mongo_client::{
    GridFsBucket, GridFsBucketOptions, GridFsDownloadByNameOptions, GridFsFindOptions,
    GridFsUploadOptions, ReadConcern,
};

use super::Fail;
use super::entities::{Entities, Entity, read_preference, write_concern};
use super::matching::decode_hex;
use super::ops::{OpError, Value, allow};

/// Creates a bucket entity on its database entity.
pub(crate) fn create_bucket(spec: &Document, id: &str, entities: &Entities) -> Result<(), Fail> {
    for key in spec.keys() {
        if !matches!(key.as_str(), "id" | "database" | "bucketOptions") {
            return Err(Fail::runner(format!("unknown bucket key {key}")));
        }
    }
    let (db, client) = entities.database(
        spec.get_str("database")
            .map_err(|_| Fail::runner("bucket.database is required"))?,
    )?;
    let mut options = GridFsBucketOptions::default();
    if let Ok(o) = spec.get_document("bucketOptions") {
        for (k, v) in o {
            options = match k.as_str() {
                "bucketName" => options.bucket_name(
                    v.as_str()
                        .ok_or_else(|| Fail::runner("bucketName must be a string"))?,
                ),
                "chunkSizeBytes" => options.chunk_size_bytes(
                    v.as_i64()
                        .or_else(|| v.as_i32().map(i64::from))
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| Fail::runner(format!("chunkSizeBytes {v}")))?,
                ),
                // No MD5 is ever computed (the specification deprecates it): nothing to
                // disable; the files match `md5` with `$$unsetOrMatches`.
                "disableMD5" => options,
                "writeConcern" => options.write_concern(write_concern(v)?),
                "readConcern" => {
                    let level = v
                        .as_document()
                        .and_then(|d| d.get_str("level").ok())
                        .ok_or_else(|| Fail::runner("readConcern: a level is required"))?;
                    options.read_concern(ReadConcern::new(level))
                }
                "readPreference" => options.read_preference(read_preference(
                    v.as_document()
                        .ok_or_else(|| Fail::runner("readPreference must be an object"))?,
                )?),
                "timeoutMS" => {
                    let mut o = options;
                    o.timeout = Some(super::entities::millis(v, "timeoutMS")?);
                    o
                }
                other => return Err(Fail::runner(format!("unknown bucket option {other}"))),
            };
        }
    }
    entities.insert(id, Entity::Bucket(db.gridfs_bucket(options), client))
}

fn req<'a>(op: &str, args: &'a Document, key: &str) -> Result<&'a Bson, Fail> {
    args.get(key)
        .ok_or_else(|| Fail::runner(format!("{op}: {key} is required")))
}

fn req_str<'a>(op: &str, args: &'a Document, key: &str) -> Result<&'a str, Fail> {
    args.get_str(key)
        .map_err(|_| Fail::runner(format!("{op}: {key} (a string) is required")))
}

/// The options of `args` without the keys an operation takes apart.
fn options<T: serde::de::DeserializeOwned>(
    op: &str,
    args: &Document,
    skip: &[&str],
) -> Result<T, Fail> {
    let mut rest = args.clone();
    for k in skip {
        rest.remove(*k);
    }
    bson::deserialize_from_document(rest)
        .map_err(|e| Fail::unsupported(format!("{op} options: {e}")))
}

/// An upload's source: `{$$hexBytes: "…"}`.
fn hex_source(op: &str, args: &Document) -> Result<Vec<u8>, Fail> {
    let hex = args
        .get_document("source")
        .ok()
        .and_then(|d| d.get_str("$$hexBytes").ok())
        .ok_or_else(|| Fail::runner(format!("{op}: source must be {{$$hexBytes: …}}")))?;
    decode_hex(hex).ok_or_else(|| Fail::runner(format!("{op}: malformed hex bytes {hex:?}")))
}

fn bytes(b: Vec<u8>) -> Value {
    Value::Bson(Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: b,
    }))
}

/// Runs one bucket operation.
pub(crate) async fn bucket_op(
    bucket: &GridFsBucket,
    name: &str,
    args: &Document,
) -> Result<Value, OpError> {
    if args.contains_key("session") {
        return Err(Fail::unsupported(format!("bucket.{name} in a session")).into());
    }
    // The operation's own timeoutMS: the bucket's operations within it.
    let with_timeout;
    let bucket = match super::ops::op_timeout(args)? {
        Some(t) => {
            with_timeout = bucket.with_timeout(t);
            &with_timeout
        }
        None => bucket,
    };
    let mut args = args.clone();
    args.remove("timeoutMS");
    let args = &args;
    match name {
        "upload" | "uploadWithId" => {
            let with_id = name == "uploadWithId";
            let mut keys = vec![
                "filename",
                "source",
                "chunkSizeBytes",
                "metadata",
                "disableMD5",
            ];
            if with_id {
                keys.push("id");
            }
            allow(name, args, &keys)?;
            let filename = req_str(name, args, "filename")?;
            let source = hex_source(name, args)?;
            let o: GridFsUploadOptions =
                options(name, args, &["id", "filename", "source", "disableMD5"])?;
            let id = if with_id {
                bucket
                    .upload_from_stream_with_id(
                        req(name, args, "id")?.clone(),
                        filename,
                        &source[..],
                    )
                    .with_options(o)
                    .await?
            } else {
                bucket
                    .upload_from_stream(filename, &source[..])
                    .with_options(o)
                    .await?
            };
            Ok(if with_id {
                Value::None
            } else {
                Value::Bson(id)
            })
        }
        "download" => {
            allow(name, args, &["id"])?;
            let mut out = Vec::new();
            bucket
                .download_to_stream(req(name, args, "id")?.clone(), &mut out)
                .await?;
            Ok(bytes(out))
        }
        "downloadByName" => {
            allow(name, args, &["filename", "revision"])?;
            let filename = req_str(name, args, "filename")?;
            let o: GridFsDownloadByNameOptions = options(name, args, &["filename"])?;
            let mut out = Vec::new();
            bucket
                .download_to_stream_by_name(filename, &mut out)
                .with_options(o)
                .await?;
            Ok(bytes(out))
        }
        "delete" => {
            allow(name, args, &["id"])?;
            bucket.delete(req(name, args, "id")?.clone()).await?;
            Ok(Value::None)
        }
        "deleteByName" => {
            allow(name, args, &["filename"])?;
            bucket
                .delete_by_name(req_str(name, args, "filename")?)
                .await?;
            Ok(Value::None)
        }
        "rename" => {
            allow(name, args, &["id", "newFilename"])?;
            bucket
                .rename(
                    req(name, args, "id")?.clone(),
                    req_str(name, args, "newFilename")?,
                )
                .await?;
            Ok(Value::None)
        }
        "renameByName" => {
            allow(name, args, &["filename", "newFilename"])?;
            bucket
                .rename_by_name(
                    req_str(name, args, "filename")?,
                    req_str(name, args, "newFilename")?,
                )
                .await?;
            Ok(Value::None)
        }
        "drop" => {
            allow(name, args, &[])?;
            bucket.drop().await?;
            Ok(Value::None)
        }
        "find" => {
            let filter = args
                .get_document("filter")
                .cloned()
                .map_err(|_| Fail::runner("find: filter is required"))?;
            allow(
                name,
                args,
                &[
                    "filter",
                    "allowDiskUse",
                    "batchSize",
                    "limit",
                    "maxTimeMS",
                    "noCursorTimeout",
                    "skip",
                    "sort",
                ],
            )?;
            let o: GridFsFindOptions = options(name, args, &["filter"])?;
            let files = bucket
                .find(filter)
                .with_options(o)
                .await?
                .collect_all()
                .await?;
            Ok(Value::Docs(files))
        }
        other => Err(Fail::unsupported(format!("bucket.{other}")).into()),
    }
}
