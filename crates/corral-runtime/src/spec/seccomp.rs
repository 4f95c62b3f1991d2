//! Seccomp: Docker's default profile as a Rust table, custom Docker-format profiles, and their
//! rendering into an OCI [`LinuxSeccomp`] for the host architecture and capability set.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
    LinuxSyscallBuilder,
};
use serde::Deserialize;

use super::error::{Result, SpecError};

/// A seccomp profile in Docker's JSON format (moby `profiles/seccomp`): rules carry
/// `includes`/`excludes` on capabilities and architectures that are resolved per container.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
}

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
/// | CLONE_NEWNET: `clone` may not create namespaces without CAP_SYS_ADMIN.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// ENOSYS: `clone3` flags live in memory seccomp cannot inspect; glibc falls back to `clone`.
const ENOSYS: u32 = 38;

/// The ordinary syscalls Docker's default profile allows unconditionally.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Conditional rules of Docker's default profile: (names, action errno or allow, args,
/// include caps, exclude caps, include arches, exclude arches).
type RuleRow = (
    &'static [&'static str],
    Option<u32>,
    &'static [(usize, u64, u64, LinuxSeccompOperator)],
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const EQ: LinuxSeccompOperator = LinuxSeccompOperator::ScmpCmpEq;
const NE: LinuxSeccompOperator = LinuxSeccompOperator::ScmpCmpNe;
const MASKED_EQ: LinuxSeccompOperator = LinuxSeccompOperator::ScmpCmpMaskedEq;

const CONDITIONAL: &[RuleRow] = &[
    // Needs kernel >= 4.8, where seccomp is checked after ptrace.
    (
        &["process_vm_readv", "process_vm_writev", "ptrace"],
        None,
        &[],
        &[],
        &[],
        &[],
        &[],
    ),
    // AF_VSOCK sockets reach the host.
    (&["socket"], None, &[(0, 40, 0, NE)], &[], &[], &[], &[]),
    // personality: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query.
    (
        &["personality"],
        None,
        &[(0, 0x0, 0, EQ)],
        &[],
        &[],
        &[],
        &[],
    ),
    (
        &["personality"],
        None,
        &[(0, 0x8, 0, EQ)],
        &[],
        &[],
        &[],
        &[],
    ),
    (
        &["personality"],
        None,
        &[(0, 0x20000, 0, EQ)],
        &[],
        &[],
        &[],
        &[],
    ),
    (
        &["personality"],
        None,
        &[(0, 0x20008, 0, EQ)],
        &[],
        &[],
        &[],
        &[],
    ),
    (
        &["personality"],
        None,
        &[(0, 0xffff_ffff, 0, EQ)],
        &[],
        &[],
        &[],
        &[],
    ),
    (
        &["sync_file_range2", "swapcontext"],
        None,
        &[],
        &[],
        &[],
        &["ppc64le"],
        &[],
    ),
    (
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        None,
        &[],
        &[],
        &[],
        &["arm", "arm64"],
        &[],
    ),
    (&["arch_prctl"], None, &[], &[], &[], &["amd64", "x32"], &[]),
    (
        &["modify_ldt"],
        None,
        &[],
        &[],
        &[],
        &["amd64", "x32", "x86"],
        &[],
    ),
    (
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        None,
        &[],
        &[],
        &[],
        &["s390", "s390x"],
        &[],
    ),
    (
        &["riscv_flush_icache"],
        None,
        &[],
        &[],
        &[],
        &["riscv64"],
        &[],
    ),
    (
        &["open_by_handle_at"],
        None,
        &[],
        &["CAP_DAC_READ_SEARCH"],
        &[],
        &[],
        &[],
    ),
    (
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        None,
        &[],
        &["CAP_SYS_ADMIN"],
        &[],
        &[],
        &[],
    ),
    // clone without namespace flags (s390 swaps the first two arguments).
    (
        &["clone"],
        None,
        &[(0, CLONE_NAMESPACE_FLAGS, 0, MASKED_EQ)],
        &[],
        &["CAP_SYS_ADMIN"],
        &[],
        &["s390", "s390x"],
    ),
    (
        &["clone"],
        None,
        &[(1, CLONE_NAMESPACE_FLAGS, 0, MASKED_EQ)],
        &[],
        &["CAP_SYS_ADMIN"],
        &["s390", "s390x"],
        &[],
    ),
    (
        &["clone3"],
        Some(ENOSYS),
        &[],
        &[],
        &["CAP_SYS_ADMIN"],
        &[],
        &[],
    ),
    (&["reboot"], None, &[], &["CAP_SYS_BOOT"], &[], &[], &[]),
    (&["chroot"], None, &[], &["CAP_SYS_CHROOT"], &[], &[], &[]),
    (
        &["delete_module", "init_module", "finit_module"],
        None,
        &[],
        &["CAP_SYS_MODULE"],
        &[],
        &[],
        &[],
    ),
    (&["acct"], None, &[], &["CAP_SYS_PACCT"], &[], &[], &[]),
    (
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        None,
        &[],
        &["CAP_SYS_PTRACE"],
        &[],
        &[],
        &[],
    ),
    (
        &["iopl", "ioperm"],
        None,
        &[],
        &["CAP_SYS_RAWIO"],
        &[],
        &[],
        &[],
    ),
    (
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        None,
        &[],
        &["CAP_SYS_TIME"],
        &[],
        &[],
        &[],
    ),
    (
        &["vhangup"],
        None,
        &[],
        &["CAP_SYS_TTY_CONFIG"],
        &[],
        &[],
        &[],
    ),
    (
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        None,
        &[],
        &["CAP_SYS_NICE"],
        &[],
        &[],
        &[],
    ),
    (&["syslog"], None, &[], &["CAP_SYSLOG"], &[], &[], &[]),
    (&["bpf"], None, &[], &["CAP_BPF"], &[], &[], &[]),
    (
        &["perf_event_open"],
        None,
        &[],
        &["CAP_PERFMON"],
        &[],
        &[],
        &[],
    ),
];

