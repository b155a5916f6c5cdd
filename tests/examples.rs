//! The BSL runner (tests/bsl/) that executes README.md's and examples-1c/'s BSL through the
//! 1C host emulator.

mod host;
mod support;

use std::path::Path;
use std::process::Command;

use host::Platform;
use support::python;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The runner's own tests: the language subset, 1C's rules it models, and that unsupported
/// constructs, undefined names and members the add-in lacks fail instead of being skipped.
#[test]
fn bsl_runner_checks_itself() {
    let out = Command::new(python())
        .args(["-m", "unittest", "discover", "-s"])
        .arg(root().join("tests/bsl"))
        .args(["-p", "test_*.py"])
        .env("HOST1C", host::emulator(Platform::Linux))
        .env("KAFKA1C_LIB", host::library(Platform::Linux))
        .output()
        .expect("python3 -m unittest");
    assert!(
        out.status.success(),
        "tests/bsl unit tests failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
