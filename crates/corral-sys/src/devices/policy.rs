//! A device rule list evaluated as the cgroup v1 `devices` controller evaluates it.
//!
//! The v1 controller keeps a default (allow or deny everything) and a list of exceptions
//! to it (`security/device_cgroup.c`): a rule of type `a` sets the default and drops every
//! exception; a rule whose verdict differs from the default adds an exception (or widens the
//! access of an exception for the same type, major and minor); a rule whose verdict equals
//! the default takes access away from the exception with exactly the same type, major and
//! minor. A request is then checked against the exceptions only: on an allow list an
//! exception must cover all of the requested access; on a deny list any overlap denies.
//!
//! runc evaluates OCI rules the same way on cgroup v2 (its device "emulator"), so a spec
//! grants the same devices on both versions, and so does Corral. Two choices follow runc:
//! the list starts as "deny everything" (not the parent's state, which v2 does not have),
//! and a rule that takes access away from a device covered by a wildcard exception is
//! refused, because v1 would ignore it silently.

use std::collections::BTreeMap;

use super::{DeviceAccess, DeviceRule, DeviceRuleError, DeviceType};

/// The type, major and minor an exception applies to (`None` = any).
type Meta = (DeviceType, Option<u32>, Option<u32>);

/// A device rule list reduced to a default verdict and its exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePolicy {
    default_allow: bool,
    exceptions: BTreeMap<Meta, DeviceAccess>,
}

/// One exception of a [`DevicePolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceException {
    /// `Char` or `Block` (never `All`).
    pub kind: DeviceType,
    /// The major, `None` for any.
    pub major: Option<u32>,
    /// The minor, `None` for any.
    pub minor: Option<u32>,
    /// The accesses the exception is about.
    pub access: DeviceAccess,
}

impl DevicePolicy {
    /// Denies every access to every device.
    pub fn deny_all() -> Self {
        Self {
            default_allow: false,
            exceptions: BTreeMap::new(),
        }
    }

    /// Applies `rules` in order to [`DevicePolicy::deny_all`].
    ///
    /// # Errors
    /// [`DeviceRuleError::WildcardHole`] for a rule that would take access away from part of a
    /// wildcard exception.
    pub fn from_rules(rules: &[DeviceRule]) -> Result<Self, DeviceRuleError> {
        let mut policy = Self::deny_all();
        for rule in rules {
            policy.apply(rule)?;
        }
        Ok(policy)
    }

    /// Applies one rule.
    ///
    /// # Errors
    /// As [`DevicePolicy::from_rules`]; the policy is unchanged on error.
    pub fn apply(&mut self, rule: &DeviceRule) -> Result<(), DeviceRuleError> {
        if rule.kind == DeviceType::All {
            // The v1 controller treats "a" as "every device, every access" whatever major,
            // minor and access it names.
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return Ok(());
        }
        let meta = (rule.kind, rule.major, rule.minor);
        if rule.allow == self.default_allow {
            self.remove(meta, rule)
        } else {
            let entry = self.exceptions.entry(meta).or_default();
            *entry = entry.union(rule.access);
            if entry.is_empty() {
                self.exceptions.remove(&meta);
            }
            Ok(())
        }
    }

    fn remove(&mut self, meta: Meta, rule: &DeviceRule) -> Result<(), DeviceRuleError> {
        let (kind, major, minor) = meta;
        for wider in [(kind, None, minor), (kind, major, None), (kind, None, None)] {
            if wider == meta {
                continue;
            }
            if let Some(access) = self.exceptions.get(&wider) {
                if access.intersects(rule.access) {
                    let wildcard = DeviceRule {
                        allow: !self.default_allow,
                        kind,
                        major: wider.1,
                        minor: wider.2,
                        access: *access,
                    };
                    return Err(DeviceRuleError::WildcardHole {
                        rule: rule.to_string(),
                        wildcard: wildcard.to_string(),
                    });
                }
            }
        }
        if let Some(access) = self.exceptions.get_mut(&meta) {
            *access = access.difference(rule.access);
            if access.is_empty() {
                self.exceptions.remove(&meta);
            }
        }
        Ok(())
    }

    /// The verdict when no exception matches.
    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    /// Whether every access to every device is allowed (a privileged container): no program
    /// is needed then.
    pub fn is_allow_all(&self) -> bool {
        self.default_allow && self.exceptions.is_empty()
    }

