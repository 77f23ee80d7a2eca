//! `baton pki`: a throwaway development PKI, so that a quick start and the
//! tests can turn mTLS on without openssl. Production brings its own CA.
//!
//! `init DIR` makes a CA (`ca.pem`, `ca.key`) and a server certificate
//! (`server.pem`, `server.key`) for localhost, 127.0.0.1, ::1 and any
//! `--host`; `issue` makes a client certificate naming one principal, a URI
//! subject alternative name (a SPIFFE ID such as `spiffe://baton.dev/gw`) or
//! a DNS name. Keys are ECDSA P-256 (every TLS stack takes them); every file
//! is created 0600 and none is ever overwritten.
//!
//! The CA's name is derived from its key, so that `issue` needs only
//! `ca.key` to sign (no certificate parser).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::keys::write_private;

pub const CA: &str = "ca";
pub const SERVER: &str = "server";

/// Days a certificate from `issue` is valid by default.
pub const DAYS_DEFAULT: i64 = 30;

/// The PEM files of one certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn files(dir: &Path, name: &str) -> Issued {
    Issued {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    }
}

/// Makes the CA and the server certificate in `dir` (created 0700 if absent).
pub fn init(dir: &Path, hosts: &[String]) -> anyhow::Result<Issued> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("chmod 700 {}", dir.display()))?;
    }
    let ca = files(dir, CA);
    if ca.key.exists() {
        bail!(
            "{} exists: this directory already has a CA (issue certificates from it with `baton pki issue`)",
            ca.key.display()
        );
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let params = ca_params(&key, OffsetDateTime::now_utc())?;
    let cert = params.self_signed(&key)?;
    write_private(&ca.key, key.serialize_pem().as_bytes())?;
    write_private(&ca.cert, cert.pem().as_bytes())?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    names.extend(hosts.iter().cloned());
    let now = OffsetDateTime::now_utc();
    sign(
        dir,
        SERVER,
        Leaf::Server(names),
        now - Duration::minutes(5),
        now + Duration::days(365),
    )
}

/// What a leaf certificate is for.
#[derive(Debug, Clone)]
pub enum Leaf {
    /// A server: DNS names and IP addresses.
    Server(Vec<String>),
    /// A client naming this principal.
    Client(String),
    /// A server that is also a client of its peers (a Kafka broker talking
    /// to the other brokers): DNS names and IP addresses, both key usages.
    Peer(Vec<String>),
}

/// Issues a client certificate for `principal`, valid for `days`, as
/// `NAME.pem` / `NAME.key` in `dir`.
pub fn issue(dir: &Path, name: &str, principal: &str, days: i64) -> anyhow::Result<Issued> {
    issue_leaf(dir, name, Leaf::Client(principal.to_owned()), days)
}

/// Issues `leaf`, valid for `days` from now (less 5 minutes of clock skew).
pub fn issue_leaf(dir: &Path, name: &str, leaf: Leaf, days: i64) -> anyhow::Result<Issued> {
    if days < 1 {
        bail!("days: {days} is not at least 1");
    }
    let now = OffsetDateTime::now_utc();
    sign(
        dir,
        name,
        leaf,
        now - Duration::minutes(5),
        now + Duration::days(days),
    )
}

/// Signs a leaf with the CA in `dir`, valid from `not_before` to `not_after`
/// (tests make expired ones).
pub fn sign(
    dir: &Path,
    name: &str,
    leaf: Leaf,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> anyhow::Result<Issued> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("name: {name:?} must be letters, digits, '-' or '_' (it names the files)");
    }
    let ca = files(dir, CA);
    let ca_text = std::fs::read_to_string(&ca.key).with_context(|| {
        format!(
            "reading the CA key {} (run `baton pki init`)",
            ca.key.display()
        )
    })?;
    let ca_key =
        KeyPair::from_pem(&ca_text).with_context(|| format!("CA key {}", ca.key.display()))?;
    let issuer = Issuer::new(ca_params(&ca_key, not_before)?, &ca_key);
    let out = files(dir, name);
    for path in [&out.cert, &out.key] {
        if path.exists() {
            bail!("{} exists (never overwritten)", path.display());
        }
    }
    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_after;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    match leaf {
        Leaf::Server(names) | Leaf::Peer(names) if names.is_empty() => {
            bail!("host: a server certificate needs at least one DNS name or IP address")
        }
        Leaf::Server(names) => {
            let server = CertificateParams::new(names)?;
            params.subject_alt_names = server.subject_alt_names;
            params.distinguished_name = common_name("baton node");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        Leaf::Peer(names) => {
            params.distinguished_name = common_name(&names[0]);
            params.subject_alt_names = CertificateParams::new(names)?.subject_alt_names;
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
        Leaf::Client(principal) => {
            params.subject_alt_names = vec![if principal.contains(':') {
                SanType::URI(
                    principal
                        .as_str()
                        .try_into()
                        .with_context(|| format!("principal: {principal:?} is not an ASCII URI"))?,
                )
            } else {
                SanType::DnsName(principal.as_str().try_into().with_context(|| {
                    format!("principal: {principal:?} is not an ASCII DNS name")
                })?)
            }];
            params.distinguished_name = common_name(&principal);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, &issuer)?;
    write_private(&out.key, key.serialize_pem().as_bytes())?;
    write_private(&out.cert, cert.pem().as_bytes())?;
    Ok(out)
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// The CA's parameters; its name is derived from its key, so that the
/// issuer of a leaf matches the CA certificate's subject exactly.
fn ca_params(key: &KeyPair, not_before: OffsetDateTime) -> anyhow::Result<CertificateParams> {
    let id = blake3::hash(key.public_key_raw());
    let mut params = CertificateParams::default();
    params.distinguished_name =
        common_name(&format!("Baton development CA {}", &id.to_hex()[..16]));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before.min(OffsetDateTime::now_utc() - Duration::minutes(5));
    params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
    Ok(params)
}
