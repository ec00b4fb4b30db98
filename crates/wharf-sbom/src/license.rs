//! A package's declared license, as valid SPDX or as something the writers must not pass off
//! as SPDX.

use serde::Serialize;

/// What a package's manifest says about its license.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum License {
    /// A valid SPDX license expression in canonical form: cargo's old `MIT/Apache-2.0`
    /// becomes `MIT OR Apache-2.0`, `GPL-2.0` becomes `GPL-2.0-only`.
    Spdx(String),
    /// A `license` field that is not a valid SPDX expression (unknown identifier, bad syntax),
    /// verbatim. SPDX gets `NOASSERTION`, CycloneDX gets it as a license `name`.
    Unrecognized(String),
    /// Only `license-file`: the file's path inside the package. Its text would be needed for
    /// an SPDX `LicenseRef-`, so SPDX gets `NOASSERTION`.
    File(String),
    /// Neither field.
    None,
}

impl License {
    /// From cargo's `license` and `license-file` fields (`license` wins when both are set,
    /// as on crates.io).
    pub fn from_cargo(license: Option<&str>, license_file: Option<&str>) -> License {
        match (license.map(str::trim), license_file) {
            (Some(text), _) if !text.is_empty() => match canonical(text) {
                Some(expression) => License::Spdx(expression),
                None => License::Unrecognized(text.to_string()),
            },
            (_, Some(file)) => License::File(file.to_string()),
            _ => License::None,
        }
    }

    /// The SPDX expression, if there is a valid one.
    pub fn spdx(&self) -> Option<&str> {
        match self {
            License::Spdx(expression) => Some(expression),
            _ => None,
        }
    }
}

/// The canonical SPDX form of `text`, if it has one that the strict parser accepts (so every
/// identifier is on the SPDX license list and not deprecated).
///
/// `LicenseRef-`/`AdditionRef-` identifiers are refused too: an SPDX document that uses one
/// must carry the license text, which a manifest's `license` field does not have.
fn canonical(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if ["licenseref-", "additionref-", "documentref-"]
        .iter()
        .any(|r| lower.contains(r))
    {
        return None;
    }
    let expression = match spdx::Expression::canonicalize(text) {
        Ok(Some(canonical)) => canonical,
        Ok(None) => text.to_string(),
        Err(_) => return None,
    };
    spdx::Expression::parse_mode(&expression, spdx::ParseMode::STRICT)
        .ok()
        .map(|_| expression)
}
