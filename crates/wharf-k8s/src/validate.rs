//! Input checks, done once before anything is rendered: what passes here is what the objects
//! are built from ([`ValidApp`], [`ValidStage`]), with numbers already in Kubernetes' `i32`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::{App, Autoscale, Pin, Resources, StageManifest};

/// Why [`crate::render`] refused its input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "app name {0:?} is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter and ending with a letter or digit, at most 63 characters)"
    )]
    AppName(String),
    #[error("app {app}: {field} {value:?} {problem}")]
    App {
        app: String,
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("no stages (hint: at least one stage is needed to render an overlay)")]
    NoStages,
    #[error(
        "stage name {0:?} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
    )]
    StageName(String),
    #[error("stage {0} is listed twice")]
    DuplicateStage(String),
    #[error("stage {stage}: image {image:?} {problem}")]
    Image {
        stage: String,
        image: String,
        problem: &'static str,
    },
    #[error(
        "stage {stage}: digest {digest:?} is not \"sha256:\" followed by 64 lowercase hex digits"
    )]
    Digest { stage: String, digest: String },
    #[error(
        "stage {stage}: tag {tag:?} is not a valid image tag (letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 128 characters)"
    )]
    Tag { stage: String, tag: String },
    #[error("stage {stage}: replicas is {replicas} (hint: at least 1, at most {max})", max = i32::MAX)]
    Replicas { stage: String, replicas: u32 },
    #[error("stage {stage}: min_available {min_available} is not below {what} {bound}: the PodDisruptionBudget would block every node drain (hint: set min_available to at most {hint}, or raise {what})", hint = bound.saturating_sub(1))]
    MinAvailable {
        stage: String,
        min_available: u32,
        what: &'static str,
        bound: u32,
    },
    #[error("stage {stage}: {field} {value:?} is not a Kubernetes quantity: {problem}")]
    Quantity {
        stage: String,
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("stage {stage}: {resource} request {request} is above its limit {limit}")]
    RequestAboveLimit {
        stage: String,
        resource: &'static str,
        request: String,
        limit: String,
    },
    #[error("stage {stage}: autoscale {problem}")]
    Autoscale { stage: String, problem: String },
    #[error("serializing {path}")]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

pub(crate) struct ValidApp {
    pub name: String,
    pub port: i32,
    pub health_path: String,
    pub user: Option<(i64, i64)>,
    pub env: Vec<(String, String)>,
}

pub(crate) struct ValidStage {
    pub name: String,
    pub image: String,
    pub pin: Pin,
    pub replicas: i32,
    pub requests: Resources,
    pub limits: Resources,
    pub min_available: i32,
    pub autoscale_min: i32,
    pub autoscale_max: i32,
    pub cpu_percent: i32,
}

pub(crate) fn app(app: &App) -> Result<ValidApp, Error> {
    if !is_label(&app.name, true) {
        return Err(Error::AppName(app.name.clone()));
    }
    let invalid = |field, value: &str, problem| Error::App {
        app: app.name.clone(),
        field,
        value: value.to_owned(),
        problem,
    };
    if app.port == 0 {
        return Err(invalid("port", "0", "is not a port (hint: 1 to 65535)"));
    }
    if !app.health_path.starts_with('/') || app.health_path.chars().any(char::is_whitespace) {
        return Err(invalid(
            "health_path",
            &app.health_path,
            "is not an absolute URL path (hint: \"/health\")",
        ));
    }
    if let Some((uid, _)) = app.user
        && uid == 0
    {
        return Err(invalid(
            "user",
            "0",
            "is root, and the pod runs with runAsNonRoot: true (hint: build the image with a non-root user, e.g. 65532)",
        ));
    }
    let mut names = BTreeSet::new();
    for (name, _) in &app.env {
        // Kubernetes 1.33's rule (C_IDENTIFIER with '-' and '.'); 1.34 relaxed it, and the
        // manifests target 1.33.
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "-._".contains(c))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !valid {
            return Err(invalid(
                "environment variable",
                name,
                "is not a valid name (letters, digits, '-', '.' and '_', not starting with a digit)",
            ));
        }
        if !names.insert(name.as_str()) {
            return Err(invalid("environment variable", name, "is set twice"));
        }
    }
    Ok(ValidApp {
        name: app.name.clone(),
        port: i32::from(app.port),
        health_path: app.health_path.clone(),
        user: app.user.map(|(uid, gid)| (i64::from(uid), i64::from(gid))),
        env: app.env.clone(),
    })
}

