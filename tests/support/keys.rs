//! A throwaway RSA key and self-signed certificate, made per test run, for the token server's
//! RS256 JWTs: the registry trusts the certificate (`auth.token.rootcertbundle`) and finds it in
//! each token's `x5c` header. Nothing here is a real secret and nothing is checked in.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::SigningKey as _;

pub struct SigningKey {
    key: rcgen::KeyPair,
    /// The certificate, DER, for `x5c`.
    cert_der: Vec<u8>,
    /// The certificate, PEM, for the registry's bundle.
    pub cert_pem: String,
}

impl SigningKey {
    pub fn generate() -> SigningKey {
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .expect("RSA key (rcgen with aws-lc-rs)");
        let params = rcgen::CertificateParams::new(vec!["promote-test-token-server".to_string()])
            .expect("params");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        SigningKey {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key,
        }
    }

    /// A compact JWS (RS256) of `claims` with the certificate in `x5c`.
    pub fn jwt(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [STANDARD.encode(&self.cert_der)],
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes()).expect("signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// A JWT with a meaningless signature, for doubles whose counterpart only reads the claims
/// (Entra reads GitHub's ID token claims in our double; it does not verify them cryptographically).
pub fn unsigned_jwt(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(b"test-signature")
    )
}
