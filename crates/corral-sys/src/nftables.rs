//! nftables rulesets through `nft -f -`, behind the [`Nftables`] trait.
//!
//! Callers own whole tables: they apply a ruleset that (re)defines their table and delete it
//! by name. Nothing here flushes the full ruleset, so other tables (the host firewall,
//! dockerd's iptables-nft tables) are never changed; they are only read, to warn when the
//! host's forward policy blocks container traffic.

use std::io::{self, Write};
use std::process::{Command, Stdio};

/// Applying and removing nftables tables.
pub trait Nftables: Send + Sync {
    /// Applies `ruleset` (nft script syntax) atomically: all of it or nothing.
    ///
    /// # Errors
    /// `nft` failed; the error carries its stderr.
    fn apply(&self, ruleset: &str) -> io::Result<()>;

    /// The tables of the host as `(family, name)`.
    ///
    /// # Errors
    /// `nft` failed.
    fn list_tables(&self) -> io::Result<Vec<(String, String)>>;

    /// Deletes table `name` of `family`; an absent table is not an error.
    ///
    /// # Errors
    /// `nft` failed for another reason.
    fn delete_table(&self, family: &str, name: &str) -> io::Result<()>;

    /// The whole ruleset in nft's JSON form (`nft -j list ruleset`), read only.
    ///
    /// # Errors
    /// `nft` failed.
    fn ruleset_json(&self) -> io::Result<String>;
}

/// The [`Nftables`] implementation running the `nft` binary.
#[derive(Debug, Clone)]
pub struct NftCommand {
    binary: String,
}

impl Default for NftCommand {
    fn default() -> Self {
        Self {
            binary: "nft".into(),
        }
    }
}

impl NftCommand {
    /// Uses `nft` from `PATH`.
    pub fn new() -> Self {
        Self::default()
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> io::Result<String> {
        let mut child = Command::new(&self.binary)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(io::Error::other(format!(
                "nft {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

impl Nftables for NftCommand {
    fn apply(&self, ruleset: &str) -> io::Result<()> {
        self.run(&["-f", "-"], Some(ruleset)).map(drop)
    }

    fn list_tables(&self) -> io::Result<Vec<(String, String)>> {
        let out = self.run(&["list", "tables"], None)?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                match (it.next(), it.next(), it.next()) {
                    (Some("table"), Some(f), Some(n)) => Some((f.to_owned(), n.to_owned())),
                    _ => None,
                }
            })
            .collect())
    }

    fn delete_table(&self, family: &str, name: &str) -> io::Result<()> {
        if !self
            .list_tables()?
            .iter()
            .any(|(f, n)| f == family && n == name)
        {
            return Ok(());
        }
        self.run(&["delete", "table", family, name], None).map(drop)
    }

    fn ruleset_json(&self) -> io::Result<String> {
        self.run(&["-j", "list", "ruleset"], None)
    }
}

/// An [`Nftables`] that keeps the applied rulesets in memory.
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
pub struct FakeNftables {
    state: std::sync::RwLock<Vec<String>>,
    ruleset: std::sync::RwLock<String>,
}

#[cfg(any(test, feature = "fake"))]
impl FakeNftables {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what [`Nftables::ruleset_json`] returns (the host's other tables).
    pub fn set_ruleset_json(&self, json: &str) {
        if let Ok(mut r) = self.ruleset.write() {
            *r = json.to_owned();
        }
    }

    /// Every ruleset applied so far, in order.
    pub fn applied(&self) -> Vec<String> {
        self.state.read().map(|s| s.clone()).unwrap_or_default()
    }
}

#[cfg(any(test, feature = "fake"))]
impl Nftables for FakeNftables {
    fn apply(&self, ruleset: &str) -> io::Result<()> {
        self.state
            .write()
            .map_err(|_| io::Error::other("fake poisoned"))?
            .push(ruleset.to_owned());
        Ok(())
    }
    fn list_tables(&self) -> io::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
    fn delete_table(&self, _family: &str, _name: &str) -> io::Result<()> {
        Ok(())
    }
    fn ruleset_json(&self) -> io::Result<String> {
        let r = self
            .ruleset
            .read()
            .map_err(|_| io::Error::other("fake poisoned"))?;
        Ok(if r.is_empty() {
            r#"{"nftables": []}"#.to_owned()
        } else {
            r.clone()
        })
    }
}
