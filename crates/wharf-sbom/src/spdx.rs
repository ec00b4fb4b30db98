//! SPDX 2.3 JSON, written with serde from ordered structs (no SPDX crate writes 2.3 JSON
//! with a stable field order, and the format is small).

use serde::Serialize;

use crate::cyclonedx::to_json;
use crate::license::License;
use crate::meta::{Meta, content_uuid};
use crate::package::Package;
use crate::{Sbom, unique_ids};

const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage<'a>>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage<'a> {
    name: &'a str,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    version_info: String,
    download_location: String,
    /// No file-level analysis: the SBOM lists packages, not their files.
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum<'a>>,
    license_concluded: &'static str,
    license_declared: &'a str,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum<'a> {
    algorithm: &'static str,
    checksum_value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

/// The SBOM as an SPDX 2.3 JSON document (pretty-printed, with a final newline).
///
/// - `licenseDeclared` is the manifest's license when it is valid SPDX, else `NOASSERTION`
///   (never an invalid expression). `licenseConcluded` is always `NOASSERTION`: a conclusion
///   needs someone to look at the code, and this tool only read manifests.
/// - `documentNamespace` is `Meta::namespace`, the document name and a UUID derived from the
///   rest of the document: unique per content, and the same for the same content.
pub fn spdx_json(sbom: &Sbom, meta: &Meta) -> Vec<u8> {
    let ids = unique_ids(sbom, spdx_id, "-");
    let subject = &sbom.subject;
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".to_string(),
        relationship_type: "DESCRIBES",
        related_spdx_element: ids[&subject.id()].clone(),
    }];
    for (from, tos) in &sbom.edges {
        for to in tos {
            relationships.push(Relationship {
                spdx_element_id: ids[from].clone(),
                relationship_type: "DEPENDS_ON",
                related_spdx_element: ids[to].clone(),
            });
        }
    }
    let name = format!("{}-{}", subject.name, subject.version);
    let mut document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: name.clone(),
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: meta.created(),
            creators: vec![format!("Tool: {}-{}", meta.tool_name, meta.tool_version)],
        },
        packages: std::iter::once(package(subject, "APPLICATION", &ids[&subject.id()]))
            .chain(
                sbom.packages
                    .iter()
                    .map(|p| package(p, "LIBRARY", &ids[&p.id()])),
            )
            .collect(),
        relationships,
    };
    let uuid = content_uuid(&to_json(&document));
    document.document_namespace = format!(
        "{}/{}-{uuid}",
        meta.namespace.trim_end_matches('/'),
        id_string(&name)
    );
    to_json(&document)
}

fn package<'a>(p: &'a Package, purpose: &'static str, spdx_id: &str) -> SpdxPackage<'a> {
    SpdxPackage {
        name: &p.name,
        spdx_id: spdx_id.to_string(),
        version_info: p.version.to_string(),
        download_location: p
            .download_location()
            .unwrap_or_else(|| NOASSERTION.to_string()),
        files_analyzed: false,
        checksums: p
            .checksum
            .as_deref()
            .map(|checksum_value| Checksum {
                algorithm: "SHA256",
                checksum_value,
            })
            .into_iter()
            .collect(),
        license_concluded: NOASSERTION,
        license_declared: match &p.license {
            License::Spdx(expression) => expression,
            License::Unrecognized(_) | License::File(_) | License::None => NOASSERTION,
        },
        copyright_text: NOASSERTION,
        description: p.description.as_deref(),
        external_refs: vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER",
            reference_type: "purl",
            reference_locator: p.purl(),
        }],
        primary_package_purpose: purpose,
    }
}

/// `SPDXRef-Package-<name>-<version>`, every character outside SPDX's idstring alphabet
/// (letters, digits, `.`, `-`) replaced by `-`.
fn spdx_id(package: &Package) -> String {
    format!(
        "SPDXRef-Package-{}",
        id_string(&format!("{}-{}", package.name, package.version))
    )
}

fn id_string(text: &str) -> String {
    text.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                true => c,
                false => '-',
            },
        )
        .collect()
}
