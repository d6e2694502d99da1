//! Tokens signed with keys made here (ES256 with ring): every check refuses what it must.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::*;

const ISS: &str = "https://idp.example.com";
const NOW: u64 = 1_700_000_000;

struct Key {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Jwk,
}

fn key(kid: &str) -> Key {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // An uncompressed point: 0x04, x, y.
    let point = pair.public_key().as_ref();
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }))
    .unwrap();
    Key {
        kid: kid.into(),
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk,
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": "sandlab", "sub": "user-1", "nonce": "n0nce",
        "iat": NOW - 10, "exp": NOW + 300, "email": "a@example.com",
    })
}

fn sign(k: &Key, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(k.kid.clone());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_ec_der(&k.pkcs8)).unwrap()
}

fn want() -> Expected<'static> {
    Expected {
        issuer: ISS,
        client_id: "sandlab",
        nonce: "n0nce",
        now: NOW,
    }
}

fn check(k: &Key, token: &str) -> Result<Map<String, Value>, TokenError> {
    let (kid, alg) = header(token)?;
    let set = JwkSet {
        keys: vec![k.jwk.clone()],
    };
    let jwk = find_key(&set, kid.as_deref(), alg).ok_or(TokenError::UnknownKey)?;
    verify(token, jwk, alg, &want())
}

fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut c = claims();
    change(c.as_object_mut().unwrap());
    c
}

#[test]
fn a_good_token_passes() {
    let k = key("k1");
    let c = check(&k, &sign(&k, &claims())).unwrap();
    assert_eq!(c["sub"], "user-1");
    assert_eq!(c["email"], "a@example.com");
}

#[test]
fn a_tampered_token_or_another_key_is_refused() {
    let k = key("k1");
    let token = sign(&k, &claims());
    // Another payload under the same signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = with(|c| {
        c.insert("sub".into(), json!("admin"));
    });
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    assert_eq!(check(&k, &parts.join(".")), Err(TokenError::Signature));
    // A flipped signature byte.
    let mut sig = URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap();
    sig[5] ^= 1;
    let mut parts: Vec<&str> = token.split('.').collect();
    let sig = URL_SAFE_NO_PAD.encode(sig);
    parts[2] = &sig;
    assert_eq!(check(&k, &parts.join(".")), Err(TokenError::Signature));
    // Signed by a key the provider does not publish, under a published kid.
    let stranger = Key {
        kid: "k1".into(),
        ..key("k1")
    };
    assert_eq!(
        check(&k, &sign(&stranger, &claims())),
        Err(TokenError::Signature)
    );
    // An unknown kid.
    let other = key("k2");
    assert_eq!(
        check(&k, &sign(&other, &claims())),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn none_and_shared_secret_algorithms_are_refused() {
    let k = key("k1");
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
    assert_eq!(check(&k, &none), Err(TokenError::Malformed));
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert_eq!(check(&k, &hs), Err(TokenError::Algorithm("HS256".into())));
}

#[test]
fn claims_are_checked() {
    let k = key("k1");
    let cases: Vec<(Value, TokenError)> = vec![
        (
            with(|c| drop(c.insert("aud".into(), json!("someone-else")))),
            TokenError::Audience,
        ),
        (
            with(|c| drop(c.insert("aud".into(), json!(["x", "sandlab"])))),
            TokenError::Audience,
        ),
        (
            with(|c| {
                c.insert("aud".into(), json!(["x", "sandlab"]));
                c.insert("azp".into(), json!("x"));
            }),
            TokenError::Audience,
        ),
        (
            with(|c| drop(c.insert("iss".into(), json!("https://evil.example.com")))),
            TokenError::Issuer,
        ),
        (
            with(|c| drop(c.insert("exp".into(), json!(NOW - LEEWAY_SECS - 1)))),
            TokenError::Expired,
        ),
        (
            with(|c| drop(c.insert("iat".into(), json!(NOW + LEEWAY_SECS + 5)))),
            TokenError::IssuedInFuture,
        ),
        (
            with(|c| drop(c.insert("nonce".into(), json!("other")))),
            TokenError::Nonce,
        ),
        (with(|c| drop(c.remove("nonce"))), TokenError::Nonce),
        (with(|c| drop(c.remove("exp"))), TokenError::Malformed),
        (
            with(|c| drop(c.insert("sub".into(), json!("")))),
            TokenError::Subject,
        ),
    ];
    for (c, want) in cases {
        assert_eq!(check(&k, &sign(&k, &c)), Err(want.clone()), "{c}");
    }
    // Several audiences with azp naming us, and a little clock skew, pass.
    let ok = with(|c| {
        c.insert("aud".into(), json!(["x", "sandlab"]));
        c.insert("azp".into(), json!("sandlab"));
        c.insert("exp".into(), json!(NOW - 5));
    });
    assert!(check(&k, &sign(&k, &ok)).is_ok());
}