/// The Go name of the architecture this binary runs on, as Docker profiles spell it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// How many renderings of the default profile [`render_default`] keeps (one per distinct
/// capability set and architecture; almost every container uses the default set).
const RENDERED_CACHE: usize = 8;

/// Docker's default profile rendered for `caps` on `arch`: the same as
/// `SeccompProfile::docker_default().render(caps, arch)`, but the profile is built once per
/// process and the last few renderings are kept. Building and rendering the profile was most
/// of `build_spec`'s time, and the daemon did it for every container.
///
/// # Errors
/// As [`SeccompProfile::render`] (never for the default profile).
pub(crate) fn render_default(caps: &[&str], arch: &str) -> Result<LinuxSeccomp> {
    static PROFILE: std::sync::OnceLock<SeccompProfile> = std::sync::OnceLock::new();
    type Key = (Vec<String>, String);
    static RENDERED: parking_lot::Mutex<Vec<(Key, LinuxSeccomp)>> =
        parking_lot::Mutex::new(Vec::new());
    // The rendering depends on the set of capabilities, not on their order.
    let mut set: Vec<String> = caps.iter().map(|c| (*c).to_owned()).collect();
    set.sort_unstable();
    set.dedup();
    let key = (set, arch.to_owned());
    if let Some((_, hit)) = RENDERED.lock().iter().find(|(k, _)| *k == key) {
        return Ok(hit.clone());
    }
    let rendered = PROFILE
        .get_or_init(SeccompProfile::docker_default)
        .render(caps, arch)?;
    let mut cache = RENDERED.lock();
    if cache.len() >= RENDERED_CACHE {
        cache.remove(0);
    }
    cache.push((key, rendered.clone()));
    Ok(rendered)
}

// === impl SeccompProfile ===

