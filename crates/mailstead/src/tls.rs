//! The server's TLS certificate: the configured one, or a self-signed one
//! made on first start so that a fresh install offers STARTTLS/IMAPS at once.
//!
//! Only the `ring` crypto provider is used, and it is passed explicitly
//! rather than installed as a process default, so no global state exists and
//! [`server_config`] can simply be called again to reload a renewed
//! certificate.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, SELF_SIGNED_CERT_FILE, SELF_SIGNED_KEY_FILE};

/// How long a generated certificate is valid. Nothing checks a self-signed
/// certificate's expiry more usefully than its fingerprint, so it is made to
/// outlive the installation rather than to expire unnoticed.
const SELF_SIGNED_VALIDITY_DAYS: i64 = 3650;

/// Everything that can go wrong with certificates; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("no certificate found in {} (expected a PEM \"BEGIN CERTIFICATE\" block)", .path.display())]
    NoCertificate { path: PathBuf },

    #[error(
        "no private key found in {} (expected a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)",
        .path.display()
    )]
    NoPrivateKey { path: PathBuf },

    #[error("{} is not valid PEM: {message}", .path.display())]
    BadPem { path: PathBuf, message: String },

    #[error("the private key in {} cannot be used: {message}", .path.display())]
    BadKey { path: PathBuf, message: String },

    #[error(
        "the private key in {} does not belong to the certificate in {}",
        .key.display(), .cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },

    /// A self-signed pair half written or half deleted. The certificate is
    /// written last, so a missing certificate just means "generate again";
    /// a certificate without its key is left for a human to decide.
    #[error(
        "{} exists but {} does not; delete {} to have a new self-signed certificate made",
        .cert.display(), .key.display(), .cert.display()
    )]
    MissingKey { cert: PathBuf, key: PathBuf },

    #[error("cannot generate a self-signed certificate for {hostname:?}: {source}")]
    Generate {
        hostname: String,
        #[source]
        source: rcgen::Error,
    },

    #[error("cannot build a TLS configuration from {} and {}: {source}", .cert.display(), .key.display())]
    Rustls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// Where the certificate chain and key are, and how they came to be there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub origin: CertificateOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateOrigin {
    /// `[tls] cert` and `key` from the config file.
    Configured,
    /// A self-signed pair made by an earlier start.
    SelfSignedExisting,
    /// A self-signed pair made by this call.
    SelfSignedNew,
}

/// Makes sure a usable certificate exists and says where it is.
///
/// With `[tls]` configured, the files must exist, parse and match. Otherwise
/// `<data_dir>/tls/cert.pem` and `key.pem` are reused if present, or made:
/// self-signed for the server's hostname plus `localhost`, `127.0.0.1` and
/// `::1`, valid for ten years, written atomically, the key readable by the
/// owner only.
///
/// # Errors
/// [`TlsError`] naming the file at fault.
pub fn ensure_certificate(config: &Config) -> Result<CertificatePaths, TlsError> {
    if let Some((cert, key)) = config.tls_files() {
        let paths = CertificatePaths {
            cert: cert.to_owned(),
            key: key.to_owned(),
            origin: CertificateOrigin::Configured,
        };
        // Building the rustls config checks parsing and that key and
        // certificate match, so a bad pair fails at startup, not at the
        // first client's handshake.
        server_config(&paths)?;
        return Ok(paths);
    }

    let dir = config.tls_dir();
    let cert = dir.join(SELF_SIGNED_CERT_FILE);
    let key = dir.join(SELF_SIGNED_KEY_FILE);
    let cert_exists = exists(&cert)?;
    if cert_exists {
        if !exists(&key)? {
            return Err(TlsError::MissingKey { cert, key });
        }
        let paths = CertificatePaths {
            cert,
            key,
            origin: CertificateOrigin::SelfSignedExisting,
        };
        server_config(&paths)?;
        return Ok(paths);
    }

    let (cert_pem, key_pem) = generate_self_signed(config.hostname())?;
    create_private_dir(&dir)?;
    // Key first, certificate last: the certificate's presence marks a
    // complete pair (see `TlsError::MissingKey`).
    write_atomically(&key, key_pem.as_bytes(), 0o600)?;
    write_atomically(&cert, cert_pem.as_bytes(), 0o644)?;
    Ok(CertificatePaths {
        cert,
        key,
        origin: CertificateOrigin::SelfSignedNew,
    })
}

