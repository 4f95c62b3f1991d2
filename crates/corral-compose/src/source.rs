//! Where the loader reads files from: the filesystem, or a map in tests. The loader
//! does no other I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Read access to compose files, `.env` files, `env_file`s.
pub trait Source {
    /// Reads a whole text file.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// True when `path` exists.
    fn exists(&self, path: &Path) -> bool;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsSource;

impl Source for FsSource {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
        if meta.len() > crate::node::MAX_FILE_BYTES as u64 {
            return Err(std::io::Error::other(format!(
                "file is larger than {} bytes",
                crate::node::MAX_FILE_BYTES
            )));
        }
        std::fs::read_to_string(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// Files held in memory, keyed by absolute path (for tests).
#[derive(Debug, Default, Clone)]
pub struct MemSource {
    files: BTreeMap<PathBuf, String>,
}

impl MemSource {
    /// An empty set of files.
    pub fn new() -> MemSource {
        MemSource::default()
    }

    /// Adds a file.
    pub fn with_file(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> MemSource {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl Source for MemSource {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }
}
