//! Certificates for the TLS tests and benchmarks, made in-process with
//! rcgen: a CA of the test's own, and the collector's and the client's
//! certificates it signs, as the PEM files rsyslog and portconform read.

use crate::lab::TempDir;

/// PEM files made for one test: a CA, and certificates it signed.
pub struct Pki {
    /// The CA's certificate file.
    pub ca: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new(dir: &TempDir) -> anyhow::Result<Pki> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "portconform test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key)?;
        let ca = dir.file("ca.pem");
        std::fs::write(&ca, cert.pem())?;
        Ok(Pki {
            ca,
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// A certificate named `name` (an IP address: the collector's; empty:
    /// a client's) as files NAME.pem and NAME.key.
    pub fn issue(&self, dir: &TempDir, file: &str, name: &str) -> anyhow::Result<(String, String)> {
        let key = rcgen::KeyPair::generate()?;
        let sans: Vec<String> = if name.is_empty() {
            vec![]
        } else {
            vec![name.into()]
        };
        let mut params = rcgen::CertificateParams::new(sans)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("portconform {file}"));
        params.extended_key_usages = vec![if name.is_empty() {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.issuer)?;
        let (c, k) = (
            dir.file(&format!("{file}.pem")),
            dir.file(&format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem())?;
        std::fs::write(&k, key.serialize_pem())?;
        Ok((c, k))
    }
}