pub(crate) fn stages(stages: &[StageManifest]) -> Result<Vec<ValidStage>, Error> {
    if stages.is_empty() {
        return Err(Error::NoStages);
    }
    let mut seen = BTreeSet::new();
    let mut valid = Vec::with_capacity(stages.len());
    for stage in stages {
        if !seen.insert(stage.name.as_str()) {
            return Err(Error::DuplicateStage(stage.name.clone()));
        }
        valid.push(self::stage(stage)?);
    }
    Ok(valid)
}

fn stage(stage: &StageManifest) -> Result<ValidStage, Error> {
    let name = &stage.name;
    if !is_label(name, false) {
        return Err(Error::StageName(name.clone()));
    }
    image(name, &stage.image)?;
    match &stage.pin {
        Pin::Digest(digest) if !is_digest(digest) => {
            return Err(Error::Digest {
                stage: name.clone(),
                digest: digest.clone(),
            });
        }
        Pin::Tag(tag) if !is_tag(tag) => {
            return Err(Error::Tag {
                stage: name.clone(),
                tag: tag.clone(),
            });
        }
        Pin::Digest(_) | Pin::Tag(_) => {}
    }
    let replicas = match i32::try_from(stage.replicas) {
        Ok(replicas) if replicas >= 1 => replicas,
        _ => {
            return Err(Error::Replicas {
                stage: name.clone(),
                replicas: stage.replicas,
            });
        }
    };
    resources(name, &stage.requests, &stage.limits)?;

    let autoscale = stage.autoscale.unwrap_or(Autoscale {
        min: stage.replicas,
        max: stage.replicas.saturating_mul(2),
        cpu_percent: 80,
    });
    let autoscale_err = |problem: String| Error::Autoscale {
        stage: name.clone(),
        problem,
    };
    if autoscale.min == 0 {
        return Err(autoscale_err("min is 0 (hint: at least 1)".into()));
    }
    if autoscale.max < autoscale.min {
        return Err(autoscale_err(format!(
            "max {} is below min {}",
            autoscale.max, autoscale.min
        )));
    }
    if !(autoscale.min..=autoscale.max).contains(&stage.replicas) {
        // Argo CD and Flux reset the Deployment to `replicas` on every sync; outside the
        // autoscaler's bounds the two would fight.
        return Err(autoscale_err(format!(
            "bounds {}..={} do not include replicas {} (hint: the autoscaler and every GitOps sync would keep resizing the Deployment)",
            autoscale.min, autoscale.max, stage.replicas
        )));
    }
    if autoscale.cpu_percent == 0 {
        return Err(autoscale_err(
            "cpu_percent is 0 (hint: a utilization target such as 80)".into(),
        ));
    }
    let too_big = || autoscale_err(format!("values above {} are not allowed", i32::MAX));
    let autoscale_min = i32::try_from(autoscale.min).map_err(|_| too_big())?;
    let autoscale_max = i32::try_from(autoscale.max).map_err(|_| too_big())?;
    let cpu_percent = i32::try_from(autoscale.cpu_percent).map_err(|_| too_big())?;

    let min_available = stage.min_available.unwrap_or(stage.replicas - 1);
    let below = |what, bound| {
        if min_available < bound {
            Ok(())
        } else {
            Err(Error::MinAvailable {
                stage: name.clone(),
                min_available,
                what,
                bound,
            })
        }
    };
    below("replicas", stage.replicas)?;
    // The autoscaler may scale down to its minimum; a budget at or above it blocks drains then.
    below("autoscale min", autoscale.min)?;

    Ok(ValidStage {
        name: name.clone(),
        image: stage.image.clone(),
        pin: stage.pin.clone(),
        replicas,
        requests: stage.requests.clone(),
        limits: stage.limits.clone(),
        // Below replicas, which fits in an i32.
        min_available: i32::try_from(min_available).unwrap_or(i32::MAX),
        autoscale_min,
        autoscale_max,
        cpu_percent,
    })
}