/// Builds a rustls server configuration (ring provider, TLS 1.2 and 1.3, no
/// client certificates) from the files in `paths`. Reads the files on every
/// call, so calling it again after a renewal picks the new certificate up.
///
/// # Errors
/// [`TlsError`] naming the file that is missing, unparsable or mismatched.
pub fn server_config(paths: &CertificatePaths) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = load_certificates(&paths.cert)?;
    let key = load_private_key(&paths.key)?;
    let rustls_error = |source| TlsError::Rustls {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::BadKey {
            path: paths.key.clone(),
            message: error.to_string(),
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: paths.cert.clone(),
                key: paths.key.clone(),
            });
        }
        // `Unknown` means the key cannot tell its public half; nothing to
        // compare, which rustls itself also accepts.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(other) => return Err(rustls_error(other)),
    }
    // What `with_single_cert` does, done by hand so that an unusable key and
    // a mismatched key get their own messages naming the file.
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    Ok(Arc::new(config))
}

/// Keeps the TLS configuration new STARTTLS sessions use in step with the
/// certificate files: [`CertificateReloader::reload`] (on SIGHUP) rebuilds it
/// with [`server_config`], [`CertificateReloader::reload_if_changed`] (polled)
/// does so when either file changed. A pair that fails to load leaves the
/// configuration in use as it is.
pub struct CertificateReloader {
    paths: CertificatePaths,
    current: Arc<mailstead_net::TlsConfig>,
    seen: FileStamps,
}

/// What tells a changed file from the same one: modification time, inode and
/// length of the certificate and the key (following symbolic links, as
/// certbot's `live/` directory uses them).
type FileStamps = [Option<(std::time::SystemTime, u64, u64)>; 2];

impl CertificateReloader {
    /// `current` must hold the configuration built from `paths`.
    pub fn new(paths: CertificatePaths, current: Arc<mailstead_net::TlsConfig>) -> Self {
        let seen = stamps(&paths);
        CertificateReloader {
            paths,
            current,
            seen,
        }
    }

    /// Rebuilds the configuration from the files and installs it for every
    /// later handshake.
    ///
    /// # Errors
    /// [`TlsError`] when the new pair cannot be used; the old configuration
    /// stays in use.
    pub fn reload(&mut self) -> Result<(), TlsError> {
        self.seen = stamps(&self.paths);
        let config = server_config(&self.paths)?;
        self.current.set(config);
        Ok(())
    }

    /// [`CertificateReloader::reload`] when the certificate or key file has
    /// changed since the last look; `None` when neither has. A failed pair is
    /// tried again only after another change (a certificate written before
    /// its key loads once the key follows).
    pub fn reload_if_changed(&mut self) -> Option<Result<(), TlsError>> {
        if stamps(&self.paths) == self.seen {
            return None;
        }
        Some(self.reload())
    }
}

fn stamps(paths: &CertificatePaths) -> FileStamps {
    use std::os::unix::fs::MetadataExt;
    [&paths.cert, &paths.key].map(|path| {
        fs::metadata(path)
            .ok()
            .and_then(|meta| Some((meta.modified().ok()?, meta.ino(), meta.len())))
    })
}

/// The certificate chain in `path`, leaf first.
///
/// # Errors
/// [`TlsError::Read`], [`TlsError::BadPem`] or [`TlsError::NoCertificate`].
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, error))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `path`.
///
/// # Errors
/// [`TlsError::Read`], [`TlsError::BadPem`] or [`TlsError::NoPrivateKey`].
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => pem_error(path, other),
    })
}

