//! Drives the cargo-fuzz entry points with a bounded, deterministic random-input loop, so the
//! targets run on every `cargo test` (a real fuzzer run is `cargo xtask fuzz <target>`, the
//! targets being in the top-level `fuzz/` workspace).

use std::borrow::Cow;

use bson::rawdoc;
use mongo_wire::{
    Compressor, OpGetMore, OpInsert, OpKillCursors, OpMsg, OpQuery, OpReply, encode_compressed,
    fuzzing,
};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = Vec::new();
        f(&mut b);
        out.push(b);
    };
    let msg = OpMsg::new(rawdoc! {"insert": "c", "$db": "d"})
        .with_sequence("documents", vec![rawdoc! {"_id": 1}, rawdoc! {"_id": "x"}]);
    push(&|b| msg.encode(1, 0, b).unwrap());
    push(&|b| msg.clone().with_checksum().encode(1, 0, b).unwrap());
    push(&|b| {
        OpQuery::command("admin", rawdoc! {"isMaster": 1})
            .encode(1, 0, b)
            .unwrap()
    });
    push(&|b| {
        OpReply::new(vec![Cow::Owned(rawdoc! {"ok": 1.0})])
            .encode(1, 0, b)
            .unwrap()
    });
    push(&|b| {
        OpInsert {
            flags: mongo_wire::InsertFlags::empty(),
            full_collection_name: "d.c".into(),
            documents: vec![Cow::Owned(rawdoc! {"a": 1})],
        }
        .encode(1, 0, b)
        .unwrap()
    });
    push(&|b| {
        OpGetMore {
            full_collection_name: "d.c".into(),
            number_to_return: 0,
            cursor_id: 9,
        }
        .encode(1, 0, b)
        .unwrap()
    });
    push(&|b| {
        OpKillCursors {
            cursor_ids: vec![1, 2],
        }
        .encode(1, 0, b)
        .unwrap()
    });
    let mut plain = Vec::new();
    msg.encode(1, 0, &mut plain).unwrap();
    for c in [
        Compressor::Noop,
        Compressor::Snappy,
        Compressor::ZLIB,
        Compressor::Zstd,
    ] {
        if c.is_enabled() {
            push(&|b| encode_compressed(&plain, c, b).unwrap());
        }
    }
    out
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = u8::try_from(rng.below(256)).unwrap();
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, u8::try_from(rng.below(256)).unwrap());
            }
            _ => {
                let n = rng.below(64);
                v = (0..n)
                    .map(|_| u8::try_from(rng.below(256)).unwrap())
                    .collect();
            }
        }
    }
    v
}

#[test]
fn fuzz_entry_points_survive_random_inputs() {
    const RUNS: usize = 20_000;
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut executions = 0usize;
    for _ in 0..RUNS {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        let mut chunked = vec![u8::try_from(rng.below(40)).unwrap()];
        chunked.extend(&input);
        fuzzing::frame_reader(&chunked);
        fuzzing::op_msg(&input);
        fuzzing::query_reply(&input);
        fuzzing::legacy(&input);
        fuzzing::compressed(&input);
        executions += 5;
    }
    assert_eq!(executions, RUNS * 5);
    // unmutated seeds all take the success paths
    for s in &seeds {
        assert!(mongo_wire::decode_message(s).is_ok());
    }
}
