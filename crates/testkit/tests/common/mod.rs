//! A minimal client written directly on mongo-wire, for the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod change_streams;

use std::net::SocketAddr;

use bson::{Bson, Document, RawDocumentBuf, doc, spec::BinarySubtype};
use mongo_auth::scram::primitives::{self, ScramHash};
use mongo_wire::{
    Compressor, Frame, MessageReader, MessageRef, MessageWriter, MsgFlags, OpMsg, OpQuery,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct Client {
    pub stream: Box<dyn Stream>,
    reader: MessageReader,
    writer: MessageWriter,
    next_id: i32,
    pub compressor: Option<Compressor>,
    /// The compressor of the last reply (None when it was not OP_COMPRESSED).
    pub last_reply_compressor: Option<Compressor>,
    pub last_flags: MsgFlags,
    pub last_response_to: i32,
    /// The request id of the last reply (what a streamed reply after it answers).
    pub last_reply_id: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).unwrap();
        Self::over(Box::new(s))
    }

    pub fn over(stream: Box<dyn Stream>) -> Self {
        Self {
            stream,
            reader: MessageReader::default(),
            writer: MessageWriter::new(),
            next_id: 1,
            compressor: None,
            last_reply_compressor: None,
            last_flags: MsgFlags::empty(),
            last_response_to: 0,
            last_reply_id: 0,
        }
    }

    pub async fn send(&mut self, msg: &OpMsg) -> std::io::Result<i32> {
        self.next_id += 1;
        let id = self.next_id;
        self.writer
            .write_message(&mut self.stream, msg, id, 0, self.compressor)
            .await
            .map_err(std::io::Error::other)?;
        Ok(id)
    }

    /// Reads one reply (OP_MSG or OP_REPLY).
    pub async fn receive(&mut self) -> std::io::Result<Document> {
        let bytes = self
            .reader
            .read_frame(&mut self.stream)
            .await
            .map_err(std::io::Error::other)?
            .to_vec();
        let frame = Frame::new(bytes, 48_000_000).map_err(std::io::Error::other)?;
        self.last_reply_compressor = frame.compressor();
        let decoded = frame.decode().map_err(std::io::Error::other)?;
        self.last_response_to = decoded.header.response_to;
        self.last_reply_id = decoded.header.request_id;
        match decoded.message {
            MessageRef::Msg(m) => {
                self.last_flags = m.flags;
                Ok(Document::try_from(m.body).map_err(std::io::Error::other)?)
            }
            MessageRef::Reply(r) => {
                self.last_flags = MsgFlags::empty();
                let d = r
                    .documents
                    .first()
                    .ok_or_else(|| std::io::Error::other("empty reply"))?;
                Ok(Document::try_from(d.as_ref()).map_err(std::io::Error::other)?)
            }
            _ => Err(std::io::Error::other("unexpected opcode")),
        }
    }

    pub async fn try_command(&mut self, db: &str, mut cmd: Document) -> std::io::Result<Document> {
        cmd.insert("$db", db);
        let msg = OpMsg::new(RawDocumentBuf::try_from(&cmd).unwrap());
        self.send(&msg).await?;
        self.receive().await
    }

    pub async fn command(&mut self, db: &str, cmd: Document) -> Document {
        self.try_command(db, cmd).await.expect("command I/O")
    }

    /// Sends any message (a legacy write, say) without waiting for a reply.
    pub async fn send_any<M: mongo_wire::Encode + ?Sized>(&mut self, msg: &M) {
        self.next_id += 1;
        let id = self.next_id;
        self.writer
            .write_message(&mut self.stream, msg, id, 0, None)
            .await
            .unwrap();
    }

    /// A command over OP_QUERY on `db.$cmd`.
    pub async fn legacy_command(&mut self, db: &str, cmd: Document) -> Document {
        let q = OpQuery::command(db, RawDocumentBuf::try_from(&cmd).unwrap());
        self.send_any(&q).await;
        self.receive().await.unwrap()
    }

    pub async fn legacy_hello(&mut self) -> Document {
        let q = OpQuery::command(
            "admin",
            RawDocumentBuf::try_from(&doc! { "isMaster": 1, "helloOk": true }).unwrap(),
        );
        self.next_id += 1;
        let id = self.next_id;
        self.writer
            .write_message(&mut self.stream, &q, id, 0, None)
            .await
            .unwrap();
        self.receive().await.unwrap()
    }

    /// SCRAM-SHA-256 (sha1 = false) or SCRAM-SHA-1 conversation; returns the final reply.
    pub async fn scram(&mut self, user: &str, password: &str, sha1: bool) -> Document {
        let mech = if sha1 { "SCRAM-SHA-1" } else { "SCRAM-SHA-256" };
        let bare = format!("n={user},r=ClientNonce0123456789");
        let r = self
            .command(
                "admin",
                doc! { "saslStart": 1, "mechanism": mech, "payload": bin(format!("n,,{bare}").into_bytes()), "options": { "skipEmptyExchange": true } },
            )
            .await;
        if r.get_f64("ok").unwrap_or(0.0) != 1.0 {
            return r;
        }
        let conv = r.get_i32("conversationId").unwrap();
        let server_first =
            String::from_utf8(r.get_binary_generic("payload").unwrap().clone()).unwrap();
        let mut parts = server_first.split(',');
        let nonce = parts
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap()
            .to_string();
        let salt =
            primitives::b64_decode(parts.next().unwrap().strip_prefix("s=").unwrap()).unwrap();
        let iters: u32 = parts
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{bare},{server_first},{without_proof}");
        // SASLprep is the identity on the ASCII passwords the tests use.
        let (hash, pw) = if sha1 {
            (
                ScramHash::Sha1,
                primitives::mongo_password_digest(user, password),
            )
        } else {
            (ScramHash::Sha256, password.to_string())
        };
        let salted = primitives::hi(hash, pw.as_bytes(), &salt, iters);
        let ck = primitives::client_key(hash, &salted);
        let proof = primitives::client_proof(hash, &ck, auth.as_bytes());
        let fin = format!("{without_proof},p={}", primitives::b64_encode(&proof));
        self.command(
            "admin",
            doc! { "saslContinue": 1, "conversationId": conv, "payload": bin(fin.into_bytes()) },
        )
        .await
    }
}

fn bin(bytes: Vec<u8>) -> Bson {
    Bson::Binary(bson::Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

pub fn ok(d: &Document) -> bool {
    matches!(d.get("ok"), Some(Bson::Double(v)) if *v == 1.0)
        || matches!(d.get("ok"), Some(Bson::Int32(1)))
}

pub fn code(d: &Document) -> i32 {
    d.get_i32("code").unwrap_or(0)
}
