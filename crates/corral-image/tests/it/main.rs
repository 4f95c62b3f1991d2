//! Component tests of `corral-image` against a real registry (Debian's `docker-registry`,
//! run as a child process on a loopback port) fed by `skopeo`.
// Fixture helpers outside #[test] fns: panicking on a broken fixture is the right failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod pull;
