//! CycloneDX 1.5 JSON.
//!
//! Written with serde from the structs below rather than with the cyclonedx-bom crate: the
//! dozen fields used here are easy to get right against the schema (the e2e test validates
//! against it), struct fields serialize in declaration order and every list is sorted before
//! it gets here, so the bytes are a function of the input. A library model would have to be
//! checked for map-ordered fields (oci-spec's `HashMap` annotations changed digests, see
//! docs/ARCHITECTURE.md) and would pin wharf to its spec-version support.

use serde::Serialize;

use crate::license::License;
use crate::meta::{Meta, content_uuid};
use crate::package::{Package, Source};
use crate::{Sbom, unique_ids};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom<'a> {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata<'a>,
    components: Vec<Component<'a>>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    timestamp: String,
    tools: Tools<'a>,
    component: Component<'a>,
}

/// 1.5's form of `tools` (the plain array is deprecated since 1.5).
#[derive(Serialize)]
struct Tools<'a> {
    components: Vec<Tool<'a>>,
}

#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Component<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: &'a str,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice<'a>>,
    purl: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
}

#[derive(Serialize)]
struct Hash<'a> {
    alg: &'static str,
    content: &'a str,
}

/// The schema allows either one `expression` or a list of named licenses, never both.
#[derive(Serialize)]
#[serde(untagged)]
enum LicenseChoice<'a> {
    Expression { expression: &'a str },
    License { license: NamedLicense },
}

#[derive(Serialize)]
struct NamedLicense {
    name: String,
}

#[derive(Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// The SBOM as a CycloneDX 1.5 JSON document (pretty-printed, with a final newline).
///
/// `serialNumber` is a UUID derived from the rest of the document, so it changes exactly
/// when the content does.
pub fn cyclonedx_json(sbom: &Sbom, meta: &Meta) -> Vec<u8> {
    let refs = unique_ids(sbom, Package::purl, "#");
    let mut bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.5",
        serial_number: String::new(),
        version: 1,
        metadata: Metadata {
            timestamp: meta.created(),
            tools: Tools {
                components: vec![Tool {
                    kind: "application",
                    name: &meta.tool_name,
                    version: &meta.tool_version,
                }],
            },
            component: component(&sbom.subject, "application", &refs[&sbom.subject.id()]),
        },
        components: sbom
            .packages
            .iter()
            .map(|p| component(p, "library", &refs[&p.id()]))
            .collect(),
        dependencies: sbom
            .all_packages()
            .map(|p| Dependency {
                reference: refs[&p.id()].clone(),
                depends_on: sbom
                    .edges
                    .get(&p.id())
                    .into_iter()
                    .flatten()
                    .map(|to| refs[to].clone())
                    .collect(),
            })
            .collect(),
    };
    let unnumbered = to_json(&bom);
    bom.serial_number = format!("urn:uuid:{}", content_uuid(&unnumbered));
    to_json(&bom)
}

fn component<'a>(package: &'a Package, kind: &'static str, bom_ref: &str) -> Component<'a> {
    Component {
        kind,
        bom_ref: bom_ref.to_string(),
        name: &package.name,
        version: package.version.to_string(),
        description: package.description.as_deref(),
        hashes: package
            .checksum
            .as_deref()
            .map(|content| Hash {
                alg: "SHA-256",
                content,
            })
            .into_iter()
            .collect(),
        licenses: licenses(&package.license),
        purl: package.purl(),
        external_references: external_references(package),
    }
}

fn licenses(license: &License) -> Vec<LicenseChoice<'_>> {
    let name = |name: String| {
        vec![LicenseChoice::License {
            license: NamedLicense { name },
        }]
    };
    match license {
        License::Spdx(expression) => vec![LicenseChoice::Expression { expression }],
        License::Unrecognized(text) => name(text.clone()),
        License::File(file) => name(format!("see the file {file} in the package")),
        License::None => Vec::new(),
    }
}

fn external_references(package: &Package) -> Vec<ExternalReference> {
    match &package.source {
        Source::Git { url, .. } => vec![ExternalReference {
            kind: "vcs",
            url: url.clone(),
        }],
        Source::CratesIo => package
            .download_location()
            .map(|url| ExternalReference {
                kind: "distribution",
                url,
            })
            .into_iter()
            .collect(),
        Source::Registry { .. } | Source::Path | Source::Other { .. } => Vec::new(),
    }
}

pub(crate) fn to_json(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("plain structs always serialize");
    bytes.push(b'\n');
    bytes
}
