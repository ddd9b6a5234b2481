//! Unit tests of `encrypt`, `decrypt` and `hash_password`: Fernet's published
//! vectors, keys from the environment, and hashes checked by their verifiers
//! (and against hashes made by the reference implementation and by Python).

use super::tests::{env, eval_with, TEST_KEY};
use crate::mapping::compile::compile;
use crate::mapping::expr::parse;
use serde_json::json;
use serde_json::Value;

/// Fernet's published vectors (github.com/fernet/spec: generate.json,
/// verify.json, invalid.json): (token, now, iv, src) and the invalid tokens.
const GENERATE: (&str, &str, [u8; 16], &str) = (
    "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
    "1985-10-26T01:20:00-07:00",
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    "hello",
);
const VERIFY_NOW: &str = "1985-10-26T01:20:01-07:00";
const INVALID: &[(&str, &str, &str)] = &[
    ("incorrect mac", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==", VERIFY_NOW),
    ("too short", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==", VERIFY_NOW),
    ("invalid base64", "%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==", VERIFY_NOW),
    ("payload size not multiple of block size", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm", VERIFY_NOW),
    ("payload padding error", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==", VERIFY_NOW),
    ("far-future TS (unacceptable clock skew)", "gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==", VERIFY_NOW),
    ("expired TTL", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==", "1985-10-26T01:21:31-07:00"),
    ("incorrect IV (causes padding error)", "gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==", VERIFY_NOW),
];

fn epoch(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp() as u64
}

/// A Fernet token built from its parts by the spec: 0x80, time, IV,
/// AES-128-CBC(PKCS7) with the key's second half, HMAC-SHA256 with its first.
fn token_from_parts(key: &str, now: u64, iv: &[u8; 16], src: &[u8]) -> String {
    use aes::cipher::{BlockEncryptMut, KeyIvInit};
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::URL_SAFE
        .decode(key)
        .unwrap();
    let ct = cbc::Encryptor::<aes::Aes128>::new_from_slices(&key[16..], iv)
        .unwrap()
        .encrypt_padded_vec_mut::<aes::cipher::block_padding::Pkcs7>(src);
    let mut t = vec![0x80];
    t.extend_from_slice(&now.to_be_bytes());
    t.extend_from_slice(iv);
    t.extend_from_slice(&ct);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key[..16]).unwrap();
    mac.update(&t);
    t.extend_from_slice(&mac.finalize().into_bytes());
    base64::engine::general_purpose::URL_SAFE.encode(t)
}

#[test]
fn encrypt_makes_tokens_of_the_fernet_spec() {
    use base64::Engine;
    let (token, now, iv, src) = GENERATE;
    // The construction above is the spec's: it gives the published token.
    assert_eq!(
        token_from_parts(TEST_KEY, epoch(now), &iv, src.as_bytes()),
        token
    );
    // encrypt() gives exactly that construction with its own time and a random IV.
    let before = chrono::Utc::now().timestamp() as u64;
    let a = eval_with(
        "value.pw | encrypt('CUTOVER_TEST_KEY')",
        json!({"pw": "hunter2 é"}),
    )
    .unwrap();
    let b = eval_with(
        "value.pw | encrypt('CUTOVER_TEST_KEY')",
        json!({"pw": "hunter2 é"}),
    )
    .unwrap();
    assert_ne!(a, b, "a fresh IV on every call");
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(a.as_str().unwrap())
        .unwrap();
    let at = u64::from_be_bytes(raw[1..9].try_into().unwrap());
    let iv: [u8; 16] = raw[9..25].try_into().unwrap();
    assert!(at >= before && at <= before + 5, "{at} vs {before}");
    assert_eq!(
        token_from_parts(TEST_KEY, at, &iv, "hunter2 é".as_bytes()),
        a.as_str().unwrap()
    );
    // decrypt() reads it back; numbers are encrypted as their digits; null stays null.
    let back = eval_with("value.t | decrypt('CUTOVER_TEST_KEY')", json!({ "t": a })).unwrap();
    assert_eq!(back, json!("hunter2 é"));
    let n = eval_with(
        "value.n | encrypt('CUTOVER_TEST_KEY') | decrypt('CUTOVER_TEST_KEY')",
        json!({"n": 1234}),
    )
    .unwrap();
    assert_eq!(n, json!("1234"));
    assert_eq!(
        eval_with("value.x | encrypt('CUTOVER_TEST_KEY')", json!({})).unwrap(),
        Value::Null
    );
}

#[test]
fn fernet_verify_and_invalid_vectors() {
    let f = fernet::Fernet::new(TEST_KEY).unwrap();
    let (token, _, _, src) = GENERATE;
    assert_eq!(
        f.decrypt_at_time(token, Some(60), epoch(VERIFY_NOW))
            .unwrap(),
        src.as_bytes()
    );
    for (what, bad, now) in INVALID {
        assert!(
            f.decrypt_at_time(bad, Some(60), epoch(now)).is_err(),
            "{what}"
        );
    }
    // decrypt() itself: the verify vector, and a token that is not one.
    assert_eq!(
        eval_with(
            "value.t | decrypt('CUTOVER_TEST_KEY')",
            json!({ "t": token })
        )
        .unwrap(),
        json!("hello")
    );
    let e = eval_with(
        "value.t | decrypt('CUTOVER_TEST_KEY')",
        json!({"t": INVALID[0].1}),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "the value is not a Fernet token of the key in CUTOVER_TEST_KEY"
    );
}

#[test]
fn keys_come_from_the_environment_and_are_checked_at_compile_time() {
    let err = |src: &str| compile(&parse(src).unwrap(), &env()).unwrap_err();
    let e = err("value.pw | encrypt('NO_SUCH_KEY')");
    assert_eq!(
        e.message,
        "environment variable NO_SUCH_KEY is not set: encrypt() reads its Fernet key from it"
    );
    assert!(e.hint.unwrap().contains("Fernet.generate_key()"));
    let e = err("value.pw | decrypt('BAD_KEY')");
    assert!(
        e.message
            .starts_with("environment variable BAD_KEY does not hold a Fernet key"),
        "{}",
        e.message
    );
    // A key written into the mapping is refused, and not repeated.
    let e = err(&format!("value.pw | encrypt('{TEST_KEY}')"));
    assert!(e.message.contains("not the key itself"), "{}", e.message);
    assert!(!e.message.contains(TEST_KEY) && !e.hint.unwrap().contains(TEST_KEY));
    let e = err("value.pw | encrypt('my key')");
    assert!(
        e.message.contains("is not an environment variable name"),
        "{}",
        e.message
    );
    let e = err("value.pw | encrypt(value.k)");
    assert!(
        e.message.contains("must be a quoted text literal"),
        "{}",
        e.message
    );
}

#[test]
fn hash_password_gives_phc_strings_that_verify() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let h = eval_with(
        "value.pw | hash_password('argon2id')",
        json!({"pw": "correct horse"}),
    )
    .unwrap();
    let h = h.as_str().unwrap().to_string();
    assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    let parsed = PasswordHash::new(&h).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horsE", &parsed)
        .is_err());
    let again = eval_with(
        "value.pw | hash_password('argon2id')",
        json!({"pw": "correct horse"}),
    )
    .unwrap();
    assert_ne!(again.as_str().unwrap(), h, "a fresh salt on every call");

    let h = eval_with(
        "value.pw | hash_password('argon2id', 'm=8192,t=3,p=2')",
        json!({"pw": "pw"}),
    )
    .unwrap();
    assert!(
        h.as_str()
            .unwrap()
            .starts_with("$argon2id$v=19$m=8192,t=3,p=2$"),
        "{h}"
    );

    let b = eval_with(
        "value.pw | hash_password('bcrypt', 'cost=4')",
        json!({"pw": "correct horse"}),
    )
    .unwrap();
    let b = b.as_str().unwrap();
    assert!(b.starts_with("$2b$04$") && b.len() == 60, "{b}");
    assert!(bcrypt::verify("correct horse", b).unwrap());
    assert!(!bcrypt::verify("correct horsE", b).unwrap());
    let b = eval_with("value.pw | hash_password('bcrypt')", json!({"pw": "x"})).unwrap();
    assert!(b.as_str().unwrap().starts_with("$2b$12$"), "{b}");
    let e = eval_with(
        "value.pw | hash_password('bcrypt', 'cost=4')",
        json!({"pw": "p".repeat(73)}),
    )
    .unwrap_err();
    assert!(
        e.starts_with("bcrypt takes at most 72 bytes") && !e.contains("ppp"),
        "{e}"
    );

    let err = |src: &str| compile(&parse(src).unwrap(), &env()).unwrap_err().message;
    assert_eq!(
        err("value.pw | hash_password('md5')"),
        "hash_password: unknown algorithm 'md5'"
    );
    assert_eq!(
        err("value.pw | hash_password('bcrypt', 'cost=3')"),
        "hash_password: bcrypt cost 3 is not from 4 to 31"
    );
    assert_eq!(
        err("value.pw | hash_password('argon2id', 'm=19456,x=2')"),
        "hash_password: unknown argon2id parameter 'x'"
    );
    assert!(err("value.pw | hash_password('argon2id', 'm=1')")
        .starts_with("hash_password: argon2id parameters m=1,t=2,p=1:"));
}

#[test]
fn stored_values_open_to_their_clear_text() {
    use super::Secret;
    let secret = |src: &str| {
        let e = compile(&parse(src).unwrap(), &env()).unwrap();
        super::secret_of(&e).unwrap().1.clone()
    };
    let f = secret("value.pw | encrypt('CUTOVER_TEST_KEY')");
    let t = f.protect("s3cret").unwrap();
    assert!(f.opens(&t, "s3cret"));
    assert!(!f.opens(&t, "s3cret "));
    assert!(!f.opens("not a token", "s3cret"));
    // The spec's token opens with its key.
    assert!(f.opens(GENERATE.0, "hello"));

    // The reference implementation's argon2id hash of "password" (RFC 9106
    // parameters m=65536, t=2, p=1, salt "somesalt") opens with those costs only.
    let reference =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let a = secret("value.pw | hash_password('argon2id', 'm=65536,t=2,p=1')");
    assert!(a.opens(reference, "password"));
    assert!(!a.opens(reference, "passwore"));
    let other_costs = secret("value.pw | hash_password('argon2id')");
    assert!(
        !other_costs.opens(reference, "password"),
        "other costs: made again"
    );
    let own = other_costs.protect("pw").unwrap();
    assert!(other_costs.opens(&own, "pw"));

    // A `$2b$` hash made by Python's bcrypt.
    let python = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";
    let b = secret("value.pw | hash_password('bcrypt', 'cost=4')");
    assert!(b.opens(python, "correctbatteryhorsestapler"));
    assert!(!b.opens(python, "correctbatteryhorsestaple"));
    assert!(
        !secret("value.pw | hash_password('bcrypt')").opens(python, "correctbatteryhorsestapler")
    );
    assert!(matches!(*b, Secret::Bcrypt { cost: 4 }));
    // Never the key in a debug print.
    assert_eq!(format!("{f:?}"), "encrypt('CUTOVER_TEST_KEY')");
}
