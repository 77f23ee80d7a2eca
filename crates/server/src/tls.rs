//! TLS on the node's listeners (rustls, TLS 1.2 and 1.3 only) and who the
//! peer is.
//!
//! The server's certificate and key, and the CA bundles client certificates
//! are verified against, are read from files and read again by
//! [`Tls::reload`] (the binary calls it on SIGHUP): connections made after a
//! reload get the new certificate, connections already open keep theirs.
//!
//! Client certificates are optional at the TLS layer, so that health probes
//! need none and so that a caller with a bad certificate is told why in a
//! gRPC status (UNAUTHENTICATED: expired, unknown issuer…) instead of a bare
//! handshake failure. The handshake still proves the client holds the key of
//! the certificate it presented (its CertificateVerify signature is checked
//! as usual); the certificate's chain, validity and key usage are checked
//! right after the handshake, once per connection, by rustls' WebPKI
//! verifier against the configured CAs. Only a certificate that passes
//! becomes a [`Identity::Principal`]: its first URI subject alternative name
//! (a SPIFFE ID such as `spiffe://corp.example/gateway-eu`), or, failing
//! that, its first DNS name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::{
    self, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject as _},
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};

use crate::identity::Identity;

/// Where a node's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The server certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundles (PEM) that client certificates must chain to, each with
    /// the principals it may vouch for.
    pub client_ca: Vec<ClientCa>,
}

/// A CA bundle for client certificates and the principals it may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCa {
    pub file: PathBuf,
    /// Principal patterns (as `[[access]]` writes them: exact, or a URI
    /// prefix ending in `*` after its authority and a `/`); `None`: any
    /// principal, allowed only when it is the one bundle configured.
    pub principals: Option<Vec<String>>,
}

impl ClientCa {
    /// A bundle that may name any principal (the only one configured).
    pub fn any(file: PathBuf) -> ClientCa {
        ClientCa {
            file,
            principals: None,
        }
    }
}

/// The TLS configuration a node serves with; cheap to share, reloadable.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<RwLock<Arc<Loaded>>>,
    /// Bumped by every successful reload: connections verify their
    /// certificate again against the new CAs at their next request.
    generation: Arc<AtomicU64>,
    /// One reload at a time (a signal and a file watch may race; the later
    /// read must be the one that stays).
    reloading: Arc<Mutex<()>>,
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

/// What the files said when last read.
struct Loaded {
    certified: Arc<CertifiedKey>,
    /// A verifier per CA bundle, with the principals it may vouch for.
    clients: Arc<Vec<Bundle>>,
}

struct Bundle {
    file: PathBuf,
    verifier: Arc<dyn ClientCertVerifier>,
    principals: Option<Vec<String>>,
}