fn image(stage: &str, image: &str) -> Result<(), Error> {
    let problem = if image.is_empty() {
        Some("is empty")
    } else if image.contains('@') {
        Some("has a digest (hint: the digest goes in the stage's pin)")
    } else if image
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
    {
        Some("has a tag (hint: the tag goes in the stage's pin)")
    } else if image
        .chars()
        .any(|c| c.is_whitespace() || c.is_ascii_uppercase() || c.is_control())
    {
        Some("is not a lowercase image repository")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::Image {
            stage: stage.to_owned(),
            image: image.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

fn resources(stage: &str, requests: &Resources, limits: &Resources) -> Result<(), Error> {
    let parse = |field, value: &str, resource| {
        quantity(value, resource).map_err(|problem| Error::Quantity {
            stage: stage.to_owned(),
            field,
            value: value.to_owned(),
            problem,
        })
    };
    let pairs = [
        (
            "cpu",
            "requests.cpu",
            &requests.cpu,
            "limits.cpu",
            &limits.cpu,
        ),
        (
            "memory",
            "requests.memory",
            &requests.memory,
            "limits.memory",
            &limits.memory,
        ),
    ];
    for (resource, request_field, request, limit_field, limit) in pairs {
        let request_value = parse(request_field, request, resource)?;
        let limit_value = parse(limit_field, limit, resource)?;
        if request_value > limit_value {
            return Err(Error::RequestAboveLimit {
                stage: stage.to_owned(),
                resource,
                request: request.clone(),
                limit: limit.clone(),
            });
        }
    }
    Ok(())
}

/// The value of a Kubernetes quantity (`<number><suffix>`, apimachinery's grammar), in base
/// units, for comparing a request with its limit. Zero and negative amounts are refused: a
/// zero CPU request leaves the autoscaler nothing to measure utilization against.
fn quantity(text: &str, resource: &str) -> Result<f64, &'static str> {
    if text.is_empty() {
        return Err("it is empty");
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.starts_with('-') {
        return Err("it is negative");
    }
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || digits.ends_with('.')
    {
        return Err("expected a number followed by an optional suffix (e.g. 100m, 0.5, 128Mi, 1G)");
    }
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" if resource == "memory" => {
            return Err("'m' means thousandths of a byte (hint: Mi or M)");
        }
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => match suffix
            .strip_prefix(['e', 'E'])
            .and_then(|exponent| exponent.parse::<i32>().ok())
        {
            Some(exponent) => 10f64.powi(exponent),
            None => {
                return Err(
                    "unknown suffix (expected n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent)",
                );
            }
        },
    };
    let value = digits.parse::<f64>().map_err(|_| "not a number")? * scale;
    if value <= 0.0 {
        return Err("it is zero");
    }
    Ok(value)
}

/// A DNS-1123 label, or with `letter_first` a DNS-1035 label (what a Service name must be).
fn is_label(name: &str, letter_first: bool) -> bool {
    let bytes = name.as_bytes();
    let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && bytes.iter().all(inner)
                && alnum(last)
                && if letter_first {
                    first.is_ascii_lowercase()
                } else {
                    alnum(first)
                }
        }
        _ => false,
    }
}

fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for (text, value) in [
            ("100m", 0.1),
            ("0.5", 0.5),
            ("2", 2.0),
            ("128Mi", 134_217_728.0),
            ("1G", 1e9),
            ("1e3", 1000.0),
            (".5", 0.5),
            ("+1", 1.0),
        ] {
            assert_eq!(quantity(text, "cpu"), Ok(value), "{text}");
        }
        for text in ["", "m", "-1", "0", "1.", "1x", "abc", "1 Mi", "1.2.3", "Mi"] {
            assert!(quantity(text, "cpu").is_err(), "{text} was accepted");
        }
        assert!(quantity("128m", "memory").is_err());
    }

    #[test]
    fn labels() {
        assert!(is_label("production", false));
        assert!(is_label("1st", false));
        assert!(!is_label("1st", true));
        for bad in ["", "Prod", "-dev", "dev-", "dev_1", "a.b", &"a".repeat(64)] {
            assert!(!is_label(bad, false), "{bad} was accepted");
        }
        assert!(is_label(&"a".repeat(63), false));
    }

    #[test]
    fn digests_and_tags() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(is_digest(&format!("sha256:{hex}")));
        assert!(!is_digest(&format!("sha256:{}", hex.to_uppercase())));
        assert!(!is_digest(&format!("sha512:{hex}")));
        assert!(!is_digest(&format!("sha256:{}", &hex[1..])));
        assert!(!is_digest(&hex));
        assert!(is_tag("v1.2.3"));
        assert!(is_tag("_latest"));
        assert!(!is_tag(".hidden"));
        assert!(!is_tag("a/b"));
        assert!(!is_tag(""));
    }
}