    /// The exceptions, ordered by type, major, minor.
    pub fn exceptions(&self) -> impl Iterator<Item = DeviceException> + '_ {
        self.exceptions
            .iter()
            .map(|(&(kind, major, minor), &access)| DeviceException {
                kind,
                major,
                minor,
                access,
            })
    }

    /// Whether a process may have `access` to device `major:minor` of type `kind` (`Char` or
    /// `Block`). This is the reference the compiled program is tested against.
    pub fn allows(&self, kind: DeviceType, major: u32, minor: u32, access: DeviceAccess) -> bool {
        let mut matching = self.exceptions().filter(|e| {
            e.kind == kind
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
        });
        if self.default_allow {
            // Deny list: an exception sharing any requested access denies.
            !matching.any(|e| e.access.intersects(access))
        } else {
            // Allow list: one exception must cover all of the requested access.
            matching.any(|e| e.access.contains(access))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::tests::docker_default_rules;

    fn rule(
        allow: bool,
        kind: &str,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind: DeviceType::parse(kind).unwrap(),
            major,
            minor,
            access: DeviceAccess::parse(access).unwrap(),
        }
    }

    fn acc(text: &str) -> DeviceAccess {
        DeviceAccess::parse(text).unwrap()
    }

    #[test]
    fn docker_defaults_allow_the_standard_devices_and_mknod_only() {
        let p = DevicePolicy::from_rules(&docker_default_rules()).unwrap();
        assert!(!p.default_allow());
        assert!(p.allows(DeviceType::Char, 1, 3, acc("rw")));
        assert!(p.allows(DeviceType::Char, 136, 7, acc("rw")));
        assert!(p.allows(DeviceType::Char, 10, 200, acc("r")));
        // mknod of anything, but no open of what is not listed.
        assert!(p.allows(DeviceType::Block, 8, 0, acc("m")));
        assert!(p.allows(DeviceType::Char, 10, 237, acc("m")));
        assert!(!p.allows(DeviceType::Block, 8, 0, acc("r")));
        assert!(!p.allows(DeviceType::Char, 10, 237, acc("rw")));
        assert!(!p.allows(DeviceType::Char, 1, 1, acc("r"))); // /dev/mem
        assert!(!p.allows(DeviceType::Block, 1, 3, acc("r"))); // type matters
    }

    #[test]
    fn allow_all_resets_and_later_rules_take_exceptions() {
        let p = DevicePolicy::from_rules(&[rule(true, "a", None, None, "rwm")]).unwrap();
        assert!(p.is_allow_all());
        let p = DevicePolicy::from_rules(&[
            rule(true, "a", None, None, "rwm"),
            rule(false, "b", Some(8), None, "w"),
        ])
        .unwrap();
        assert!(!p.is_allow_all());
        assert!(p.allows(DeviceType::Block, 8, 0, acc("r")));
        // A deny list denies on any overlap, as v1's match_exception_partial does.
        assert!(!p.allows(DeviceType::Block, 8, 0, acc("rw")));
        assert!(p.allows(DeviceType::Char, 8, 0, acc("rw")));
        // A later "a" drops everything before it.
        let mut rules = docker_default_rules();
        rules.push(rule(true, "a", None, None, ""));
        assert!(DevicePolicy::from_rules(&rules).unwrap().is_allow_all());
    }

    #[test]
    fn allow_list_needs_one_exception_covering_the_whole_access() {
        let p = DevicePolicy::from_rules(&[
            rule(true, "c", Some(1), Some(3), "r"),
            rule(true, "c", Some(1), None, "w"),
        ])
        .unwrap();
        assert!(p.allows(DeviceType::Char, 1, 3, acc("r")));
        assert!(p.allows(DeviceType::Char, 1, 3, acc("w")));
        assert!(!p.allows(DeviceType::Char, 1, 3, acc("rw")));
        // Accesses of rules for the same device are merged.
        let p = DevicePolicy::from_rules(&[
            rule(true, "c", Some(1), Some(3), "r"),
            rule(true, "c", Some(1), Some(3), "w"),
        ])
        .unwrap();
        assert!(p.allows(DeviceType::Char, 1, 3, acc("rw")));
    }

    #[test]
    fn a_matching_deny_takes_access_away_from_the_same_device() {
        let mut rules = docker_default_rules();
        rules.push(rule(false, "c", Some(1), Some(3), "w"));
        let p = DevicePolicy::from_rules(&rules).unwrap();
        assert!(p.allows(DeviceType::Char, 1, 3, acc("r")));
        assert!(!p.allows(DeviceType::Char, 1, 3, acc("w")));
        rules.push(rule(false, "c", Some(1), Some(3), "r"));
        let p = DevicePolicy::from_rules(&rules).unwrap();
        assert!(!p.allows(DeviceType::Char, 1, 3, acc("r")));
        assert!(p.allows(DeviceType::Char, 1, 3, acc("m")));
        let null = p
            .exceptions()
            .find(|e| (e.major, e.minor) == (Some(1), Some(3)));
        assert_eq!(null.map(|e| e.access), Some(acc("m")));
        // Taking away the last access drops the exception.
        let emptied = DevicePolicy::from_rules(&[
            rule(true, "c", Some(1), Some(3), "rw"),
            rule(false, "c", Some(1), Some(3), "rwm"),
        ])
        .unwrap();
        assert_eq!(emptied, DevicePolicy::deny_all());
        // Removing what is not there changes nothing.
        rules.push(rule(false, "c", Some(99), Some(1), "rw"));
        assert_eq!(DevicePolicy::from_rules(&rules).unwrap(), p);
    }

    #[test]
    fn refuses_to_punch_a_hole_in_a_wildcard() {
        let mut rules = docker_default_rules();
        rules.push(rule(false, "c", Some(136), Some(3), "rw"));
        let err = DevicePolicy::from_rules(&rules).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device rule deny c 136:3 rw cannot punch a hole in the wildcard rule allow c 136:* rwm"
        );
        // "c *:* m" is a wildcard too, but a deny of rw does not overlap it.
        let mut rules = docker_default_rules();
        rules.push(rule(false, "c", Some(5), Some(1), "rw"));
        let p = DevicePolicy::from_rules(&rules).unwrap();
        assert!(!p.allows(DeviceType::Char, 5, 1, acc("r")));
        assert!(p.allows(DeviceType::Char, 5, 1, acc("m")));
        let mut rules = docker_default_rules();
        rules.push(rule(false, "c", Some(5), Some(1), "m"));
        assert!(matches!(
            DevicePolicy::from_rules(&rules),
            Err(DeviceRuleError::WildcardHole { .. })
        ));
    }
}