fn pem_error(path: &Path, error: pem::Error) -> TlsError {
    TlsError::BadPem {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn exists(path: &Path) -> Result<bool, TlsError> {
    path.try_exists().map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A self-signed certificate (PEM) and its PKCS#8 key (PEM), ECDSA P-256.
fn generate_self_signed(hostname: &str) -> Result<(String, String), TlsError> {
    let generate_error = |source| TlsError::Generate {
        hostname: hostname.to_owned(),
        source,
    };
    let mut names = vec![hostname.to_owned()];
    for extra in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|name| name.eq_ignore_ascii_case(extra)) {
            names.push(extra.to_owned());
        }
    }
    // `new` turns the IP strings into IP-address SANs, the rest into DNS ones.
    let mut params = rcgen::CertificateParams::new(names).map_err(generate_error)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Mailstead (self-signed)");
    // A day of slack for clients whose clocks run behind.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_VALIDITY_DAYS);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate_error)?;
    let cert = params.self_signed(&key).map_err(generate_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Creates `dir` (and parents) and restricts it to its owner: it holds a
/// private key.
fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let write_error = |source| TlsError::Write {
        path: dir.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(write_error)?;
    // `mode` only applies to directories it creates.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(write_error)
}

/// Writes `path` so that a crash leaves either the old file or the complete
/// new one: temporary file, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Write { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(write_error(&tmp))?;
        // A leftover temporary file keeps its old mode; force ours before
        // the key is written into it.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(write_error(&tmp))?;
        file.write_all(contents).map_err(write_error(&tmp))?;
        file.sync_all().map_err(write_error(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(write_error(path))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(write_error(dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn config_in(dir: &Path, extra: &str) -> Config {
        let text = format!(
            "[server]\nhostname = \"mail.example.test\"\ndata_dir = {:?}\n{extra}",
            dir.display().to_string()
        );
        Config::from_toml_str(&text, None).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn first_call_generates_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path(), "");

        let first = ensure_certificate(&config).unwrap();
        assert_eq!(first.origin, CertificateOrigin::SelfSignedNew);
        assert_eq!(first.cert, dir.path().join("tls/cert.pem"));
        assert_eq!(first.key, dir.path().join("tls/key.pem"));
        assert_eq!(mode(&first.key), 0o600);
        assert_eq!(mode(&dir.path().join("tls")), 0o700);
        let cert_bytes = fs::read(&first.cert).unwrap();
        let key_bytes = fs::read(&first.key).unwrap();
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path().join("tls")).unwrap().count(), 2);

        let second = ensure_certificate(&config).unwrap();
        assert_eq!(second.origin, CertificateOrigin::SelfSignedExisting);
        assert_eq!((&second.cert, &second.key), (&first.cert, &first.key));
        assert_eq!(fs::read(&second.cert).unwrap(), cert_bytes);
        assert_eq!(fs::read(&second.key).unwrap(), key_bytes);

        server_config(&second).unwrap();
    }

    #[test]
    fn configured_pair_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        // Make a pair elsewhere, then point [tls] at it.
        let made = ensure_certificate(&config_in(&dir.path().join("other"), "")).unwrap();
        let config = config_in(
            &dir.path().join("data"),
            &format!(
                "[tls]\ncert = {:?}\nkey = {:?}\n",
                made.cert.display().to_string(),
                made.key.display().to_string()
            ),
        );
        let paths = ensure_certificate(&config).unwrap();
        assert_eq!(paths.origin, CertificateOrigin::Configured);
        assert_eq!((&paths.cert, &paths.key), (&made.cert, &made.key));
        // Nothing is generated when a certificate is configured.
        assert!(!dir.path().join("data/tls").exists());
        server_config(&paths).unwrap();
    }

    #[test]
    fn missing_and_garbage_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = ensure_certificate(&config_in(&dir.path().join("good"), "")).unwrap();
        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, "this is not a certificate\n").unwrap();
        let broken = dir.path().join("broken.pem");
        fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let missing = dir.path().join("missing.pem");

        let with = |cert: &Path, key: &Path| {
            let config = config_in(
                &dir.path().join("data"),
                &format!(
                    "[tls]\ncert = {:?}\nkey = {:?}\n",
                    cert.display().to_string(),
                    key.display().to_string()
                ),
            );
            ensure_certificate(&config).unwrap_err().to_string()
        };

        let message = with(&missing, &good.key);
        assert!(
            message.starts_with(&format!("cannot read {}", missing.display())),
            "{message}"
        );
        let message = with(&garbage, &good.key);
        assert_eq!(
            message,
            format!(
                "no certificate found in {} (expected a PEM \"BEGIN CERTIFICATE\" block)",
                garbage.display()
            )
        );
        let message = with(&good.cert, &garbage);
        assert!(
            message.starts_with(&format!("no private key found in {}", garbage.display())),
            "{message}"
        );
        let message = with(&broken, &good.key);
        assert!(
            message.starts_with(&format!("{} is not valid PEM", broken.display())),
            "{message}"
        );
        // A key for another certificate.
        let other = ensure_certificate(&config_in(&dir.path().join("other"), "")).unwrap();
        let message = with(&good.cert, &other.key);
        assert_eq!(
            message,
            format!(
                "the private key in {} does not belong to the certificate in {}",
                other.key.display(),
                good.cert.display()
            )
        );
    }

    #[test]
    fn self_signed_half_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path(), "");
        let paths = ensure_certificate(&config).unwrap();

        // A key without its certificate (crash between the two writes) is
        // simply replaced.
        fs::remove_file(&paths.cert).unwrap();
        let again = ensure_certificate(&config).unwrap();
        assert_eq!(again.origin, CertificateOrigin::SelfSignedNew);

        // A certificate without its key needs a human.
        fs::remove_file(&paths.key).unwrap();
        let message = ensure_certificate(&config).unwrap_err().to_string();
        assert!(message.contains("key.pem does not"), "{message}");
        assert!(message.contains("delete"), "{message}");

        // A corrupted self-signed file is reported, not silently replaced.
        fs::write(&paths.key, "garbage").unwrap();
        let message = ensure_certificate(&config).unwrap_err().to_string();
        assert!(message.starts_with("no private key found in"), "{message}");
    }

    /// The generated certificate really works: a rustls client that trusts
    /// exactly it completes a handshake with the server config, by DNS name
    /// and by IP address.
    #[tokio::test]
    async fn generated_certificate_completes_a_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ensure_certificate(&config_in(dir.path(), "")).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&paths).unwrap());

        let mut roots = rustls::RootCertStore::empty();
        for cert in load_certificates(&paths.cert).unwrap() {
            roots.add(cert).unwrap();
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Serves "ping" -> "pong" on each connection; handshake failures
        // (expected for the wrong name below) just end that connection.
        let server = tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 4];
                    if tls.read_exact(&mut buf).await.is_ok() && &buf == b"ping" {
                        let _ = tls.write_all(b"pong").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });

        let run = async {
            for name in ["mail.example.test", "localhost", "127.0.0.1", "::1"] {
                let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
                let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
                let mut tls = connector.connect(server_name, tcp).await.unwrap();
                tls.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                tls.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"pong", "via {name}");
            }
            // A name the certificate does not cover is refused.
            let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
            let server_name = rustls::pki_types::ServerName::try_from("other.example").unwrap();
            let error = connector.connect(server_name, tcp).await.unwrap_err();
            assert!(error.to_string().contains("certificate"), "{error}");
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap();
        server.abort();
    }

    /// Replacing the files and reloading makes the next handshake present
    /// the new certificate; a bad pair keeps the old one.
    #[tokio::test]
    async fn reload_swaps_the_certificate_for_new_handshakes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = CertificatePaths {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            origin: CertificateOrigin::Configured,
        };
        let write_pair = |(cert, key): &(String, String)| {
            write_atomically(&paths.key, key.as_bytes(), 0o600).unwrap();
            write_atomically(&paths.cert, cert.as_bytes(), 0o644).unwrap();
        };
        let first = generate_self_signed("localhost").unwrap();
        let second = generate_self_signed("localhost").unwrap();
        let der = |pem: &str| {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .next()
                .unwrap()
                .unwrap()
        };
        write_pair(&first);
        let cell = Arc::new(mailstead_net::TlsConfig::new(
            server_config(&paths).unwrap(),
        ));
        let mut reloader = CertificateReloader::new(paths.clone(), Arc::clone(&cell));
        assert!(reloader.reload_if_changed().is_none());

        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&first.0)).unwrap();
        roots.add(der(&second.0)).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Each connection takes the configuration current when it starts,
        // as a STARTTLS does.
        let server_cell = Arc::clone(&cell);
        let server = tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(server_cell.get());
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"hi").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        let presented = || async {
            let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            let mut buf = [0u8; 2];
            tls.read_exact(&mut buf).await.unwrap();
            let (_, connection) = tls.get_ref();
            connection.peer_certificates().unwrap()[0].clone()
        };
        let run = async {
            assert_eq!(presented().await, der(&first.0));
            // Renewed: the polled check sees the change and swaps.
            write_pair(&second);
            assert!(matches!(reloader.reload_if_changed(), Some(Ok(()))));
            assert_eq!(presented().await, der(&second.0));
            // A key that does not match: an error, and the second pair stays.
            write_atomically(&paths.key, first.1.as_bytes(), 0o600).unwrap();
            let error = reloader.reload().unwrap_err();
            assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
            assert!(reloader.reload_if_changed().is_none());
            assert_eq!(presented().await, der(&second.0));
            // Garbage too.
            write_atomically(&paths.cert, b"garbage", 0o644).unwrap();
            assert!(matches!(reloader.reload_if_changed(), Some(Err(_))));
            assert_eq!(presented().await, der(&second.0));
            // Back to the first pair on SIGHUP.
            write_pair(&first);
            reloader.reload().unwrap();
            assert_eq!(presented().await, der(&first.0));
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap();
        server.abort();
    }
}
