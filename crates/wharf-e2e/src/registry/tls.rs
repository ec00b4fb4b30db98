//! Certificates for a registry served over TLS: a CA made for one test and a server
//! certificate it signs, for a name that wharf does not treat as loopback.
//!
//! The name ([`TLS_HOST`], under the reserved `.test` domain) resolves nowhere: clients are
//! told its address (wharf's `Config::resolve` or `WHARF_RESOLVE`), so nothing on the
//! machine (such as `/etc/hosts`) changes. The certificate also names 127.0.0.1, so that
//! independent clients without such an override (skopeo) can verify it by address.

use std::path::{Path, PathBuf};

/// The server certificate's DNS name.
pub const TLS_HOST: &str = "registry.wharf.test";

/// A test CA and a server certificate for [`TLS_HOST`] and 127.0.0.1, as PEM files in a
/// temporary directory (removed on drop).
pub struct TestCa {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    dir: tempfile::TempDir,
}

impl TestCa {
    /// A fresh CA (its key is never written) and a server certificate it signed.
    pub fn new(common_name: &str) -> TestCa {
        let ca_key = rcgen::KeyPair::generate().expect("generating the CA key");
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA certificate parameters");
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .expect("self-signing the CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let server_key = rcgen::KeyPair::generate().expect("generating the server key");
        let mut params =
            rcgen::CertificateParams::new(vec![TLS_HOST.to_string(), "127.0.0.1".to_string()])
                .expect("server certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, TLS_HOST);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("signing the server certificate");

        let dir = tempfile::Builder::new()
            .prefix("wharf-tls-")
            .tempdir()
            .expect("creating a temporary directory");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("writing a certificate file");
            path
        };
        TestCa {
            ca_cert: write("ca.crt", ca_cert.pem()),
            server_cert: write("server.crt", server_cert.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            dir,
        }
    }

    /// The CA certificate (PEM): what a client must trust.
    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    /// The server certificate (PEM) for the registry's `http.tls.certificate`.
    pub fn server_cert(&self) -> &Path {
        &self.server_cert
    }

    /// The server's private key (PEM) for the registry's `http.tls.key`.
    pub fn server_key(&self) -> &Path {
        &self.server_key
    }

    /// A docker-style `certs.d` directory trusting this CA for `authority`
    /// (`<dir>/<authority>/ca.crt`); returns `<dir>`. Made inside this CA's temporary
    /// directory, never under `/etc`.
    pub fn certs_d(&self, authority: &str) -> PathBuf {
        let root = self.dir.path().join("certs.d");
        let dir = root.join(authority);
        std::fs::create_dir_all(&dir).expect("creating the certs.d directory");
        std::fs::copy(&self.ca_cert, dir.join("ca.crt")).expect("copying the CA certificate");
        root
    }
}
