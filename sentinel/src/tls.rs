//! Sentinel identities and the TLS configuration of the gossip transport.
//!
//! Owns the cluster CA tooling (`init_ca`, `issue`), `Identity` (a sentinel's certificate, key
//! and trust roots), `sentinel_id`, the rustls client and server configs the QUIC transport
//! uses, and `TlsError`.
//!
//! Identity model: a sentinel is its certificate's common name. Its `SentinelId` is a stable
//! hash of that name, and the transport derives a peer's id from the certificate the peer
//! presented, never from anything the peer says, so no peer can claim another's id.
//!
//! Trust model:
//! - With a cluster CA, both ends present a certificate and both must chain to the CA (TLS 1.3
//!   only, ALPN `vigil-gossip/1`). A certificate from another CA is refused in the handshake.
//! - The client does *not* check the server's name against the address it dialed. Sentinels
//!   are dialed by whatever address gossip or a seed list gave us (an announce address, a NAT
//!   mapping, a new IP after a restart); binding certificates to addresses would break on
//!   every re-addressing, while the identity that matters (the CN, hence the `SentinelId`) is
//!   read from the verified certificate after the handshake. The chain, the validity period and
//!   the server-auth usage are still checked with webpki, against the CA roots only.
//! - Without a CA (dev mode), any certificate is accepted: it is still required, because it
//!   carries the peer's name and id, but anyone can claim any name. Dev mode logs a loud warning.
//!
//! Invariant: no function here panics on the contents of a file or a peer's certificate.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tracing::warn;

use crate::core::SentinelId;

/// The ALPN protocol of the gossip transport.
pub const ALPN: &[u8] = b"vigil-gossip/1";

/// The server name every client puts in its SNI. It is never checked (see the module doc); it
/// only has to be a valid DNS name.
pub const SERVER_NAME: &str = "vigil-sentinel";

/// How long an issued certificate is valid, in years.
const VALIDITY_YEARS: i32 = 10;

/// Why an identity or a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that must exist does not.
    #[error("{path}: file is missing")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file exists but cannot be read.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file does not hold what it should in PEM form.
    #[error("{path}: not a PEM {what}")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What it should hold ("certificate", "private key").
        what: &'static str,
    },
    /// A certificate cannot be parsed, or lacks a valid common name.
    #[error("{path}: bad certificate: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The private key does not belong to the certificate.
    #[error("{key}: private key does not match the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate does not chain to the cluster CA.
    #[error("{cert}: not signed by the CA in {ca}: {reason}")]
    NotSignedByCa {
        /// The certificate file.
        cert: PathBuf,
        /// The CA file.
        ca: PathBuf,
        /// Why the chain does not verify.
        reason: String,
    },
    /// A file we would create already exists; we never overwrite keys or certificates.
    #[error("{path}: already exists, refusing to overwrite")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file or directory cannot be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A sentinel name is not 1..=64 bytes of `[A-Za-z0-9._-]`.
    #[error("invalid sentinel name {0:?}: expected 1..=64 characters of [A-Za-z0-9._-]")]
    InvalidName(String),
    /// A host for a subject alternative name is not an IP literal or a valid DNS name.
    #[error("invalid host {0:?} for a certificate")]
    InvalidHost(String),
    /// Key or certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client certificate verifier cannot be built from the CA.
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The stable `SentinelId` of a sentinel name: its FNV-1a 32-bit hash, with 0 mapped to 1 so
/// that an id is never zero. The same function in every sentinel and every version.
pub fn sentinel_id(name: &str) -> SentinelId {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    SentinelId(if h == 0 { 1 } else { h })
}

/// Whether `name` is a valid sentinel name: 1..=64 characters of `[A-Za-z0-9._-]`.
pub fn valid_name(name: &str) -> bool {
    crate::gossip::convert::valid_sentinel_name(name)
}

