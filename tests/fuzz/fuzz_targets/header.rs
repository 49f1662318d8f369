//! The index header parser and its plausibility checks on arbitrary bytes: never panic; a
//! header judged plausible has a consistent element layout.
#![no_main]

use chroma_wal::chroma::hnsw::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = Header::parse(data) else {
        assert!(data.len() < 100);
        return;
    };
    if h.implausible().is_none() {
        assert!(h.cur_element_count <= h.max_elements);
        assert_eq!(h.label_offset + 8, h.size_data_per_element);
        assert!(h.dimensionality() > 0);
    }
});
