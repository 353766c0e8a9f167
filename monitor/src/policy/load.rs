//! Loading a compiled policy: from a file (`--policy`) or an embedded
//! profile (`--profile`). This is what `run`, `replay`, `validate` and
//! `probe` call.

use std::{fs::File, io::Read as _, path::Path};

use super::{error::PolicyError, model::Policy, profiles};

/// A policy file is a few hundred rules; the bound keeps a wrong path (a
/// capture file, a device) from being read whole.
const MAX_POLICY_BYTES: u64 = 16 * 1024 * 1024;

/// Where a policy comes from, as given on the command line.
#[derive(Debug, Clone, Copy)]
pub enum PolicySource<'a> {
    File(&'a Path),
    Profile(&'a str),
}

pub fn load(source: PolicySource) -> Result<Policy, PolicyError> {
    match source {
        PolicySource::File(path) => from_file(path),
        PolicySource::Profile(name) => profiles::load(name),
    }
}

pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
    let read_err = |source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(read_err)?
        .take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let origin = path.display().to_string();
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(PolicyError::Parse {
            origin,
            line: 0,
            message: format!("larger than {MAX_POLICY_BYTES} bytes: not a policy file"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| PolicyError::Parse {
        line: super::lines::line_of(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        ),
        origin: origin.clone(),
        message: "not UTF-8 text".into(),
    })?;
    Policy::from_toml(&text, &origin)
}