/// Creates a cluster CA: `dir/ca.crt` and `dir/ca.key` (mode 0600), creating `dir` if needed.
/// Refuses to overwrite an existing CA.
pub fn init_ca(dir: &Path) -> Result<(), TlsError> {
    let crt = dir.join("ca.crt");
    let key_path = dir.join("ca.key");
    for path in [&crt, &key_path] {
        if path.exists() {
            return Err(TlsError::Exists { path: path.clone() });
        }
    }
    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Vigil cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    let cert = params.self_signed(&key)?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&crt, cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// Issues `dir/NAME.crt` and `dir/NAME.key` (mode 0600), signed by the CA in `dir`.
///
/// The certificate's CN is `name`; its subject alternative names are the `hosts` (IP literals
/// as IP SANs, the others as DNS names) and the URI `vigil://sentinel/NAME`; it serves as both
/// a client and a server certificate, for ten years. Refuses to overwrite existing files.
pub fn issue(dir: &Path, name: &str, hosts: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    if !valid_name(name) {
        return Err(TlsError::InvalidName(name.to_owned()));
    }
    let crt = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    for path in [&crt, &key_path] {
        if path.exists() {
            return Err(TlsError::Exists { path: path.clone() });
        }
    }
    let ca_crt = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let ca_pem = read_text(&ca_crt)?;
    let ca_key = KeyPair::from_pem(&read_text(&ca_key_path)?).map_err(|_| TlsError::NotPem {
        path: ca_key_path.clone(),
        what: "private key",
    })?;
    let ca_params =
        CertificateParams::from_ca_cert_pem(&ca_pem).map_err(|e| TlsError::BadCertificate {
            path: ca_crt.clone(),
            reason: e.to_string(),
        })?;
    // `signed_by` takes the issuer as a `Certificate`; re-signing the parsed CA parameters with
    // its own key rebuilds one with the same subject and key, which is all `signed_by` reads.
    // First make sure the key really is the CA's, or every issued certificate would be junk.
    let ca_der =
        CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|_| TlsError::NotPem {
            path: ca_crt.clone(),
            what: "certificate",
        })?;
    let ca_spki = spki(&ca_der).map_err(|reason| TlsError::BadCertificate {
        path: ca_crt.clone(),
        reason,
    })?;
    if ca_spki != ca_key.public_key_der() {
        return Err(TlsError::KeyMismatch {
            cert: ca_crt,
            key: ca_key_path,
        });
    }
    let issuer = ca_params.self_signed(&ca_key)?;

    let mut params = leaf_params(name)?;
    for host in hosts {
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.as_str()
                    .try_into()
                    .map_err(|_| TlsError::InvalidHost(host.clone()))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer, &ca_key)?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&crt, cert.pem().as_bytes(), 0o644)?;
    Ok((crt, key_path))
}

/// A sentinel's TLS identity: its certificate chain and key, its name (the certificate's CN)
/// and, unless in dev mode, the cluster CA its peers must chain to. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    id: SentinelId,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// `None` in dev mode: any peer certificate is accepted.
    roots: Option<Arc<RootCertStore>>,
}

