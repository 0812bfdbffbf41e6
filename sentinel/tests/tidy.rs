//! Architecture rules as tests: `src/core/` stays sans-IO (STYLE.md §1, §2).

use std::fs;
use std::path::{Path, PathBuf};

/// Tokens that must never appear in the core, outside comments.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "quinn",
    "tonic",
    "std::net",
    "std::fs",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "rand::rng()",
    "println!",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_imports_no_io_clock_or_unseeded_randomness() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    assert!(
        !files.is_empty(),
        "no source files found under {}",
        core.display()
    );
    let mut offences = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("source file is readable");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for token in FORBIDDEN {
                if code.contains(token) {
                    offences.push(format!("{}:{}: {token}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "forbidden in src/core:\n{}",
        offences.join("\n")
    );
}
