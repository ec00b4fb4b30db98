//! Promotion in two phases: [`candidate`] (which digest, from where, what evidence to
//! gather) and [`plan`] (the gates over the gathered evidence, the target and its tags).

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use wharf_ledger::{Draft, Entry, Kind};
use wharf_oci::Digest;
use wharf_tag::Tag;

use crate::config::{BenchmarkGate, ProvenanceGate, SignatureGate, SmokeGate, Stage};
use crate::evidence::{Evidence, GateResult, PromotionEvidence, VerificationEvidence, to_value};
use crate::state::{approvals_for, state_of, verification_for, verifications};
use crate::{PlanError, approvals, benchmark, find_stage, gates};

/// Where the digest comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The `from` stage; `None` for a first stage (the digest comes from CI).
    pub stage: Option<String>,
    /// Where the digest is read: the `from` stage's location, or for a first stage the
    /// location its verification entry records.
    pub location: String,
}

/// Where the digest goes and which tags point at it afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub location: String,
    pub tags: Vec<Tag>,
}

/// What the caller must gather into [`Evidence`] for this stage's gates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Needs {
    /// Read the attached scan report and re-check it against the policy
    /// ([`Evidence::scan`]).
    pub scan: bool,
    /// Sum the image's manifest, config and layer sizes ([`Evidence::image_bytes`]).
    pub size: bool,
    /// Read these two files ([`Evidence::benchmark`]).
    pub benchmark: Option<BenchmarkGate>,
    /// Run these HTTP checks ([`Evidence::smoke`]).
    pub smoke: Option<SmokeGate>,
    /// Find the change's authors from the image's revision ([`Evidence::authors`]).
    pub authors: bool,
    /// Verify the signatures of these approval entries with `ssh-keygen -Y verify`
    /// ([`Evidence::verified_approvals`]); empty unless the stage requires signed approvals.
    pub approvals_signed: Vec<u64>,
    /// Read the image's version label ([`Evidence::version`], for semver tags).
    pub version: bool,
    /// Check the image's signatures with these keys ([`Evidence::signature`]).
    pub signature: Option<SignatureGate>,
    /// Check the image's provenance with these keys ([`Evidence::provenance`]).
    pub provenance: Option<ProvenanceGate>,
}

/// The digest a promotion into a stage would move, and where from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub stage: String,
    pub digest: Digest,
    pub source: Source,
    pub needs: Needs,
}

/// Everything a promotion would do, and whether its gates allow it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromotionPlan {
    pub stage: String,
    pub digest: Digest,
    pub source: Source,
    pub target: Target,
    /// The stage's digest now (what a rollback would go back to).
    pub previous: Option<Digest>,
    /// Every gate, in order: source, tests, scan, size, soak, benchmark, smoke, signature,
    /// provenance, approvals, version (with semver tags), then the extra gates.
    pub gates: Vec<GateResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// Chooses the digest to promote into `stage_name`.
///
/// For a stage with `from`: the `from` stage's current digest; a `digest` that is not
/// current there is an error naming the current one. For a first stage: the latest
/// verified digest, or `digest` if the ledger records a verification for it; the source
/// location is the one that verification records.
pub fn candidate(
    stages: &[Stage],
    stage_name: &str,
    entries: &[Entry],
    digest: Option<Digest>,
) -> Result<Candidate, PlanError> {
    let stage = find_stage(stages, stage_name)?;
    let (digest, source) = match &stage.from {
        Some(from) => {
            let from_stage = find_stage(stages, from)?;
            let state = state_of(entries, from);
            let current = state.current().ok_or_else(|| PlanError::SourceEmpty {
                stage: stage.name.clone(),
                from: from.clone(),
            })?;
            if let Some(d) = digest.filter(|d| d != &current.digest) {
                return Err(PlanError::NotCurrent {
                    from: from.clone(),
                    digest: d,
                    current: current.digest.clone(),
                });
            }
            let source = Source {
                stage: Some(from.clone()),
                location: from_stage.location.clone(),
            };
            (current.digest.clone(), source)
        }
        None => first_stage_source(stage, entries, digest)?,
    };
    let needs = needs(stage, stage_name, &digest, entries);
    Ok(Candidate {
        stage: stage.name.clone(),
        digest,
        source,
        needs,
    })
}

