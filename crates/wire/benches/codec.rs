//! Codec benchmarks: a 1 KB command, an insert of 1,000 × 1 KB documents as a document
//! sequence, and the same insert compressed with each enabled algorithm, each next to a memcpy
//! of the same bytes (criterion `Throughput::Bytes`).
//!
//! `cargo bench -p mongo-wire --all-features --bench codec`

#![allow(missing_docs)]

use std::hint::black_box;

use bson::{RawDocumentBuf, rawdoc};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mongo_wire::{
    Compressor, MessageRef, OpCompressedRef, OpMsg, decode_message, encode_compressed,
};

fn doc_1kb(i: i32) -> RawDocumentBuf {
    let d = rawdoc! {
        "_id": i,
        "name": "benchmark document",
        "n": 12345.5,
        "flag": true,
        "payload": "p".repeat(940),
    };
    debug_assert!((1000..1100).contains(&d.as_bytes().len()));
    d
}

fn memcpy(c: &mut Criterion, group: &str, bytes: &[u8]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut dst = vec![0u8; bytes.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(bytes));
            black_box(&dst);
        })
    });
    g.finish();
}

/// Encodes `msg` once, benchmarks a memcpy of those bytes and then `encode` in `group`; returns
/// the bytes and the still open group for the caller's decode benchmark.
fn memcpy_and_encode<'c>(
    c: &'c mut Criterion,
    group: &str,
    msg: &OpMsg,
) -> (Vec<u8>, BenchmarkGroup<'c, WallTime>) {
    let mut bytes = Vec::new();
    msg.encode(1, 0, &mut bytes).unwrap();
    memcpy(c, group, &bytes);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut buf = Vec::with_capacity(bytes.len());
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(msg).encode(1, 0, &mut buf).unwrap();
            black_box(&buf);
        })
    });
    (bytes, g)
}

fn command(c: &mut Criterion) {
    let msg = OpMsg::new(rawdoc! {
        "find": "coll",
        "filter": { "name": "benchmark", "payload": "q".repeat(900) },
        "$db": "test",
    });
    let (bytes, mut g) = memcpy_and_encode(c, "command_1kb", &msg);
    g.bench_function("decode", |b| {
        b.iter(|| {
            let d = decode_message(black_box(&bytes)).unwrap();
            black_box(d);
        })
    });
    g.finish();
}

fn insert(c: &mut Criterion) {
    let docs: Vec<_> = (0..1000).map(doc_1kb).collect();
    let msg = OpMsg::new(rawdoc! {"insert": "coll", "$db": "test", "ordered": true})
        .with_sequence("documents", docs);
    let (bytes, mut g) = memcpy_and_encode(c, "insert_1000x1kb", &msg);
    g.bench_function("decode", |b| {
        b.iter(|| {
            let d = decode_message(black_box(&bytes)).unwrap();
            let MessageRef::Msg(m) = d.message else {
                unreachable!()
            };
            // walk the borrowed documents
            let n = m.sequences[0]
                .documents()
                .map(|d| d.as_bytes().len())
                .sum::<usize>();
            black_box(n);
        })
    });
    g.finish();

    for compressor in [Compressor::Snappy, Compressor::ZLIB, Compressor::Zstd] {
        if !compressor.is_enabled() {
            continue;
        }
        let mut packed = Vec::new();
        encode_compressed(&bytes, compressor, &mut packed).unwrap();
        let mut g = c.benchmark_group(format!("insert_1000x1kb_{compressor}"));
        // throughput counted on the uncompressed message, comparable with memcpy above
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = Vec::with_capacity(bytes.len() * 2);
        g.bench_function("compress", |b| {
            b.iter(|| {
                out.clear();
                encode_compressed(black_box(&bytes), compressor, &mut out).unwrap();
                black_box(&out);
            })
        });
        let mut inflated = Vec::with_capacity(bytes.len());
        g.bench_function("decompress_decode", |b| {
            b.iter(|| {
                let c = OpCompressedRef::decode(black_box(&packed)).unwrap();
                c.decompress_into(48_000_000, &mut inflated).unwrap();
                black_box(decode_message(&inflated).unwrap());
            })
        });
        g.finish();
        eprintln!("{compressor}: {} -> {} bytes", bytes.len(), packed.len());
    }
}

criterion_group!(benches, command, insert);
criterion_main!(benches);
