//! Secrets: `encrypt('VAR')` and `decrypt('VAR')` (Fernet tokens, the format of
//! Python's `cryptography.fernet`, the key read from an environment variable) and
//! `hash_password('argon2id' | 'bcrypt' [, 'params'])` (PHC strings, `$2b$` hashes).
//!
//! Keys are read when the mapping is compiled, so a missing or malformed key is a
//! mapping error before anything is written, and the key itself never appears in
//! the mapping file. A column whose expression ends in `encrypt` or
//! `hash_password` is a secret column ([`secret_of`]): the transform keeps its
//! clear text beside the row (never written), so that the writer can keep the
//! value an earlier run stored when it still opens to the same clear text
//! ([`Secret::opens`]), and error rows never show it.

use super::{cerr, ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{Call, CompileError, Expr};
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::as_text;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "encrypt",
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example: "value.password | encrypt('CUTOVER_TEST_KEY')",
        check: fernet_key,
        eval: Eval::Strict(protect),
    },
    Function {
        name: "decrypt",
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example: "value.token | decrypt('CUTOVER_TEST_KEY')",
        check: fernet_key,
        eval: Eval::Strict(decrypt),
    },
    Function {
        name: "hash_password",
        min_args: 2,
        max_args: 3,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Text, Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example: "value.password | hash_password('argon2id')",
        check: hash_params,
        eval: Eval::Strict(protect),
    },
];

/// How a secret column's clear text is protected, with its key or parameters.
pub enum Secret {
    /// A Fernet key read from the environment variable `var`.
    Fernet {
        var: String,
        fernet: Box<fernet::Fernet>,
    },
    /// Argon2id (version 0x13) with these costs and a random 16-byte salt.
    Argon2 { params: argon2::Params },
    /// bcrypt (`$2b$`) with this cost.
    Bcrypt { cost: u32 },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str(&self.describe())
    }
}

/// The argon2id costs of `hash_password('argon2id')` without parameters (the
/// argon2 crate's defaults, OWASP's first choice: 19 MiB, 2 passes, 1 lane).
pub const ARGON2_DEFAULT: (u32, u32, u32) = (
    argon2::Params::DEFAULT_M_COST,
    argon2::Params::DEFAULT_T_COST,
    argon2::Params::DEFAULT_P_COST,
);

/// The bcrypt cost of `hash_password('bcrypt')` without parameters.
pub const BCRYPT_DEFAULT: u32 = bcrypt::DEFAULT_COST;

impl Secret {
    /// The call as written, for messages (never the key).
    pub fn describe(&self) -> String {
        match self {
            Secret::Fernet { var, .. } => format!("encrypt('{var}')"),
            Secret::Argon2 { params } => format!(
                "hash_password('argon2id', 'm={},t={},p={}')",
                params.m_cost(),
                params.t_cost(),
                params.p_cost()
            ),
            Secret::Bcrypt { cost } => format!("hash_password('bcrypt', 'cost={cost}')"),
        }
    }

    /// The stored form of a clear text: a fresh token or salted hash (every call
    /// gives another one). `Err` never holds the clear text.
    pub fn protect(&self, clear: &str) -> Result<String, String> {
        match self {
            Secret::Fernet { fernet, .. } => Ok(fernet.encrypt(clear.as_bytes())),
            Secret::Argon2 { params } => {
                let mut salt = [0u8; 16];
                getrandom::getrandom(&mut salt)
                    .map_err(|e| format!("no random salt for argon2id: {e}"))?;
                let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
                argon2_of(params)
                    .hash_password(clear.as_bytes(), &salt)
                    .map(|h| h.to_string())
                    .map_err(|e| format!("argon2id: {e}"))
            }
            Secret::Bcrypt { cost } => {
                if clear.len() > 72 {
                    return Err(format!(
                        "bcrypt takes at most 72 bytes of password and this value has {}: use hash_password('argon2id')",
                        clear.len()
                    ));
                }
                bcrypt::non_truncating_hash(clear, *cost).map_err(|e| format!("bcrypt: {e}"))
            }
        }
    }

    /// Whether a stored value is what [`Secret::protect`] would make of `clear`
    /// today: it decrypts with the key to `clear` (Fernet), or it verifies
    /// against `clear` and was made with the same algorithm and costs (a hash of
    /// other costs is made again).
    pub fn opens(&self, stored: &str, clear: &str) -> bool {
        match self {
            Secret::Fernet { fernet, .. } => fernet
                .decrypt(stored)
                .is_ok_and(|b| b.as_slice() == clear.as_bytes()),
            Secret::Argon2 { params } => {
                let Ok(hash) = PasswordHash::new(stored) else {
                    return false;
                };
                let same = hash.algorithm == argon2::Algorithm::Argon2id.ident()
                    && hash.version == Some(argon2::Version::V0x13 as u32)
                    && argon2::Params::try_from(&hash).is_ok_and(|p| {
                        (p.m_cost(), p.t_cost(), p.p_cost())
                            == (params.m_cost(), params.t_cost(), params.p_cost())
                    });
                same && argon2_of(params)
                    .verify_password(clear.as_bytes(), &hash)
                    .is_ok()
            }
            Secret::Bcrypt { cost } => {
                let same = stored.starts_with("$2b$")
                    && stored
                        .parse::<bcrypt::HashParts>()
                        .is_ok_and(|h| h.get_cost() == *cost);
                same && clear.len() <= 72 && bcrypt::verify(clear, stored).unwrap_or(false)
            }
        }
    }
}

fn argon2_of(params: &argon2::Params) -> argon2::Argon2<'static> {
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    )
}