fn first_stage_source(
    stage: &Stage,
    entries: &[Entry],
    digest: Option<Digest>,
) -> Result<(Digest, Source), PlanError> {
    let latest = verifications(entries)
        .next_back()
        .ok_or_else(|| PlanError::NothingVerified {
            stage: stage.name.clone(),
        })?;
    let entry = match digest {
        None => latest,
        Some(d) => verification_for(entries, &d).ok_or_else(|| PlanError::NotVerified {
            stage: stage.name.clone(),
            digest: d,
            latest: latest.digest.clone(),
        })?,
    };
    let location =
        VerificationEvidence::of(entry)
            .location
            .ok_or_else(|| PlanError::NoLocation {
                seq: entry.seq,
                digest: entry.digest.clone(),
            })?;
    let source = Source {
        stage: None,
        location,
    };
    Ok((entry.digest.clone(), source))
}

fn needs(stage: &Stage, name: &str, digest: &Digest, entries: &[Entry]) -> Needs {
    let gates = &stage.gates;
    let signed = gates.approvals.as_ref().is_some_and(|a| a.signed);
    let approvals_signed = if signed {
        approvals_for(entries, name)
            .filter(|e| &e.digest == digest && e.signature.is_some())
            .map(|e| e.seq)
            .collect()
    } else {
        Vec::new()
    };
    Needs {
        scan: gates.scan,
        size: gates.max_image_bytes.is_some(),
        benchmark: gates.benchmark.clone(),
        smoke: gates.smoke.clone(),
        authors: gates.approvals.is_some(),
        approvals_signed,
        version: stage.semver_tags,
        signature: gates.signature.clone(),
        provenance: gates.provenance.clone(),
    }
}

/// The promotion of `candidate.digest` into its stage, with every configured gate judged on
/// `evidence` and the ledger, at `now` (soak time, the date tag).
///
/// Tags: the stage's `tags` (default: its name); with `semver_tags`, the version tags
/// wharf-tag gives a release of the image's version label (`1.2.3`, `1.2`, `1`); with
/// `date_tag`, `<stage>-YYYY-MM-DD` of `now` in UTC.
pub fn plan(
    stages: &[Stage],
    candidate: &Candidate,
    entries: &[Entry],
    evidence: &Evidence,
    now: Timestamp,
) -> Result<PromotionPlan, PlanError> {
    let stage = find_stage(stages, &candidate.stage)?;
    let digest = &candidate.digest;
    let rules = &stage.gates;
    let from = stage.from.as_deref();
    let from_state = from.map(|f| state_of(entries, f));
    let from_current = from_state.as_ref().and_then(|s| s.current());

    let verification = verification_for(entries, digest);
    let mut gates = vec![gates::source(
        digest,
        from,
        from_current.map(|c| (&c.digest, c.seq)),
        verification.map(|e| e.seq),
    )];
    if rules.tests {
        gates.push(gates::tests(entries, digest));
    }
    if rules.scan {
        gates.push(gates::scan(evidence.scan.as_ref(), digest));
    }
    if let Some(budget) = rules.max_image_bytes {
        gates.push(gates::size(evidence.image_bytes, budget));
    }
    if let Some(needed) = rules.soak_minutes {
        let entered = match from {
            Some(_) => from_current
                .filter(|c| &c.digest == digest)
                .map(|c| c.since),
            None => verification.map(|e| e.when),
        };
        gates.push(gates::soak(digest, from, entered, needed, now));
    }
    if let Some(bench) = &rules.benchmark {
        gates.push(benchmark::gate(
            evidence.benchmark.as_ref(),
            bench.max_regression_percent,
        ));
    }
    if let Some(smoke) = &rules.smoke {
        gates.push(gates::smoke(smoke, &evidence.smoke));
    }
    if rules.signature.is_some() {
        gates.push(gates::signature(evidence.signature.as_ref(), digest));
    }
    if let Some(rule) = &rules.provenance {
        gates.push(gates::provenance(
            rule,
            evidence.provenance.as_ref(),
            digest,
        ));
    }
    if let Some(approval) = &rules.approvals {
        gates.push(approvals::gate(
            approval,
            &stage.name,
            digest,
            entries,
            evidence,
        ));
    }
    let mut tags = stage_tags(stage);
    if stage.semver_tags {
        let (version_tags, problem) = match version_tags(evidence.version.as_deref()) {
            Ok(t) => (t, None),
            Err(p) => (Vec::new(), Some(p)),
        };
        gates.push(gates::version(evidence.version.as_deref(), problem));
        extend_unique(&mut tags, version_tags);
    }
    if stage.date_tag {
        extend_unique(&mut tags, date_tag(&stage.name, now).into_iter().collect());
    }
    gates.extend(evidence.extra.iter().cloned());

    Ok(PromotionPlan {
        stage: stage.name.clone(),
        digest: digest.clone(),
        source: candidate.source.clone(),
        target: Target {
            location: stage.location.clone(),
            tags,
        },
        previous: state_of(entries, &stage.name)
            .current()
            .map(|c| c.digest.clone()),
        gates,
        version: evidence.version.clone(),
        revision: evidence.revision.clone(),
    })
}

