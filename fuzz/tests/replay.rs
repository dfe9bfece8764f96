//! Stable replay: every file of `corpus/<target>` run through its target once, as an ordinary
//! test (`cargo test --manifest-path fuzz/Cargo.toml`), with no fuzzer and no instrumentation.
//! A corpus file that makes a target panic fails here with the file's name.

use std::path::Path;

#[test]
fn every_corpus_file_runs_through_its_target_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut ran = 0;
    for (name, target) in mongo_fuzz::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the corpus of {name} ({}): {e}", dir.display()));
        let mut files = 0;
        for entry in entries {
            let path = entry.expect("a corpus entry").path();
            let data = std::fs::read(&path).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panicked on {}", path.display());
            files += 1;
        }
        assert!(files > 0, "the corpus of {name} is empty");
        ran += files;
    }
    println!("replayed {ran} corpus files");
}