impl SeccompProfile {
    /// Docker's default profile: default `SCMP_ACT_ERRNO` (EPERM), the allow list, and the
    /// argument-, architecture- and capability-conditional rules.
    pub fn docker_default() -> Self {
        let arch_map = vec![
            ArchMap::new(
                Arch::ScmpArchX86_64,
                &[Arch::ScmpArchX86, Arch::ScmpArchX32],
            ),
            ArchMap::new(Arch::ScmpArchAarch64, &[Arch::ScmpArchArm]),
            ArchMap::new(Arch::ScmpArchS390x, &[Arch::ScmpArchS390]),
            ArchMap::new(Arch::ScmpArchRiscv64, &[]),
        ];
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let filter = |caps: &[&str], arches: &[&str]| {
            (!caps.is_empty() || !arches.is_empty()).then(|| Filter {
                caps: Some(strings(caps)),
                arches: Some(strings(arches)),
            })
        };
        let mut syscalls = vec![Rule {
            names: Some(strings(ALLOWED)),
            name: None,
            action: LinuxSeccompAction::ScmpActAllow,
            errno_ret: None,
            args: None,
            includes: None,
            excludes: None,
        }];
        for (names, errno, args, inc_caps, exc_caps, inc_arches, exc_arches) in CONDITIONAL {
            syscalls.push(Rule {
                names: Some(strings(names)),
                name: None,
                action: match errno {
                    Some(_) => LinuxSeccompAction::ScmpActErrno,
                    None => LinuxSeccompAction::ScmpActAllow,
                },
                errno_ret: *errno,
                args: (!args.is_empty()).then(|| {
                    args.iter()
                        .map(|(index, value, value_two, op)| {
                            // The builder has a default for every field and no validation:
                            // it cannot fail.
                            LinuxSeccompArgBuilder::default()
                                .index(*index)
                                .value(*value)
                                .value_two(*value_two)
                                .op(*op)
                                .build()
                                .unwrap_or_default()
                        })
                        .collect()
                }),
                includes: filter(inc_caps, inc_arches),
                excludes: filter(exc_caps, exc_arches),
            });
        }
        Self {
            default_action: LinuxSeccompAction::ScmpActErrno,
            default_errno_ret: Some(1),
            architectures: None,
            arch_map: Some(arch_map),
            flags: None,
            syscalls: Some(syscalls),
        }
    }

    /// Parses a profile in Docker's JSON format (what `--security-opt seccomp=<file>` sends).
    ///
    /// # Errors
    /// [`SpecError::InvalidSeccompProfile`] when the JSON does not match the format.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| SpecError::InvalidSeccompProfile {
            reason: e.to_string(),
        })
    }

    /// Renders the profile for a container with capabilities `caps` (`CAP_*` names) on the
    /// architecture `arch` (Go spelling, see [`host_arch`]).
    ///
    /// Rules gated on a minimum kernel version are kept: Corral needs a kernel newer than
    /// every such gate in Docker's profile (4.8).
    ///
    /// `SCMP_CMP_MASKED_EQ` arguments are emitted twice, once with `value`/`valueTwo`
    /// swapped. runc reads `value` as the mask and `valueTwo` as the datum (the OCI meaning);
    /// youki's libcontainer 0.7 reads them the other way round. A well-formed masked rule
    /// (datum within mask) becomes unsatisfiable when swapped, so the pair means exactly the
    /// original rule under either runtime.
    ///
    /// # Errors
    /// [`SpecError::InvalidSeccompProfile`] when a rule has no syscall names.
    pub fn render(&self, caps: &[&str], arch: &str) -> Result<LinuxSeccomp> {
        let native = native_arch(arch);
        let architectures: Vec<Arch> = match (&self.arch_map, native) {
            (Some(map), Some(native)) if !map.is_empty() => map
                .iter()
                .filter(|m| m.architecture == native)
                .flat_map(|m| {
                    std::iter::once(m.architecture)
                        .chain(m.sub_architectures.iter().flatten().copied())
                })
                .collect(),
            _ => self.architectures.clone().unwrap_or_default(),
        };
        let mut syscalls: Vec<LinuxSyscall> = Vec::new();
        for rule in self.syscalls.iter().flatten() {
            if !rule.applies(caps, arch) {
                continue;
            }
            let names: Vec<String> = match (&rule.names, &rule.name) {
                (Some(n), _) if !n.is_empty() => n.clone(),
                (_, Some(n)) if !n.is_empty() => vec![n.clone()],
                _ => {
                    return Err(SpecError::InvalidSeccompProfile {
                        reason: "a syscall rule has no names".to_owned(),
                    })
                }
            };
            let mut variants = vec![rule.args.clone()];
            if let Some(swapped) = rule.args.as_deref().and_then(swap_masked) {
                variants.push(Some(swapped));
            }
            for args in variants {
                let mut b = LinuxSyscallBuilder::default()
                    .names(names.clone())
                    .action(rule.action);
                if let Some(errno) = rule.errno_ret {
                    b = b.errno_ret(errno);
                }
                if let Some(args) = args {
                    b = b.args(args);
                }
                syscalls.push(b.build()?);
            }
        }
        let mut b = LinuxSeccompBuilder::default()
            .default_action(self.default_action)
            .architectures(architectures)
            .syscalls(syscalls);
        if let Some(errno) = self.default_errno_ret {
            b = b.default_errno_ret(errno);
        }
        if let Some(flags) = &self.flags {
            b = b.flags(flags.clone());
        }
        Ok(b.build()?)
    }
}

