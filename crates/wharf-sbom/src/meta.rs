//! What a document says about itself: when, by which tool, under which namespace.

use crate::Error;

/// Document-level facts the writers need and the SBOM does not hold.
///
/// The time is passed in (`SOURCE_DATE_EPOCH`, or the commit time), never read from the
/// clock, so the same build writes the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    created: i64,
    /// The tool named in CycloneDX `metadata.tools` and SPDX `creators`.
    pub tool_name: String,
    pub tool_version: String,
    /// The start of SPDX's `documentNamespace` (a URI with no trailing slash); the document
    /// name and a hash of the content are appended, which makes it unique per content.
    pub namespace: String,
}

/// Latest time both formats can write with a four-digit year: 9999-12-31T23:59:59Z.
const MAX_SECONDS: i64 = 253_402_300_799;

impl Meta {
    /// Facts for a document created at `seconds` since 1970 (UTC), written by this crate.
    pub fn new(seconds: i64) -> Result<Meta, Error> {
        if !(0..=MAX_SECONDS).contains(&seconds) {
            return Err(Error::Timestamp { seconds });
        }
        Ok(Meta {
            created: seconds,
            tool_name: env!("CARGO_PKG_NAME").to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            namespace: "https://spdx.org/spdxdocs".to_string(),
        })
    }

    /// Seconds since 1970.
    pub fn seconds(&self) -> i64 {
        self.created
    }

    /// The creation time as both specs want it: `YYYY-MM-DDThh:mm:ssZ`.
    pub fn created(&self) -> String {
        jiff::Timestamp::from_second(self.created)
            .expect("checked in Meta::new")
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }
}

/// A UUID made from a sha256 of `content` (RFC 9562 version 8, the layout its appendix B.2
/// uses for name-based SHA-256 UUIDs): the same content always gets the same UUID, unlike
/// the random version 4 the specs' examples use.
pub(crate) fn content_uuid(content: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, content);
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
