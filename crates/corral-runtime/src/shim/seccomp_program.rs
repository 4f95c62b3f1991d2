//! Seccomp programs compiled once per profile.
//!
//! Compiling Docker's default profile with libseccomp is the largest single step of a
//! container start (several milliseconds per init on a small VM). The daemon compiles each
//! distinct profile once ([`write_seccomp_program`], which keeps the last few programs) and
//! writes the program into the bundle; the shim hands it to libcontainer, whose init loads it
//! instead of compiling (the patch in `vendor/libcontainer`, which only does so when the
//! profile in `config.json` is equal to the one the program was compiled from).

use std::path::Path;
use std::sync::Arc;

use oci_spec::runtime::LinuxSeccomp;
use parking_lot::Mutex;

use super::libcontainer::chain;
use super::runtime::RuntimeError;

/// The program's file name in the bundle, next to `config.json`.
pub const SECCOMP_PROGRAM_FILE: &str = "seccomp.bpf";

/// How many distinct profiles' programs the daemon keeps.
const CACHED: usize = 8;

/// Programs by profile, most recently used first.
static CACHE: Mutex<Vec<(LinuxSeccomp, Arc<[u8]>)>> = Mutex::new(Vec::new());

/// Writes the compiled program of `seccomp` to `bundle/seccomp.bpf`, compiling only a profile
/// not among the last few. Profiles libcontainer cannot precompile (with `SCMP_ACT_NOTIFY`
/// rules) get no file, and their init compiles them as before.
pub fn write_seccomp_program(seccomp: &LinuxSeccomp, bundle: &Path) -> Result<(), RuntimeError> {
    if libcontainer::seccomp::is_notify(seccomp) {
        return Ok(());
    }
    let path = bundle.join(SECCOMP_PROGRAM_FILE);
    let cached = {
        let mut cache = CACHE.lock();
        cache.iter().position(|(p, _)| p == seccomp).map(|i| {
            let hit = cache.remove(i);
            let program = hit.1.clone();
            cache.insert(0, hit);
            program
        })
    };
    let program = match cached {
        Some(program) => {
            std::fs::write(&path, &program).map_err(|e| write_error(&path, e))?;
            return Ok(());
        }
        None => {
            let file = std::fs::File::create(&path).map_err(|e| write_error(&path, e))?;
            libcontainer::seccomp::export_bpf(seccomp, &file).map_err(|e| RuntimeError {
                message: format!("compiling the seccomp profile: {}", chain(e).message),
            })?;
            drop(file);
            std::fs::read(&path).map_err(|e| RuntimeError {
                message: format!("reading back {}: {e}", path.display()),
            })?
        }
    };
    let mut cache = CACHE.lock();
    cache.insert(0, (seccomp.clone(), Arc::from(program)));
    cache.truncate(CACHED);
    Ok(())
}

/// Passes the bundle's precompiled program, if any, to libcontainer for the container this
/// process is about to create. `seccomp` is the profile of the bundle's `config.json`.
pub(crate) fn use_seccomp_program(bundle: &Path, seccomp: Option<&LinuxSeccomp>) {
    let Some(seccomp) = seccomp else { return };
    let path = bundle.join(SECCOMP_PROGRAM_FILE);
    match std::fs::read(&path) {
        Ok(program) => {
            if !libcontainer::seccomp::set_precompiled(seccomp.clone(), program) {
                tracing::debug!("a seccomp program was already set in this process");
            }
        }
        // No program: the init compiles the profile.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "reading the seccomp program"),
    }
}

fn write_error(path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError {
        message: format!("writing {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder};

    use super::*;

    fn profile(denied: &str, action: LinuxSeccompAction) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(vec![LinuxSyscallBuilder::default()
                .names(vec![denied.to_owned()])
                .action(action)
                .errno_ret(1u32)
                .build()
                .unwrap()])
            .build()
            .unwrap()
    }

    #[test]
    fn programs_are_per_profile_and_cached_ones_equal_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let mkdir = profile("mkdir", LinuxSeccompAction::ScmpActErrno);
        let rmdir = profile("rmdir", LinuxSeccompAction::ScmpActErrno);
        write_seccomp_program(&mkdir, &a).unwrap();
        write_seccomp_program(&rmdir, &b).unwrap();
        let first = std::fs::read(a.join(SECCOMP_PROGRAM_FILE)).unwrap();
        let other = std::fs::read(b.join(SECCOMP_PROGRAM_FILE)).unwrap();
        assert!(
            !first.is_empty() && first.len() % 8 == 0,
            "{} bytes",
            first.len()
        );
        assert_ne!(first, other, "different profiles, different programs");
        // Again, from the cache: the same bytes as compiling afresh.
        write_seccomp_program(&mkdir, &b).unwrap();
        assert_eq!(std::fs::read(b.join(SECCOMP_PROGRAM_FILE)).unwrap(), first);
        let fresh = dir.path().join("fresh");
        let file = std::fs::File::create(&fresh).unwrap();
        libcontainer::seccomp::export_bpf(&mkdir, &file).unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), first);
    }

    #[test]
    fn a_notify_profile_gets_no_program() {
        let dir = tempfile::tempdir().unwrap();
        let notify = profile("mkdir", LinuxSeccompAction::ScmpActNotify);
        write_seccomp_program(&notify, dir.path()).unwrap();
        assert!(!dir.path().join(SECCOMP_PROGRAM_FILE).exists());
    }
}
