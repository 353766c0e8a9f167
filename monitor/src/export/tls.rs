//! `syslog+tls://HOST:PORT`'s TLS (RFC 5425): which collectors to trust
//! and who we are to them, read once at start so that a bad file stops
//! the daemon with its name rather than failing every connection later.
//!
//! The collector is trusted when its certificate chains to the CA bundle
//! of `--export-ca`, or without it to the system's trust store (read with
//! rustls-native-certs: `/etc/ssl/certs`, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`), which is where operators install their SIEM's internal
//! CA; a compiled-in bundle (webpki-roots) would know only public CAs and
//! would age with the binary. Its name is checked against the URL's host
//! (a DNS name or an IP address). `--export-cert` and `--export-key` give
//! a client certificate for collectors that ask for one (mutual TLS).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject as _},
};

/// The TLS options of `--export`.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: cannot read it", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}:{line}: {why}", path.display())]
    BadCertificate {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{}: no usable private key in it: {why}", path.display())]
    BadKey { path: PathBuf, why: String },
    #[error("--export-cert and --export-key go together: give both or neither")]
    HalfClientIdentity,
    #[error("{} and {}: the key does not go with the certificate, or neither is usable: {source}", cert.display(), key.display())]
    ClientIdentity {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "the system's trust store has no usable CA certificate ({why}); give the collector's CA with --export-ca FILE"
    )]
    NoSystemRoots { why: String },
    #[error("cannot set up TLS: {0}")]
    Setup(#[source] rustls::Error),
    #[error(
        "{host:?} is neither a DNS name nor an IP address to check the collector's certificate against"
    )]
    BadServerName { host: String },
}

/// The certificates of a PEM file, each with the line its block starts on.
fn certificates(path: &Path) -> Result<Vec<(usize, CertificateDer<'static>)>, TlsError> {
    let text = std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, why: String| TlsError::BadCertificate {
        path: path.to_path_buf(),
        line,
        why,
    };
    let mut out = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l == "-----BEGIN CERTIFICATE-----" {
            if let Some((start, _)) = block {
                return Err(bad(start, "this certificate has no END line".into()));
            }
            block = Some((i + 1, String::new()));
        }
        if let Some((start, b)) = &mut block {
            b.push_str(l);
            b.push('\n');
            if l == "-----END CERTIFICATE-----" {
                let cert = CertificateDer::from_pem_slice(b.as_bytes())
                    .map_err(|e| bad(*start, format!("not a PEM certificate: {e}")))?;
                out.push((*start, cert));
                block = None;
            }
        }
    }
    if let Some((start, _)) = block {
        return Err(bad(start, "this certificate has no END line".into()));
    }
    if out.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// The CAs to trust: the file's, or the system's.
fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for (line, cert) in certificates(path)? {
                roots.add(cert).map_err(|e| TlsError::BadCertificate {
                    path: path.to_path_buf(),
                    line,
                    why: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = match found.errors.first() {
                    Some(e) => e.to_string(),
                    None => "none found".into(),
                };
                return Err(TlsError::NoSystemRoots { why });
            }
            for e in &found.errors {
                log::warn!("export: the system's trust store: {e}");
            }
        }
    }
    Ok(roots)
}

/// The client configuration every TLS sink shares.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = roots(files.ca.as_deref())?;
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsError::Setup)?
    .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?.into_iter().map(|(_, c)| c).collect();
            let pkey = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::BadKey {
                path: key.clone(),
                why: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, pkey)
                .map_err(|source| TlsError::ClientIdentity {
                    cert: cert.clone(),
                    key: key.clone(),
                    source,
                })?
        }
        _ => return Err(TlsError::HalfClientIdentity),
    };
    Ok(Arc::new(config))
}

/// The name the collector's certificate must carry: the URL's host.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::BadServerName {
        host: host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn bad_ca_files_are_named_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = client_config(&TlsFiles {
            ca: Some(missing.clone()),
            ..TlsFiles::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope.pem: cannot read it"), "{e}");

        let empty = write(dir.path(), "empty.pem", "just text\n");
        let e = roots(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("empty.pem: no PEM certificate"), "{e}");

        let garbage = write(
            dir.path(),
            "bad.pem",
            "# bundle\n\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = roots(Some(&garbage)).unwrap_err().to_string();
        assert!(e.contains("bad.pem:3: not a usable CA certificate"), "{e}");

        let torn = write(
            dir.path(),
            "torn.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
        );
        let e = roots(Some(&torn)).unwrap_err().to_string();
        assert!(
            e.contains("torn.pem:1: this certificate has no END line"),
            "{e}"
        );
    }

    #[test]
    fn a_client_identity_needs_both_halves_and_names_are_checked() {
        let e = client_config(&TlsFiles {
            cert: Some("c.pem".into()),
            ..TlsFiles::default()
        });
        // Without --export-ca the system's store is read first; either way
        // the half identity is refused, never silently ignored.
        if let Err(e) = e {
            assert!(
                matches!(
                    e,
                    TlsError::HalfClientIdentity | TlsError::NoSystemRoots { .. }
                ),
                "{e}"
            );
        } else {
            panic!("a certificate without a key was taken");
        }
        assert!(server_name("siem.example.com").is_ok());
        assert!(server_name("192.0.2.9").is_ok());
        assert!(server_name("2001:db8::9").is_ok());
        assert!(server_name("bad name").is_err());
    }
}
