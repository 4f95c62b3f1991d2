//! Docker-compatibility suite. Engine-agnostic: `CORRAL_TEST_SUBJECT=corral|docker` picks the
//! engine (default corral). Every expectation here was first checked against the reference
//! dockerd 20.10 with `CORRAL_TEST_SUBJECT=docker`.
//!
//! All tests need root (each starts a registry and its own engine) and are ignored by default:
//! `cargo test -p corral-e2e -- --include-ignored`.

mod common;
mod compose_v1;
mod corral_cli;
mod distribution;
mod dockerpy;
mod files;
mod images;
mod interactive;
mod isolation;
mod lifecycle;
mod network;
mod restart;
mod run;
mod transport;
mod update;
mod volumes;
