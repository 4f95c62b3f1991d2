//! Docker-compatibility suite. Engine-agnostic: `CORRAL_TEST_SUBJECT=corral|docker` picks the
//! engine (default corral). Every expectation here was first checked against the reference
//! dockerd 20.10 with `CORRAL_TEST_SUBJECT=docker`.
//!
//! Known gaps (behaviour dockerd has and Corral lacks) run inside
//! `corral_testkit::known_gap(reason, || …)`: on Corral the body must fail, and the test fails
//! once it passes, so the list stays true; against dockerd the body must pass. The docker-py
//! suite does the same with strict `xfail`s (`tests/python/dockerpy/conftest.py`).
//!
//! All tests need root (each starts a registry and its own engine) and are ignored by default:
//! `cargo test -p corral-e2e -- --include-ignored`.

mod build;
mod cgroup_v2;
mod common;
mod compose;
mod compose_commands;
mod compose_v1;
mod corral_cli;
mod distribution;
mod dns;
mod dockerpy;
mod events;
mod files;
mod health;
mod host_firewall;
mod images;
mod interactive;
mod isolation;
mod lifecycle;
mod network;
mod restart;
mod run;
mod system;
mod transport;
mod update;
mod volume_options;
mod volumes;
