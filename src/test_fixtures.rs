//! Captured API responses under `tests/fixtures/`, for unit tests.

/// The bytes of `tests/fixtures/<rel>`; panics naming the path if absent.
pub(crate) fn bytes(rel: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}