/// When `e` is a call of `encrypt` or `hash_password`: the expression of its
/// clear text and how it is protected.
pub fn secret_of(e: &Expr) -> Option<(&Expr, &Arc<Secret>)> {
    let Expr::Call(c) = e else { return None };
    if !protects(c) {
        return None;
    }
    Some((c.args.first()?, c.state.get::<Arc<Secret>>()?))
}

/// Whether a call encrypts or hashes (its result hides its argument).
pub fn protects(c: &Call) -> bool {
    matches!(c.func.name, "encrypt" | "hash_password")
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const KEY_HINT: &str = "make a key with `python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` and export it";

/// `encrypt('VAR')` / `decrypt('VAR')`: the Fernet key in the environment variable.
fn fernet_key(c: &mut Check<'_>) -> Result<State, CompileError> {
    let what = format!(
        "the argument of {}() (the name of the environment variable that holds the key)",
        c.name
    );
    let var = c.const_text(1, &what)?;
    if fernet::Fernet::new(var.trim()).is_some() {
        // Not echoed: it is a key.
        return Err(CompileError {
            at: c.at,
            message: format!(
                "{}() takes the name of an environment variable that holds the key, not the key itself: keep keys out of mapping files",
                c.name
            ),
            hint: Some(format!(
                "export MY_KEY='...' and write {}('MY_KEY')",
                c.name
            )),
        });
    }
    if !is_var_name(&var) {
        return Err(cerr(
            c.at,
            format!(
                "{}(): '{var}' is not an environment variable name (letters, digits and _)",
                c.name
            ),
        ));
    }
    let fernet = match c.env.vars.get(&var) {
        None => {
            return Err(CompileError {
                at: c.at,
                message: format!(
                    "environment variable {var} is not set: {}() reads its Fernet key from it",
                    c.name
                ),
                hint: Some(KEY_HINT.into()),
            })
        }
        Some(key) => fernet::Fernet::new(key.trim()).ok_or_else(|| CompileError {
            at: c.at,
            message: format!(
                "environment variable {var} does not hold a Fernet key (32 bytes in url-safe base64: 44 characters)"
            ),
            hint: Some(KEY_HINT.into()),
        })?,
    };
    c.args.truncate(1);
    Ok(State::new(Arc::new(Secret::Fernet {
        var,
        fernet: Box::new(fernet),
    })))
}

/// `name=value` pairs of whole numbers: `m=19456,t=2,p=1`.
fn pairs(text: &str) -> Result<Vec<(String, u32)>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("'{}' is not name=number", p.trim()))?;
            let v = v
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("'{}' is not a whole number", v.trim()))?;
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

/// `hash_password('argon2id' | 'bcrypt' [, 'params'])`.
fn hash_params(c: &mut Check<'_>) -> Result<State, CompileError> {
    let alg = c.const_text(1, "the algorithm of hash_password ('argon2id' or 'bcrypt')")?;
    let params = match c.args.len() {
        3 => Some(c.const_text(2, "the parameters of hash_password")?),
        _ => None,
    };
    let at = c.at;
    let bad = |m: String, hint: &str| CompileError {
        at,
        message: format!("hash_password: {m}"),
        hint: Some(hint.into()),
    };
    let pairs = pairs(params.as_deref().unwrap_or(""))
        .map_err(|m| bad(m, "parameters look like 'm=19456,t=2,p=1' or 'cost=12'"))?;
    let secret = match alg.as_str() {
        "argon2id" => {
            let hint = "argon2id takes m (memory in KiB), t (passes), p (lanes): 'm=19456,t=2,p=1'";
            let (mut m, mut t, mut p) = ARGON2_DEFAULT;
            for (k, v) in pairs {
                match k.as_str() {
                    "m" => m = v,
                    "t" => t = v,
                    "p" => p = v,
                    other => {
                        return Err(bad(format!("unknown argon2id parameter '{other}'"), hint))
                    }
                }
            }
            let params = argon2::Params::new(m, t, p, None)
                .map_err(|e| bad(format!("argon2id parameters m={m},t={t},p={p}: {e}"), hint))?;
            Secret::Argon2 { params }
        }
        "bcrypt" => {
            let hint = "bcrypt takes a cost from 4 to 31: 'cost=12'";
            let mut cost = BCRYPT_DEFAULT;
            for (k, v) in pairs {
                match k.as_str() {
                    "cost" => cost = v,
                    other => return Err(bad(format!("unknown bcrypt parameter '{other}'"), hint)),
                }
            }
            if !(4..=31).contains(&cost) {
                return Err(bad(format!("bcrypt cost {cost} is not from 4 to 31"), hint));
            }
            Secret::Bcrypt { cost }
        }
        other => {
            return Err(bad(
                format!("unknown algorithm '{other}'"),
                "use hash_password('argon2id') or hash_password('bcrypt')",
            ))
        }
    };
    c.args.truncate(1);
    Ok(State::new(Arc::new(secret)))
}

fn protect<'a>(c: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let secret = c.state::<Arc<Secret>>()?;
    owned(Value::String(secret.protect(&as_text(&v))?))
}

fn decrypt<'a>(c: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let Secret::Fernet { var, fernet } = &**c.state::<Arc<Secret>>()? else {
        return Err("internal error: decrypt() without a key".into());
    };
    let clear = fernet
        .decrypt(as_text(&v).trim())
        .map_err(|_| format!("the value is not a Fernet token of the key in {var}"))?;
    String::from_utf8(clear)
        .map(|s| Cow::Owned(Value::String(s)))
        .map_err(|_| format!("the token decrypted with the key in {var} is not UTF-8 text"))
}