// === impl ArchMap ===

impl ArchMap {
    fn new(architecture: Arch, subs: &[Arch]) -> Self {
        Self {
            architecture,
            sub_architectures: Some(subs.to_vec()),
        }
    }
}

// === impl Rule ===

impl Rule {
    /// moby `profiles/seccomp.setupSeccomp`: every included cap and the arch (if listed) must
    /// be present; any excluded cap or the arch being excluded drops the rule.
    fn applies(&self, caps: &[&str], arch: &str) -> bool {
        let has = |c: &String| caps.contains(&c.as_str());
        if let Some(inc) = &self.includes {
            if let Some(need) = &inc.caps {
                if !need.iter().all(has) {
                    return false;
                }
            }
            if let Some(arches) = &inc.arches {
                if !arches.is_empty() && !arches.iter().any(|a| a == arch) {
                    return false;
                }
            }
        }
        if let Some(exc) = &self.excludes {
            if exc.caps.iter().flatten().any(has) {
                return false;
            }
            if exc.arches.iter().flatten().any(|a| a == arch) {
                return false;
            }
        }
        true
    }
}

fn swap_masked(args: &[LinuxSeccompArg]) -> Option<Vec<LinuxSeccompArg>> {
    let needs = args.iter().any(|a| {
        a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq && a.value_two().unwrap_or(0) != a.value()
    });
    needs.then(|| {
        args.iter()
            .map(|a| {
                if a.op() != LinuxSeccompOperator::ScmpCmpMaskedEq {
                    return *a;
                }
                LinuxSeccompArgBuilder::default()
                    .index(a.index())
                    .value(a.value_two().unwrap_or(0))
                    .value_two(a.value())
                    .op(a.op())
                    .build()
                    // Cannot fail: every field is set and there is no validation.
                    .unwrap_or(*a)
            })
            .collect()
    })
}