impl Identity {
    /// Loads a certificate chain (leaf first) and its private key, and, with `ca`, the cluster
    /// CA that every peer's certificate and this one must chain to. Without `ca` the identity
    /// trusts any peer certificate, as in dev mode.
    pub fn from_files(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Identity, TlsError> {
        let chain = read_certs(cert)?;
        let key_der = read_key(key)?;
        let provider = provider();
        rustls::sign::CertifiedKey::from_der(chain.clone(), key_der.clone_key(), &provider)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                },
                other => TlsError::BadCertificate {
                    path: key.to_path_buf(),
                    reason: other.to_string(),
                },
            })?;
        let leaf = &chain[0]; // `read_certs` never returns an empty chain.
        let name = peer_name(leaf).map_err(|reason| TlsError::BadCertificate {
            path: cert.to_path_buf(),
            reason,
        })?;
        let roots = match ca {
            None => None,
            Some(ca) => {
                let mut store = RootCertStore::empty();
                for der in read_certs(ca)? {
                    store.add(der).map_err(|e| TlsError::BadCertificate {
                        path: ca.to_path_buf(),
                        reason: e.to_string(),
                    })?;
                }
                // Catch a certificate from the wrong CA at start, not at the first handshake.
                let parsed =
                    ParsedCertificate::try_from(leaf).map_err(|e| TlsError::BadCertificate {
                        path: cert.to_path_buf(),
                        reason: e.to_string(),
                    })?;
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &store,
                    &chain[1..],
                    UnixTime::now(),
                    provider.signature_verification_algorithms.all,
                )
                .map_err(|e| TlsError::NotSignedByCa {
                    cert: cert.to_path_buf(),
                    ca: ca.to_path_buf(),
                    reason: e.to_string(),
                })?;
                Some(Arc::new(store))
            }
        };
        Ok(Identity::new(name, chain, key_der, roots))
    }

    /// The dev-mode identity kept in `dir`: `dir/dev-sentinel.crt` and `.key` if they exist,
    /// else a new self-signed certificate named `dev-<random hex>`, written there so that a
    /// restart keeps the same name and id. Peers' certificates are not verified.
    pub fn dev(dir: &Path) -> Result<Identity, TlsError> {
        let crt = dir.join("dev-sentinel.crt");
        let key_path = dir.join("dev-sentinel.key");
        // If only one of the files exists, loading reports the missing one: we never replace a
        // half identity silently, since the name (and id) would change.
        if crt.exists() || key_path.exists() {
            let id = Identity::from_files(&crt, &key_path, None)?;
            warn!(name = %id.name(), "DEV MODE: gossip accepts any peer certificate; configure a cluster CA for production");
            return Ok(id);
        }
        fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = format!("dev-{:016x}", rand::random::<u64>());
        let params = leaf_params(&name)?;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&crt, cert.pem().as_bytes(), 0o644)?;
        warn!(%name, "DEV MODE: created a self-signed identity; gossip accepts any peer certificate; configure a cluster CA for production");
        let der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|_| TlsError::NotPem {
            path: key_path,
            what: "private key",
        })?;
        Ok(Identity::new(name, vec![cert.der().clone()], der, None))
    }

    fn new(
        name: String,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        roots: Option<Arc<RootCertStore>>,
    ) -> Identity {
        Identity {
            inner: Arc::new(Inner {
                id: sentinel_id(&name),
                name,
                chain,
                key,
                roots,
            }),
        }
    }

    /// The sentinel's name (its certificate's CN).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The sentinel's id, derived from its name.
    pub fn sentinel_id(&self) -> SentinelId {
        self.inner.id
    }

    /// `true` when peers' certificates are not verified against a CA.
    pub fn is_dev(&self) -> bool {
        self.inner.roots.is_none()
    }

    /// The rustls server config: TLS 1.3, ALPN `vigil-gossip/1`, client certificate required
    /// (and chained to the CA unless in dev mode).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(provider());
        let verifier: Arc<dyn ClientCertVerifier> = match &self.inner.roots {
            Some(roots) => {
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()?
            }
            None => Arc::new(AnyCert {
                provider: provider.clone(),
            }),
        };
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.inner.chain.clone(), self.inner.key.clone_key())?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(cfg)
    }

    /// The rustls client config: TLS 1.3, ALPN `vigil-gossip/1`, presents this identity, and
    /// verifies the server's chain against the CA (without checking its name, see the module
    /// doc), or accepts any certificate in dev mode. Dial with `SERVER_NAME`.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let provider = Arc::new(provider());
        let verifier: Arc<dyn ServerCertVerifier> = match &self.inner.roots {
            Some(roots) => Arc::new(CaChainOnly {
                roots: roots.clone(),
                provider: provider.clone(),
            }),
            None => Arc::new(AnyCert {
                provider: provider.clone(),
            }),
        };
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.inner.chain.clone(), self.inner.key.clone_key())?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(cfg)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Identity")
            .field("name", &self.inner.name)
            .field("id", &self.inner.id)
            .field("dev", &self.is_dev())
            .finish_non_exhaustive()
    }
}

/// The sentinel name in a certificate: its first common name, which must be a valid name.
pub fn peer_name(cert: &CertificateDer<'_>) -> Result<String, String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| e.to_string())?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .ok_or_else(|| "no common name".to_owned())?;
    let cn = cn
        .as_str()
        .map_err(|_| "common name is not a string".to_owned())?;
    if !valid_name(cn) {
        return Err(format!("common name {cn:?} is not a valid sentinel name"));
    }
    Ok(cn.to_owned())
}

/// Verifies a server's chain against the cluster CA, but not its name (see the module doc).
#[derive(Debug)]
struct CaChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CaChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        peer_name(end_entity).map_err(rustls::Error::General)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Dev mode, both directions: any certificate with a valid sentinel name is accepted. The
/// handshake signatures are still verified, so the peer does hold the key of the certificate
/// it presented, which keeps one dev identity from being replayed by another process.
#[derive(Debug)]
struct AnyCert {
    provider: Arc<CryptoProvider>,
}

