//! Throw-away TLS material for listener tests: a CA, a server certificate for 127.0.0.1 and
//! localhost, a client certificate from that CA, and a client certificate from another CA,
//! written as PEM files into a temporary directory laid out as docker's `--tlscacert` /
//! `--tlscert` / `--tlskey` expect.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A CA with a server certificate and two client certificates: one it signed, one signed by
/// an unrelated CA (which a verifying server must refuse).
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, PKCS#8).
    pub key: PathBuf,
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    server: bool,
    dir: &Path,
    stem: &str,
) -> Result<CertFiles> {
    let mut params = if server {
        let mut p = CertificateParams::new(vec!["localhost".to_owned()])?;
        p.subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p
    } else {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p
    };
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    let files = CertFiles {
        cert: dir.join(format!("{stem}-cert.pem")),
        key: dir.join(format!("{stem}-key.pem")),
    };
    std::fs::write(&files.cert, cert.pem())?;
    std::fs::write(&files.key, key.serialize_pem())?;
    Ok(files)
}

impl TestPki {
    /// Generates everything (ECDSA P-256 keys) into a new temporary directory.
    ///
    /// # Errors
    /// When generation or writing fails.
    pub fn generate() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("corral-pki-")
            .tempdir()
            .context("pki dir")?;
        let ca_issuer = ca("corral test CA").context("CA")?;
        std::fs::write(dir.path().join("ca.pem"), ca_issuer.pem())?;
        leaf(&ca_issuer, "corral test server", true, dir.path(), "server")?;
        leaf(
            &ca_issuer,
            "corral test client",
            false,
            dir.path(),
            "client",
        )?;
        let other = ca("some other CA").context("other CA")?;
        std::fs::write(dir.path().join("other-ca.pem"), other.pem())?;
        leaf(&other, "stranger", false, dir.path(), "stranger")?;
        Ok(TestPki { dir })
    }

    /// The CA certificate (`--tlscacert` for both sides).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (SANs `localhost`, `127.0.0.1`) and key.
    pub fn server(&self) -> CertFiles {
        self.files("server")
    }

    /// A client certificate signed by [`TestPki::ca`].
    pub fn client(&self) -> CertFiles {
        self.files("client")
    }

    /// A client certificate signed by an unrelated CA.
    pub fn stranger(&self) -> CertFiles {
        self.files("stranger")
    }

    /// The unrelated CA's certificate.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    fn files(&self, stem: &str) -> CertFiles {
        CertFiles {
            cert: self.dir.path().join(format!("{stem}-cert.pem")),
            key: self.dir.path().join(format!("{stem}-key.pem")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_pem_files_for_every_party() {
        let pki = TestPki::generate().unwrap();
        for f in [pki.server(), pki.client(), pki.stranger()] {
            let cert = std::fs::read_to_string(&f.cert).unwrap();
            let key = std::fs::read_to_string(&f.key).unwrap();
            assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
            assert!(key.contains("PRIVATE KEY-----"), "{key}");
        }
        let ca = std::fs::read_to_string(pki.ca()).unwrap();
        let other = std::fs::read_to_string(pki.other_ca()).unwrap();
        assert_ne!(ca, other);
    }
}
