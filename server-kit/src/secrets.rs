//! Secrets from the environment: `NAME`, or the file named by `NAME_FILE` (compose secrets are
//! files). Never from a flag, which `ps` would show.

use secrecy::SecretSlice;

/// Reads `name` or `name_FILE` through `env` (the process environment in production, a map in
/// tests). A file's trailing newline is not part of the secret.
pub fn secret_from_env(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretSlice<u8>>, String> {
    let file_setting = format!("{name}_FILE");
    match (env(name), env(&file_setting)) {
        (Some(_), Some(_)) => Err(format!("set {name} or {file_setting}, not both")),
        (Some(value), None) => Ok(Some(SecretSlice::from(value.into_bytes()))),
        (None, Some(path)) => std::fs::read(&path)
            .map(|bytes| Some(SecretSlice::from(bytes.trim_ascii_end().to_vec())))
            .map_err(|e| format!("cannot read {file_setting} {path}: {e}")),
        (None, None) => Ok(None),
    }
}