impl Tls {
    /// Reads the files; every error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = Arc::new(read(&files, &provider)?);
        let current = Arc::new(RwLock::new(loaded));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                provider: provider.clone(),
            }))
            .with_cert_resolver(Arc::new(Resolver {
                current: current.clone(),
            }));
        // gRPC is HTTP/2; clients such as grpc-go require ALPN to say so.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            files,
            provider,
            current,
            generation: Arc::new(AtomicU64::new(0)),
            reloading: Arc::new(Mutex::new(())),
            config: Arc::new(config),
        })
    }

    /// Reads the files again. On any error the node keeps serving what it
    /// had, and the error says what was wrong.
    pub fn reload(&self) -> Result<(), String> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = Arc::new(read(&self.files, &self.provider)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The same certificates and client CAs (reloads included), offering
    /// `protocols` in ALPN instead of `h2`: the HTTP listener's.
    pub fn with_alpn(&self, protocols: Vec<Vec<u8>>) -> Tls {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols;
        Tls {
            config: Arc::new(config),
            ..self.clone()
        }
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    /// Who presented `chain` (leaf first), verified against the CAs as they
    /// are now.
    pub(crate) fn identify(&self, chain: Option<&[CertificateDer<'static>]>) -> Identity {
        let Some((leaf, intermediates)) = chain.and_then(<[_]>::split_first) else {
            return Identity::Anonymous;
        };
        let clients = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clients
            .clone();
        let mut refused = None;
        let mut vouching = Vec::new();
        for bundle in clients.iter() {
            match bundle
                .verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
            {
                Ok(_) => vouching.push(bundle),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        if vouching.is_empty() {
            let why = refused.map_or_else(|| "no CA".to_owned(), |e| e.to_string());
            return Identity::Refused(format!("client certificate refused: {why}"));
        }
        let Some(principal) = principal_of(leaf) else {
            return Identity::Refused(
                "client certificate refused: it names no principal (no URI or DNS subject alternative name)"
                    .into(),
            );
        };
        // A CA vouches only for the principals it is configured for: a
        // partner's CA cannot name this organisation's admin.
        let allowed = vouching.iter().any(|bundle| {
            bundle.principals.as_ref().is_none_or(|patterns| {
                patterns
                    .iter()
                    .any(|pattern| crate::identity::matches(pattern, &principal))
            })
        });
        if !allowed {
            let files: Vec<String> = vouching
                .iter()
                .map(|b| b.file.display().to_string())
                .collect();
            return Identity::Refused(format!(
                "client certificate refused: it names {:?}, which its CA ({}) may not vouch for",
                baton_core::echo(&principal),
                files.join(", ")
            ));
        }
        Identity::Principal(principal)
    }
}

/// The principal a verified certificate names: its first URI SAN, else its
/// first DNS SAN; only printable ASCII without spaces (what a URI or DNS
/// name is), so that a principal never carries control characters into logs
/// or lookalikes into grants.
fn principal_of(leaf: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
    let uri = cert.valid_uri_names().next();
    uri.or_else(|| cert.valid_dns_names().next())
        .filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

/// How often an open connection's certificate is verified again (so an
/// expired certificate stops working on a connection opened before it
/// expired).
pub const REVERIFY_EVERY: Duration = Duration::from_secs(10);

/// Who is on the other end of one connection, kept current: verified again
/// after a reload of the CAs and every [`REVERIFY_EVERY`].
#[derive(Debug)]
pub struct PeerIdentity {
    tls: Option<(Tls, Option<Vec<CertificateDer<'static>>>)>,
    verified: Mutex<Verified>,
}

#[derive(Debug)]
struct Verified {
    identity: Arc<Identity>,
    at: Instant,
    generation: u64,
}

impl PeerIdentity {
    /// A plaintext TCP connection: never anyone; admin when the operator
    /// chose that every plaintext caller is.
    pub fn plaintext(admin: bool) -> Self {
        PeerIdentity::fixed(Identity::Plaintext { admin })
    }

    /// A Unix-socket connection from a process running as `uid`.
    pub fn local(uid: u32) -> Self {
        PeerIdentity::fixed(Identity::Local { uid })
    }

    fn fixed(identity: Identity) -> Self {
        PeerIdentity {
            tls: None,
            verified: Mutex::new(Verified {
                identity: Arc::new(identity),
                at: Instant::now(),
                generation: 0,
            }),
        }
    }

    /// A TLS connection that presented `chain` (leaf first), if any.
    pub(crate) fn tls(tls: Tls, chain: Option<&[CertificateDer<'static>]>) -> Self {
        let generation = tls.generation.load(Ordering::SeqCst);
        let identity = Arc::new(tls.identify(chain));
        PeerIdentity {
            tls: Some((tls, chain.map(<[_]>::to_vec))),
            verified: Mutex::new(Verified {
                identity,
                at: Instant::now(),
                generation,
            }),
        }
    }

    /// Who it is now.
    pub fn identity(&self) -> Arc<Identity> {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((tls, chain)) = &self.tls {
            let generation = tls.generation.load(Ordering::SeqCst);
            if generation != verified.generation || verified.at.elapsed() >= REVERIFY_EVERY {
                *verified = Verified {
                    identity: Arc::new(tls.identify(chain.as_deref())),
                    at: Instant::now(),
                    generation,
                };
            }
        }
        verified.identity.clone()
    }
}

fn read(files: &TlsFiles, provider: &Arc<CryptoProvider>) -> Result<Loaded, String> {
    let chain = certificates(&files.cert, "tls.cert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "tls.key: {}: no usable private key (PEM PKCS#8, PKCS#1 or SEC1): {e}",
            files.key.display()
        )
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "tls.key: {} does not fit the certificate in {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    if files.client_ca.is_empty() {
        return Err(
            "tls.client_ca: no CA bundle for client certificates; callers are identified by mTLS"
                .into(),
        );
    }
    let several = files.client_ca.len() > 1;
    let mut clients = Vec::with_capacity(files.client_ca.len());
    for (i, ca) in files.client_ca.iter().enumerate() {
        let path = &ca.file;
        match &ca.principals {
            None if several => {
                return Err(format!(
                    "tls.client_ca[{i}]: {}: with several client CAs, each names the principals it may vouch for (principals = [\"spiffe://partner.example/*\"]), or any of them could name another's admin",
                    path.display()
                ));
            }
            Some(patterns) if patterns.is_empty() => {
                return Err(format!(
                    "tls.client_ca[{i}].principals: {}: empty; name what it may vouch for",
                    path.display()
                ));
            }
            Some(patterns) => {
                for pattern in patterns {
                    crate::identity::check_pattern(pattern)
                        .map_err(|why| format!("tls.client_ca[{i}].principals: {why}"))?;
                }
            }
            None => {}
        }
        let mut roots = RootCertStore::empty();
        for cert in certificates(path, "tls.client_ca")? {
            roots
                .add(cert)
                .map_err(|e| format!("tls.client_ca: {}: {e}", path.display()))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("tls.client_ca: {}: {e}", path.display()))?;
        clients.push(Bundle {
            file: path.clone(),
            verifier,
            principals: ca.principals.clone(),
        });
    }
    let clients = Arc::new(clients);
    Ok(Loaded {
        certified: Arc::new(certified),
        clients,
    })
}

fn certificates(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{field}: {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{field}: {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(chain)
}

#[derive(Debug)]
struct Resolver {
    current: Arc<RwLock<Arc<Loaded>>>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .certified
                .clone(),
        )
    }
}

/// Asks for a client certificate, takes any, and checks the handshake's
/// proof that the client holds its key; the chain is verified after the
/// handshake ([`Tls::identify`]).
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a client sends whatever certificate it has, and hears
        // why it was refused.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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