fn native_arch(arch: &str) -> Option<Arch> {
    Some(match arch {
        "amd64" => Arch::ScmpArchX86_64,
        "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::caps::DEFAULT_CAPABILITIES;

    fn allowed(s: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        s.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    fn default_for(caps: &[&str], arch: &str) -> LinuxSeccomp {
        SeccompProfile::docker_default().render(caps, arch).unwrap()
    }

    #[test]
    fn cached_default_rendering_equals_a_fresh_one() {
        let mut admin: Vec<&str> = DEFAULT_CAPABILITIES.to_vec();
        admin.push("CAP_SYS_ADMIN");
        let mut reversed = admin.clone();
        reversed.reverse();
        let sets: [&[&str]; 4] = [&DEFAULT_CAPABILITIES, &admin, &reversed, &[]];
        // More distinct keys than the cache holds, twice: hits, misses and evictions.
        for _ in 0..2 {
            for arch in ["amd64", "arm64", "s390x"] {
                for caps in sets {
                    assert_eq!(
                        render_default(caps, arch).unwrap(),
                        default_for(caps, arch),
                        "{arch} {caps:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn default_profile_denies_with_eperm_on_x86_arches() {
        let s = default_for(&DEFAULT_CAPABILITIES, "amd64");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let arm = default_for(&DEFAULT_CAPABILITIES, "arm64");
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
    }

    #[test]
    fn ordinary_syscalls_are_allowed_and_admin_ones_are_not() {
        let s = default_for(&DEFAULT_CAPABILITIES, "amd64");
        for name in [
            "read",
            "write",
            "execve",
            "openat",
            "futex",
            "arch_prctl",
            "chroot",
        ] {
            let rules = allowed(&s, name);
            assert!(
                rules
                    .iter()
                    .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none()),
                "{name} should be allowed"
            );
        }
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "ptrace_attach",
            "reboot",
            "init_module",
            "kexec_load",
            "bpf",
        ] {
            assert!(allowed(&s, name).is_empty(), "{name} should not be allowed");
        }
        // Arch-specific rules follow the host arch.
        assert!(allowed(&s, "set_tls").is_empty());
        assert!(!allowed(&default_for(&DEFAULT_CAPABILITIES, "arm64"), "set_tls").is_empty());
        assert!(allowed(&default_for(&DEFAULT_CAPABILITIES, "arm64"), "arch_prctl").is_empty());
    }

    #[test]
    fn clone_is_allowed_only_without_namespace_flags() {
        let s = default_for(&DEFAULT_CAPABILITIES, "amd64");
        let clone = allowed(&s, "clone");
        assert_eq!(clone.len(), 2, "the rule and its youki-compatible twin");
        let args: Vec<(u64, Option<u64>)> = clone
            .iter()
            .map(|r| {
                let a = r.args().as_ref().unwrap();
                assert_eq!(a.len(), 1);
                assert_eq!(a[0].index(), 0);
                assert_eq!(a[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
                (a[0].value(), a[0].value_two())
            })
            .collect();
        assert_eq!(
            args,
            vec![
                (CLONE_NAMESPACE_FLAGS, Some(0)),
                (0, Some(CLONE_NAMESPACE_FLAGS))
            ]
        );
        let clone3 = allowed(&s, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(ENOSYS));
    }

    #[test]
    fn cap_sys_admin_unlocks_mount_family_and_plain_clone() {
        let mut caps = DEFAULT_CAPABILITIES.to_vec();
        caps.push("CAP_SYS_ADMIN");
        let s = default_for(&caps, "amd64");
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "sethostname",
        ] {
            let rules = allowed(&s, name);
            assert!(
                rules
                    .iter()
                    .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none()),
                "{name}"
            );
        }
        assert!(allowed(&s, "clone3")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
        assert!(allowed(&s, "clone").iter().all(|r| r.args().is_none()));
    }

    #[test]
    fn other_caps_unlock_their_syscalls() {
        let base = default_for(&DEFAULT_CAPABILITIES, "amd64");
        for (cap, name) in [
            ("CAP_SYS_PTRACE", "kcmp"),
            ("CAP_SYS_TIME", "settimeofday"),
            ("CAP_SYS_MODULE", "finit_module"),
            ("CAP_SYS_BOOT", "reboot"),
            ("CAP_SYS_NICE", "mbind"),
            ("CAP_BPF", "bpf"),
            ("CAP_PERFMON", "perf_event_open"),
            ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
        ] {
            assert!(allowed(&base, name).is_empty(), "{name} without {cap}");
            let mut caps = DEFAULT_CAPABILITIES.to_vec();
            caps.push(cap);
            assert!(
                !allowed(&default_for(&caps, "amd64"), name).is_empty(),
                "{name} with {cap}"
            );
        }
        // chroot follows CAP_SYS_CHROOT, which is a default capability.
        let caps: Vec<&str> = DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| *c != "CAP_SYS_CHROOT")
            .collect();
        assert!(allowed(&default_for(&caps, "amd64"), "chroot").is_empty());
    }

    #[test]
    fn personality_is_limited_to_known_personas() {
        let s = default_for(&DEFAULT_CAPABILITIES, "amd64");
        let values: Vec<u64> = allowed(&s, "personality")
            .iter()
            .map(|r| r.args().as_ref().unwrap()[0].value())
            .collect();
        assert_eq!(values, vec![0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    }

    #[test]
    fn rendered_profile_serialises_with_oci_names() {
        let s = default_for(&DEFAULT_CAPABILITIES, "amd64");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(json["architectures"][0], "SCMP_ARCH_X86_64");
        let text = json.to_string();
        assert!(text.contains("SCMP_CMP_MASKED_EQ"));
        assert!(text.contains("\"valueTwo\""));
    }

    #[test]
    fn custom_docker_profile_is_parsed_and_filtered() {
        let json = r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "x"},
                {"name": "chmod", "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_FOWNER"]}},
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["arm64"]}}
            ]
        }"#;
        let p = SeccompProfile::from_json(json).unwrap();
        let s = p.render(&DEFAULT_CAPABILITIES, "amd64").unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(allowed(&s, "mkdir")[0].errno_ret(), Some(13));
        assert!(allowed(&s, "chmod").is_empty());
        assert!(allowed(&s, "uname").is_empty());
        let s = p.render(&[], "amd64").unwrap();
        assert_eq!(allowed(&s, "chmod").len(), 1);
        assert!(SeccompProfile::from_json("{\"syscalls\": 3}").is_err());
        let no_names =
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}"#;
        assert!(SeccompProfile::from_json(no_names)
            .unwrap()
            .render(&[], "amd64")
            .is_err());
    }
}
