//! The async `MessageReader` / `MessageWriter` over an in-memory duplex pipe.

use bson::rawdoc;
use mongo_wire::{Compressor, Error, MessageReader, MessageRef, MessageWriter, OpMsg, OpQuery};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn write_then_read_messages_reusing_buffers() {
    let (mut client, mut server) = tokio::io::duplex(1 << 16);
    let mut writer = MessageWriter::new();
    let mut reader = MessageReader::default();
    let compressor = [Compressor::ZLIB, Compressor::Snappy, Compressor::Zstd]
        .into_iter()
        .find(|c| c.is_enabled())
        .unwrap_or(Compressor::Noop);

    for i in 0..3 {
        let msg = OpMsg::new(rawdoc! {"find": "c", "$db": "d", "i": i})
            .with_sequence("documents", vec![rawdoc! {"x": "y".repeat(200)}]);
        writer
            .write_message(&mut client, &msg, i, 0, Some(compressor))
            .await
            .unwrap();
        let got = reader.read_message(&mut server).await.unwrap();
        assert_eq!(got.header.request_id, i);
        let MessageRef::Msg(m) = got.message else {
            panic!("not OP_MSG")
        };
        assert_eq!(m.body.get_i32("i").unwrap(), i);
        assert_eq!(m.sequence("documents").unwrap().len(), 1);
        assert_eq!(
            reader.last_compressor().map(Compressor::id),
            Some(compressor.id())
        );
    }

    // hello is never compressed, even when a compressor is negotiated
    let hello = OpMsg::new(rawdoc! {"hello": 1, "$db": "admin"});
    writer
        .write_message(&mut client, &hello, 9, 0, Some(compressor))
        .await
        .unwrap();
    let raw = reader.read_frame(&mut server).await.unwrap();
    assert_eq!(raw[12..16], 2013_i32.to_le_bytes());
    // legacy hello in OP_QUERY, any case
    let legacy = OpQuery::command("admin", rawdoc! {"ISMASTER": 1});
    writer
        .write_message(&mut client, &legacy, 10, 0, Some(compressor))
        .await
        .unwrap();
    let got = reader.read_message(&mut server).await.unwrap();
    assert!(matches!(got.message, MessageRef::Query(_)));
    assert_eq!(reader.last_compressor(), None);
}

#[tokio::test]
async fn read_errors_are_typed() {
    let (mut client, mut server) = tokio::io::duplex(1024);
    let mut reader = MessageReader::new(1000);
    // a header declaring more than the maximum is refused before the body is read
    client.write_all(&5000_i32.to_le_bytes()).await.unwrap();
    client.write_all(&[0; 8]).await.unwrap();
    client.write_all(&2013_i32.to_le_bytes()).await.unwrap();
    assert!(matches!(
        reader.read_message(&mut server).await,
        Err(Error::InvalidLength { .. })
    ));
    // EOF in the middle of a message
    let mut buf = Vec::new();
    OpMsg::new(rawdoc! {"ping": 1})
        .encode(1, 0, &mut buf)
        .unwrap();
    let (mut client, mut server) = tokio::io::duplex(1024);
    client.write_all(&buf[..buf.len() - 3]).await.unwrap();
    drop(client);
    let err = reader.read_message(&mut server).await.unwrap_err();
    assert!(matches!(err, Error::Io(ref e) if e.kind() == std::io::ErrorKind::UnexpectedEof));
    assert!(!err.is_protocol_violation());
}

/// The OP_MSG spec's exhaust stream: one request with `exhaustAllowed`, then replies the
/// reader takes one after the other without another request, each answering the one before
/// and flagged `moreToCome` but the last; a stream compressed or not, and arriving in one
/// write or byte by byte, reads the same.
#[tokio::test]
async fn successive_replies_after_one_exhaust_request() {
    use mongo_wire::MsgFlags;
    for (compressor, byte_by_byte) in [(None, false), (Some(Compressor::Noop), true)] {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let mut writer = MessageWriter::new();
        let request = OpMsg::new(rawdoc! {"getMore": 7_i64, "collection": "c", "$db": "d"})
            .with_flags(MsgFlags::EXHAUST_ALLOWED);
        writer
            .write_message(&mut client, &request, 100, 0, None)
            .await
            .unwrap();
        let mut reader = MessageReader::default();
        let got = reader.read_message(&mut server).await.unwrap();
        let MessageRef::Msg(m) = got.message else {
            panic!("not OP_MSG")
        };
        assert!(m.flags.contains(MsgFlags::EXHAUST_ALLOWED));

        // The server's three replies, encoded back to back.
        let mut wire = Vec::new();
        let mut server_writer = MessageWriter::new();
        let mut sink = Vec::new();
        let mut response_to = 100;
        for (i, id) in [(0, 7_i64), (1, 7), (2, 0)] {
            let flags = if id == 0 {
                MsgFlags::empty()
            } else {
                MsgFlags::MORE_TO_COME
            };
            let reply =
                OpMsg::new(rawdoc! {"cursor": {"id": id, "nextBatch": [{"i": i}]}, "ok": 1})
                    .with_flags(flags);
            sink.clear();
            server_writer
                .write_message(&mut sink, &reply, 200 + i, response_to, compressor)
                .await
                .unwrap();
            wire.extend_from_slice(&sink);
            response_to = 200 + i;
        }
        // The server writes while the client reads (a duplex pipe has a bounded buffer).
        let feeder = async move {
            if byte_by_byte {
                for b in wire {
                    server.write_all(&[b]).await.unwrap();
                }
            } else {
                server.write_all(&wire).await.unwrap();
            }
            server
        };
        let read_all = async {
            let mut expected_response_to = 100;
            let mut seen = Vec::new();
            loop {
                let got = reader.read_message(&mut client).await.unwrap();
                assert_eq!(got.header.response_to, expected_response_to);
                expected_response_to = got.header.request_id;
                let MessageRef::Msg(m) = got.message else {
                    panic!("not OP_MSG")
                };
                let cursor = m.body.get_document("cursor").unwrap();
                let batch = cursor.get_array("nextBatch").unwrap();
                let doc = batch.into_iter().next().unwrap().unwrap();
                seen.push(doc.as_document().unwrap().get_i32("i").unwrap());
                if !m.more_to_come() {
                    assert_eq!(cursor.get_i64("id").unwrap(), 0);
                    break;
                }
            }
            seen
        };
        let (server, seen) = tokio::join!(feeder, read_all);
        assert_eq!(seen, [0, 1, 2]);
        drop(server);
    }
}
