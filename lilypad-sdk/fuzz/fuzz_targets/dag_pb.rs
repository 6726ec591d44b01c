//! UnixFS / dag-pb decoding, as a download decodes each verified block.
//!
//! Input: the bytes of one block. Properties: nothing panics; decoding is
//! total on both codecs a download accepts (dag-pb and raw) and refuses every
//! other codec; re-encoding what was decoded is canonical, i.e. decoding the
//! canonical bytes gives them back unchanged (for the dag-pb node and for the
//! UnixFS `Data` message inside it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lilypad_sdk::storage::{
    Cid, DAG_PB, RAW, StorageError,
    fuzz_api::{decode_block, pb_canonical, unixfs_canonical},
    sha256_multihash,
};

fuzz_target!(|data: &[u8]| {
    let mh = sha256_multihash(data);
    let raw = Cid::new_v1(RAW, mh);
    assert!(decode_block(&raw, data.to_vec()).is_ok(), "a raw block is file content");
    let cbor = Cid::new_v1(0x71, mh);
    assert!(matches!(decode_block(&cbor, data.to_vec()), Err(StorageError::UnsupportedCid { .. })));
    for cid in [Cid::new_v0(mh).expect("sha2-256 is a CIDv0"), Cid::new_v1(DAG_PB, mh)] {
        if let Err(e) = decode_block(&cid, data.to_vec()) {
            let _ = e.to_string();
        }
    }

    if let Ok(canonical) = pb_canonical(data) {
        assert_eq!(pb_canonical(&canonical).as_ref(), Ok(&canonical), "dag-pb is not canonical");
    }
    if let Ok(canonical) = unixfs_canonical(data) {
        assert_eq!(
            unixfs_canonical(&canonical).as_ref(),
            Ok(&canonical),
            "UnixFS is not canonical"
        );
    }
});
