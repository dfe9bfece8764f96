//! Wire compression: zlib, snappy and zstd are negotiated and carry large documents both ways.

use bson::doc;
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::client_for;

#[tokio::test]
async fn compression_is_negotiated() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    for name in ["zlib", "snappy", "zstd"] {
        let uri = format!("{}&compressors={name}", server.uri());
        let client = client_for(&uri, None).await;
        let mut request = client.start_request().await.unwrap();
        let reply = request
            .run_command("admin", doc! {"ping": 1})
            .await
            .unwrap();
        assert!(reply.contains_key("ok"));
        // Large documents go through the compressor both ways.
        let coll = client.database("z").collection(name);
        let big = "x".repeat(100_000);
        coll.insert_one(doc! {"big": big.clone()}).await.unwrap();
        let back = coll.find_one(doc! {}).await.unwrap().unwrap();
        assert_eq!(back.get_str("big").ok(), Some(big.as_str()));
        drop(request);
        client.shutdown().await;
    }
}