/// The tags a stage always moves: `tags`, or its name. Invalid ones are left out
/// ([`validate`](crate::validate) reports them).
pub(crate) fn stage_tags(stage: &Stage) -> Vec<Tag> {
    if stage.tags.is_empty() {
        return Tag::parse(&stage.name).into_iter().collect();
    }
    let mut out = Vec::new();
    extend_unique(
        &mut out,
        stage
            .tags
            .iter()
            .filter_map(|t| Tag::parse(t).ok())
            .collect(),
    );
    out
}

fn extend_unique(tags: &mut Vec<Tag>, more: Vec<Tag>) {
    for tag in more {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
}

/// `<stage>-YYYY-MM-DD` for the UTC day of `now`.
pub(crate) fn date_tag(stage: &str, now: Timestamp) -> Option<Tag> {
    let day = now.to_zoned(TimeZone::UTC).date();
    Tag::parse(&format!("{stage}-{day}")).ok()
}

/// The version tags of a release of `version` by wharf-tag's rules (`1.2.3`, `1.2`, `1`;
/// see `docs/TAGS.md`), or why there are none.
fn version_tags(version: Option<&str>) -> Result<Vec<Tag>, String> {
    let label = version.ok_or(
        "semver_tags is on but the image has no org.opencontainers.image.version label (label the image at build time, or turn semver_tags off)",
    )?;
    let parsed = semver::Version::parse(label.strip_prefix('v').unwrap_or(label)).map_err(|e| {
        format!("the image's version label {label:?} is not a semantic version: {e} (label the image with a version like 1.2.3)")
    })?;
    // Only the version tags are kept: the commit and branch are not needed for them, so a
    // placeholder commit stands in for the one wharf-tag requires.
    let facts = wharf_tag::Facts {
        version: parsed,
        release: true,
        sha: "0".repeat(40),
        branch: None,
        default_branch: "main".to_owned(),
        date: jiff::civil::date(2000, 1, 1),
        stage: None,
        build_number: None,
    };
    let tags = wharf_tag::tags(&facts).map_err(|e| format!("no version tags: {e}"))?;
    Ok(tags
        .into_iter()
        .filter(|t| !t.as_str().starts_with("sha-"))
        .collect())
}

impl PromotionPlan {
    /// True when every gate passed.
    pub fn allowed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }

    /// The gates that failed.
    pub fn failed(&self) -> impl Iterator<Item = &GateResult> {
        self.gates.iter().filter(|g| !g.passed)
    }

    /// The typed evidence the promotion entry carries.
    pub fn evidence(&self) -> PromotionEvidence {
        PromotionEvidence {
            source: self.source.clone(),
            target: self.target.clone(),
            previous: self.previous.clone(),
            gates: self.gates.clone(),
            version: self.version.clone(),
            revision: self.revision.clone(),
        }
    }

    /// The ledger entry recording this promotion (append it before moving the tags).
    pub fn draft(&self, who: &str, now: Timestamp) -> Draft {
        Draft {
            kind: Kind::Promotion,
            who: who.to_owned(),
            when: now,
            digest: self.digest.clone(),
            from: self.source.stage.clone(),
            to: Some(self.stage.clone()),
            evidence: to_value(&self.evidence()),
            signature: None,
        }
    }
}

impl fmt::Display for PromotionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed() { "allowed" } else { "blocked" };
        writeln!(f, "promote {} into {}: {verdict}", self.digest, self.stage)?;
        let from = self.source.stage.as_deref().unwrap_or("CI");
        writeln!(f, "  from    {from} ({})", self.source.location)?;
        let tags: Vec<&str> = self.target.tags.iter().map(Tag::as_str).collect();
        writeln!(
            f,
            "  to      {} tags {}",
            self.target.location,
            tags.join(", ")
        )?;
        if let Some(previous) = &self.previous {
            writeln!(f, "  replaces {previous}")?;
        }
        for gate in &self.gates {
            let mark = if gate.passed { "pass" } else { "FAIL" };
            writeln!(f, "  [{mark}] {}", gate.message)?;
        }
        Ok(())
    }
}
