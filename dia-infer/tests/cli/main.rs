//! Integration tests of the `dia-infer` binary on the tiny fixtures (offline, CPU), as one test
//! binary: the commands end to end and their bad inputs (`commands`), `--stream` (`stream`), and
//! mutation fuzzing of the files it reads (`fuzz_inputs`).

mod commands;
mod fuzz_inputs;
mod stream;

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Runs the `dia-infer` binary with `args`, offline: no test ever reaches the hub.
fn dia_infer(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dia-infer"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

/// A run's standard error, as text.
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails, showing the exit code and standard error, unless the run succeeded.
fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        stderr(o)
    );
}
