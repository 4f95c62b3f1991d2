//! Memory tuning of the calling process: malloc arenas and the resident pages of its own
//! executable. Only the per-container shim calls these; they never change what the process
//! computes, only how much of it stays resident.
#![allow(unsafe_code)]

use std::path::Path;

/// Caps the number of glibc malloc arenas of the calling process (`mallopt(M_ARENA_MAX)`).
///
/// glibc gives a thread that allocates while another holds the main arena an arena of its
/// own (64 MiB reserved, a few pages touched and never handed back); a process of a few
/// mostly idle threads, like the shim, needs one. A no-op where the C library is not glibc.
/// Returns whether the setting was applied.
pub fn limit_malloc_arenas(max: u16) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes a malloc tunable and any positive value is valid; the
        // shim calls it before it starts threads.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, i32::from(max.max(1))) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = max;
        false
    }
}

/// Drops the calling process's page-table entries for the read-only and executable
/// mappings of its own binary (`madvise(MADV_DONTNEED)`), so only the code it runs from now
/// on comes back as it runs (minor faults from the page cache, which keeps every page).
///
/// The shim is the whole `corral` binary: creating a container touches megabytes of runtime,
/// parser and seccomp code it never runs again, and the resident set of each of hundreds of
/// shims would keep all of it. Only file-backed mappings holding no private copy of a page
/// (`Anonymous` and `Swap` both 0 in `/proc/self/smaps`) are advised: for those, dropping a
/// page loses nothing, because the kernel re-reads it from the file. The relocated RELRO
/// pages, data, heap and stacks are never touched. Returns the bytes advised.
///
/// # Errors
/// The I/O error of reading `/proc/self/exe` or `/proc/self/smaps`.
pub fn trim_executable_pages() -> std::io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut advised = 0;
    for (start, end) in trimmable_ranges(&smaps, &exe) {
        // SAFETY: [start, end) is a whole mapping of this process's own executable, read-only
        // or executable, holding no anonymous (copy-on-write) page: MADV_DONTNEED only drops
        // page-table entries whose content the kernel re-reads from the file on next access,
        // so no thread can observe a change. A failure leaves the mapping as it was.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            advised += end - start;
        }
    }
    Ok(advised)
}

/// The `[start, end)` ranges of `smaps` that map `exe` read-only or executable, privately,
/// with no anonymous or swapped page.
fn trimmable_ranges(smaps: &str, exe: &Path) -> Vec<(usize, usize)> {
    let exe = exe.to_string_lossy();
    let deleted = format!("{exe} (deleted)");
    let mut out = Vec::new();
    // An eligible mapping being read, and the anonymous plus swapped kB seen in it.
    let mut current: Option<((usize, usize), u64)> = None;
    let mut flush = |current: &mut Option<((usize, usize), u64)>| {
        if let Some((range, 0)) = current.take() {
            out.push(range);
        }
    };
    for line in smaps.lines() {
        if let Some(range) = mapping_header(line) {
            flush(&mut current);
            let perms = line.split_whitespace().nth(1).unwrap_or("");
            let path = header_path(line);
            let readonly = perms == "r-xp" || perms == "r--p";
            if readonly && (path == exe || path == deleted) {
                current = Some((range, 0));
            }
            continue;
        }
        if let Some((_, dirty)) = current.as_mut() {
            for key in ["Anonymous:", "Swap:"] {
                if let Some(value) = line.strip_prefix(key) {
                    let kb = value.trim().trim_end_matches("kB").trim().parse::<u64>();
                    // Unparsable counts as not trimmable.
                    *dirty += kb.unwrap_or(1);
                }
            }
        }
    }
    flush(&mut current);
    out
}

/// The path of a mapping header line: what follows the first five fields (it may hold
/// spaces, and ends in ` (deleted)` when the file was replaced).
fn header_path(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..5 {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    rest.trim()
}

/// `Some((start, end))` for a mapping header line (`start-end perms offset dev inode path`).
fn mapping_header(line: &str) -> Option<(usize, usize)> {
    let range = line.split_whitespace().next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5616ad2ae000-5616ad93f000 r--p 00000000 fe:00 123 /usr/bin/corral
Rss:                1280 kB
Anonymous:             0 kB
Swap:                  0 kB
5616ad93f000-5616aed01000 r-xp 00691000 fe:00 123 /usr/bin/corral
Rss:                4744 kB
Anonymous:             0 kB
Swap:                  0 kB
5616aed01000-5616aede3000 r--p 01a53000 fe:00 123 /usr/bin/corral
Rss:                 904 kB
Anonymous:           904 kB
Swap:                  0 kB
5616aede3000-5616aeded000 rw-p 01b35000 fe:00 123 /usr/bin/corral
Anonymous:            40 kB
Swap:                  0 kB
7f003248c000-7f00325e2000 r-xp 00026000 fe:00 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
Swap:                  0 kB
7f0032700000-7f0032800000 r-xp 00000000 fe:00 124 /usr/bin/corral two
Anonymous:             0 kB
Swap:                  0 kB
5616d0b13000-5616d0b34000 rw-p 00000000 00:00 0                          [heap]
Anonymous:           132 kB
7f0032900000-7f0032a00000 r-xp 00000000 fe:00 123 /usr/bin/corral (deleted)
Anonymous:             0 kB
Swap:                  4 kB
";

    #[test]
    fn only_clean_readonly_mappings_of_the_executable_are_trimmed() {
        let got = trimmable_ranges(SMAPS, Path::new("/usr/bin/corral"));
        assert_eq!(
            got,
            vec![
                (0x5616_ad2a_e000, 0x5616_ad93_f000),
                (0x5616_ad93_f000, 0x5616_aed0_1000),
            ]
        );
    }

    #[test]
    fn a_replaced_binary_is_still_recognised() {
        let smaps = "\
7f0032900000-7f0032a00000 r-xp 00000000 fe:00 123 /usr/bin/corral (deleted)
Anonymous:             0 kB
Swap:                  0 kB
";
        let got = trimmable_ranges(smaps, Path::new("/usr/bin/corral"));
        assert_eq!(got, vec![(0x7f00_3290_0000, 0x7f00_32a0_0000)]);
    }

    #[test]
    fn trimming_this_process_keeps_it_working() {
        let advised = trim_executable_pages().unwrap();
        assert!(advised > 0, "the test binary maps its own code");
        // Code and constants fault back in from the file.
        let text: String = ["still", "running"].join(" ");
        assert_eq!(text, "still running");
        assert_eq!(limit_malloc_arenas(1), cfg!(target_env = "gnu"));
    }
}
