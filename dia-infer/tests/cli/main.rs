//! Integration tests of the `dia-infer` binary on the tiny fixtures (offline, CPU), as one test
//! binary: the commands end to end and their bad inputs (`commands`), `--stream` (`stream`), and
//! mutation fuzzing of the files it reads (`fuzz_inputs`).

mod commands;
mod fuzz_inputs;
mod stream;
