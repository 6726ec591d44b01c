//! Inputs the fuzz targets found failing (see docs/fuzzing.md), fed byte for
//! byte to the code that failed, each with the property it broke. The inputs
//! are the fuzzers' own (minimized) artifacts, kept in `fuzz_regressions/`.

use lilypad_sdk::storage::{Limits, extract_tar_safe};

/// Found by `tar_extract`: a GNU (pre-POSIX) header of type "regular file"
/// named `outputs/subxtt/` that declares 12 bytes. The tar reader unpacks a
/// file entry whose name ends in '/' as a directory, but its size was counted
/// as content: the returned byte count was 16 instead of 4, and the bytes cap
/// refused an archive that writes 4 bytes.
#[test]
fn tar_file_entry_named_like_a_directory_counts_no_content() {
    let bytes = include_bytes!("fuzz_regressions/tar_extract-file-entry-named-like-a-dir");
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("dest");
    let n = extract_tar_safe(&bytes[..], &dest, &Limits::default()).expect("extract");
    assert!(dest.join("outputs/subxtt").is_dir(), "unpacked as a directory");
    assert_eq!(std::fs::read(dest.join("outputs/stdout")).expect("stdout"), b"moo\n");
    assert_eq!(n, 4, "only outputs/stdout is content");

    let dir = tempfile::tempdir().expect("temp dir");
    let limits = Limits { max_total_bytes: 4, ..Limits::default() };
    extract_tar_safe(&bytes[..], &dir.path().join("dest"), &limits)
        .expect("4 bytes of content fit a 4-byte cap");
}
