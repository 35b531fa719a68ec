//! The delivery signature: HMAC-SHA256 over the exact body bytes, keyed with
//! the operator's secret, sent as `X-Sluice-Signature: sha256=<lowercase hex>`.
//! A receiver recomputes it over the raw body it received and compares in
//! constant time; anyone without the secret can neither forge nor alter a
//! delivery.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const HEADER: &str = "X-Sluice-Signature";

/// `sha256=<hex>` for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256=");
    for byte in digest.iter() {
        out.push(char::from_digit(u32::from(byte >> 4), 16).expect("a nibble is a hex digit"));
        out.push(char::from_digit(u32::from(byte & 0xf), 16).expect("a nibble is a hex digit"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2: key "Jefe".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn depends_on_every_byte_of_body_and_secret() {
        let base = sign(b"secret", br#"{"event":"x"}"#);
        assert_ne!(base, sign(b"secret", br#"{"event":"y"}"#));
        assert_ne!(base, sign(b"secreT", br#"{"event":"x"}"#));
        assert_eq!(base.len(), 7 + 64);
    }
}
