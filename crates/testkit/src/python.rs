//! Running the pinned Python tools (`scripts/requirements-test.txt`: stix2-validator, stix2,
//! taxii2-client, pymisp, medallion) from Rust tests.
//!
//! The rule is the one of [`crate::backends`]: a missing interpreter or module skips the test
//! with a `SKIPPED:` message, except under `CI=true` (where `.ci/run` installs them), where it
//! fails. The interpreter is `DROPWATCH_TEST_PYTHON`, else `python3`.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// The Python interpreter tests run.
pub fn python() -> String {
    std::env::var("DROPWATCH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Whether every module imports. `Err` says what is missing.
pub fn check_modules(modules: &[&str]) -> Result<(), String> {
    let script = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    match Command::new(python()).args(["-c", &script]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run {}: {e}", python())),
    }
}

/// True when the modules are importable. Otherwise prints why `purpose` is skipped and
/// answers false, or panics under `CI=true`.
pub fn require_modules(purpose: &str, modules: &[&str]) -> bool {
    match check_modules(modules) {
        Ok(()) => true,
        Err(why) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{purpose} needs the Python modules {modules:?} in CI (pip install -r scripts/requirements-test.txt): {why}");
            }
            eprintln!(
                "SKIPPED: {purpose}: Python modules {modules:?} unavailable ({why}); \
                 pip install -r scripts/requirements-test.txt"
            );
            false
        }
    }
}

/// Runs a Python script given as text (on stdin, so no temporary file) with arguments and
/// returns its output. Panics if the interpreter cannot be started: call
/// [`require_modules`] first.
pub fn run_script(script: &str, args: &[&str]) -> Output {
    let mut child = Command::new(python())
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("writing the script");
    child.wait_with_output().expect("waiting for python")
}