impl AnyCert {
    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        peer_name(end_entity).map_err(rustls::Error::General)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for AnyCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        peer_name(end_entity).map_err(rustls::Error::General)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The parameters shared by issued and dev certificates: CN, the URI SAN, client and server
/// usage, and a validity of ten years from yesterday (a day of slack for skewed clocks).
fn leaf_params(name: &str) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    let uri = format!("vigil://sentinel/{name}");
    params.subject_alt_names = vec![SanType::URI(
        uri.as_str()
            .try_into()
            .map_err(|_| TlsError::InvalidName(name.to_owned()))?,
    )];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0) - 1;
    let (y, m, d) = civil_from_days(days);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    // The 28th exists in every month, so the end date is always valid.
    params.not_after = rcgen::date_time_ymd(y + VALIDITY_YEARS, m, d.min(28));
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // The ranges are bounded by the arithmetic above: 1..=31 and 1..=12.
    (
        i32::try_from(y).unwrap_or(1970),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TlsError::Missing {
            path: path.to_path_buf(),
        },
        _ => TlsError::Unreadable {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    String::from_utf8(read_bytes(path)?).map_err(|_| TlsError::NotPem {
        path: path.to_path_buf(),
        what: "file (not UTF-8)",
    })
}

/// Every certificate in a PEM file; at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_bytes(path)?;
    let not_pem = || TlsError::NotPem {
        path: path.to_path_buf(),
        what: "certificate",
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| not_pem())?;
    if certs.is_empty() {
        return Err(not_pem());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_bytes(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NotPem {
        path: path.to_path_buf(),
        what: "private key",
    })
}

/// The DER SubjectPublicKeyInfo of a certificate.
fn spki(cert: &CertificateDer<'_>) -> Result<Vec<u8>, String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| e.to_string())?;
    Ok(parsed.tbs_certificate.subject_pki.raw.to_vec())
}

/// Writes a new file with `mode` (on Unix), failing if it exists; synced before returning.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let err = |source: io::Error| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            TlsError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            TlsError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut file = opts.open(path).map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_ids_are_stable_fnv1a_and_never_zero() {
        // FNV-1a 32 reference values.
        assert_eq!(sentinel_id("a"), SentinelId(0xe40c_292c));
        assert_eq!(sentinel_id("foobar"), SentinelId(0xbf9c_f968));
        assert_eq!(sentinel_id("s1"), sentinel_id("s1"));
        assert_ne!(sentinel_id("s1"), sentinel_id("s2"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn ca_issue_and_load() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        assert!(matches!(init_ca(dir.path()), Err(TlsError::Exists { .. })));
        let (crt, key) = issue(
            dir.path(),
            "s-1",
            &["127.0.0.1".into(), "sentinel.example".into()],
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let mode = fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        let id = Identity::from_files(&crt, &key, Some(&dir.path().join("ca.crt"))).unwrap();
        assert_eq!(id.name(), "s-1");
        assert_eq!(id.sentinel_id(), sentinel_id("s-1"));
        assert!(!id.is_dev());
        id.server_config().unwrap();
        id.client_config().unwrap();
        // The SANs are as asked.
        let der = read_certs(&crt).unwrap().remove(0);
        let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let san = parsed.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| format!("{n}"))
            .collect();
        let ip = x509_parser::extensions::GeneralName::IPAddress(&[127, 0, 0, 1]);
        assert!(san.value.general_names.contains(&ip), "{names:?}");
        assert!(names.iter().any(|n| n.contains("sentinel.example")));
        assert!(names.iter().any(|n| n.contains("vigil://sentinel/s-1")));
        assert!(matches!(
            issue(dir.path(), "s-1", &[]),
            Err(TlsError::Exists { .. })
        ));
    }

    #[test]
    fn invalid_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        let long = "x".repeat(65);
        for bad in ["", "a b", "../x", "é", long.as_str()] {
            assert!(
                matches!(issue(dir.path(), bad, &[]), Err(TlsError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn load_errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        init_ca(p).unwrap();
        let (crt, key) = issue(p, "a", &[]).unwrap();
        let (_, key_b) = issue(p, "b", &[]).unwrap();
        let missing = p.join("nope.crt");
        let err = Identity::from_files(&missing, &key, None).unwrap_err();
        assert!(matches!(err, TlsError::Missing { ref path } if *path == missing));
        assert!(err.to_string().contains("nope.crt"));
        let junk = p.join("junk.pem");
        fs::write(&junk, "hello").unwrap();
        assert!(matches!(
            Identity::from_files(&junk, &key, None),
            Err(TlsError::NotPem {
                what: "certificate",
                ..
            })
        ));
        assert!(matches!(
            Identity::from_files(&crt, &junk, None),
            Err(TlsError::NotPem {
                what: "private key",
                ..
            })
        ));
        let err = Identity::from_files(&crt, &key_b, None).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        // A certificate from another CA is refused at load.
        let other = tempfile::tempdir().unwrap();
        init_ca(other.path()).unwrap();
        let err = Identity::from_files(&crt, &key, Some(&other.path().join("ca.crt"))).unwrap_err();
        assert!(matches!(err, TlsError::NotSignedByCa { .. }), "{err}");
    }

    #[test]
    fn dev_identity_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::dev(dir.path()).unwrap();
        assert!(a.is_dev());
        assert!(a.name().starts_with("dev-"));
        let b = Identity::dev(dir.path()).unwrap();
        assert_eq!(a.name(), b.name());
        assert_eq!(a.sentinel_id(), b.sentinel_id());
        b.server_config().unwrap();
        b.client_config().unwrap();
    }
}
