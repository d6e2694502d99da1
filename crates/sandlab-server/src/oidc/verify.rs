//! Checking an ID token (OpenID Connect Core 1.0, section 3.1.3.7): its signature against
//! the provider's JWKS (RS256/384/512, PS256/384/512, ES256/384; never `none` or a shared
//! secret), `iss`, `aud` (and `azp` when there are several audiences), `exp` and `iat`
//! with [`LEEWAY_SECS`] of clock skew, and the `nonce` this sign-in sent.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew allowed between the provider and this server.
pub const LEEWAY_SECS: u64 = 60;

/// Why an ID token was refused; each is one sentence for the log and the login page.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("The ID token is malformed")]
    Malformed,
    #[error("The ID token is signed with an algorithm Sandlab does not accept ({0})")]
    Algorithm(String),
    #[error("The ID token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("The ID token's signature is not valid")]
    Signature,
    #[error("The ID token was issued by another issuer")]
    Issuer,
    #[error("The ID token was issued to another client")]
    Audience,
    #[error("The ID token has expired")]
    Expired,
    #[error("The ID token is dated in the future")]
    IssuedInFuture,
    #[error("The ID token does not answer this sign-in (its nonce differs)")]
    Nonce,
    #[error("The ID token names no subject")]
    Subject,
}

/// What an ID token must match.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: u64,
}

/// The key id and algorithm of a token, read before its keys are looked up.
pub fn header(token: &str) -> Result<(Option<String>, Algorithm), TokenError> {
    let h = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    match h.alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512
        | Algorithm::ES256
        | Algorithm::ES384 => Ok((h.kid, h.alg)),
        other => Err(TokenError::Algorithm(format!("{other:?}"))),
    }
}

/// The key of `jwks` that may have signed a token with `kid` and `alg`: the one with that
/// id, or without an id the only signing key of the algorithm's type.
pub fn find_key<'a>(jwks: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, PublicKeyUse};
    let fits = |k: &&Jwk| {
        let family = matches!(
            (&k.algorithm, alg),
            (
                P::RSA(_),
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
            ) | (
                P::RSA(_),
                Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512
            ) | (P::EllipticCurve(_), Algorithm::ES256 | Algorithm::ES384)
        );
        let for_signing = !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption));
        family && for_signing
    };
    match kid {
        Some(kid) => jwks
            .keys
            .iter()
            .filter(fits)
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let mut candidates = jwks.keys.iter().filter(fits);
            let first = candidates.next();
            candidates.next().is_none().then_some(first).flatten()
        }
    }
}

/// Verifies `token` signed with `key` and returns its claims.
pub fn verify(
    token: &str,
    key: &Jwk,
    alg: Algorithm,
    want: &Expected,
) -> Result<Map<String, Value>, TokenError> {
    let decoding = DecodingKey::from_jwk(key).map_err(|_| TokenError::UnknownKey)?;
    let mut v = Validation::new(alg);
    // Time, issuer and audience are checked below, each with its own sentence.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &decoding, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::Signature,
            K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                TokenError::Algorithm(format!("{alg:?}"))
            }
            _ => TokenError::Malformed,
        }
    })?;
    let claims = data.claims;
    check_claims(&claims, want)?;
    Ok(claims)
}

fn check_claims(c: &Map<String, Value>, want: &Expected) -> Result<(), TokenError> {
    if c.get("iss").and_then(Value::as_str) != Some(want.issuer) {
        return Err(TokenError::Issuer);
    }
    let aud: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !aud.contains(&want.client_id) {
        return Err(TokenError::Audience);
    }
    match c.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != want.client_id => return Err(TokenError::Audience),
        None if aud.len() > 1 => return Err(TokenError::Audience),
        _ => {}
    }
    let time = |k: &str| c.get(k).and_then(Value::as_u64);
    let exp = time("exp").ok_or(TokenError::Malformed)?;
    let iat = time("iat").ok_or(TokenError::Malformed)?;
    if exp.saturating_add(LEEWAY_SECS) <= want.now {
        return Err(TokenError::Expired);
    }
    if iat > want.now.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::IssuedInFuture);
    }
    if c.get("nonce").and_then(Value::as_str) != Some(want.nonce) {
        return Err(TokenError::Nonce);
    }
    match c.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(()),
        _ => Err(TokenError::Subject),
    }
}

#[cfg(test)]
mod tests;
