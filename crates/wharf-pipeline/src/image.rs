//! The image step: plan what to build (binary, tags, labels, base, layout), then build it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use wharf_build::{Base, BuildSpec, LayerSpec, label};
use wharf_oci::{Descriptor, Digest, Layout, Platform, image};
use wharf_source::{GitFacts, Workspace};

use crate::config::{ImageConfig, parse_base, parse_user};
use crate::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "no [image] section in {0} (add one naming the package to build, e.g. [image] package = \"my-service\")"
    )]
    NotConfigured(PathBuf),
    #[error("{0}")]
    Config(String),
    /// A config key names something that is not there (a package, a binary, a base).
    #[error("{path}: {key}: {cause}")]
    Key {
        path: PathBuf,
        key: &'static str,
        cause: Box<ImageError>,
    },
    #[error(transparent)]
    Source(#[from] wharf_source::Error),
    #[error(transparent)]
    Tag(#[from] wharf_tag::TagError),
    #[error(transparent)]
    Build(#[from] wharf_build::Error),
    #[error(transparent)]
    Oci(#[from] wharf_oci::Error),
    #[error(
        "base image {location} is {actual}, but the config pins {expected} (update the pin in pipelines/wharf.toml if the change is intended)"
    )]
    BasePin {
        location: String,
        expected: Digest,
        actual: Digest,
    },
}

/// Everything the image step will do, decided before anything is built.
#[derive(Clone, Debug, Serialize)]
pub struct ImagePlan {
    pub package: String,
    pub binary: String,
    pub repository: String,
    /// Absolute path of the OCI layout written to.
    pub layout: PathBuf,
    pub base: String,
    /// Tags in the layout; the first is the primary one.
    pub tags: Vec<String>,
    /// Seconds since the epoch used for every timestamp.
    pub created: i64,
    pub uid: u64,
    pub gid: u64,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub ports: Vec<String>,
    pub workdir: Option<String>,
    pub files: Vec<(PathBuf, String)>,
    pub labels: BTreeMap<String, String>,
}

/// What the image step produced.
#[derive(Clone, Debug, Serialize)]
pub struct ImageOutcome {
    pub digest: Digest,
    /// The image's location in skopeo syntax, `oci:LAYOUT:TAG` (primary tag).
    pub reference: String,
    pub layout: PathBuf,
    pub tags: Vec<String>,
    pub binary: PathBuf,
    pub config_digest: Digest,
    pub size: u64,
    pub layers: Vec<wharf_build::Layer>,
}

/// Decides what to build from the config and the facts of the source tree.
pub fn plan(
    workspace: &Workspace,
    git: &GitFacts,
    config: Option<&ImageConfig>,
    config_path: &Path,
) -> Result<ImagePlan, ImageError> {
    let config = config.ok_or_else(|| ImageError::NotConfigured(config_path.to_path_buf()))?;
    // Everything the config names is checked here, so `ci --dry-run` and `image` fail
    // with the key to fix before anything is compiled.
    let in_key = |key: &'static str| {
        move |cause: ImageError| ImageError::Key {
            path: config_path.to_path_buf(),
            key,
            cause: Box::new(cause),
        }
    };
    let package = workspace
        .package_facts(&config.package)
        .map_err(|e| in_key("image.package")(ImageError::Source(e)))?;
    let binary = config
        .binary
        .clone()
        .unwrap_or_else(|| config.package.clone());
    workspace
        .check_binary(&config.package, &binary)
        .map_err(|e| in_key("image.binary")(ImageError::Source(e)))?;
    open_base(&config.base).map_err(in_key("image.base"))?;
    let repository = config
        .repository
        .clone()
        .unwrap_or_else(|| config.package.clone());
    let created = wharf_source::source_date_epoch(git)?;
    let (uid, gid) = parse_user(&config.user).map_err(ImageError::Config)?;
    let layout = config
        .layout
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/wharf/oci").join(&config.package));
    let layout = if layout.is_absolute() {
        layout
    } else {
        workspace.root.join(layout)
    };

    let version: semver::Version = package
        .version
        .parse()
        .map_err(|e| ImageError::Config(format!("package {} version: {e}", package.name)))?;
    let release = git.tags_at_head.iter().any(|t| *t == format!("v{version}"));
    let date = jiff::Timestamp::from_second(created)
        .map_err(|_| ImageError::Config(format!("build time {created} is out of range")))?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let build_number = std::env::var("WHARF_BUILD_NUMBER")
        .or_else(|_| std::env::var("GITHUB_RUN_NUMBER"))
        .ok()
        .and_then(|n| n.parse().ok());
    let facts = wharf_tag::Facts {
        version: version.clone(),
        release: release && !git.dirty,
        sha: git.sha.clone(),
        branch: git.branch.clone(),
        default_branch: git.default_branch.clone(),
        date,
        stage: config.stage.clone(),
        build_number,
    };
    let tags: Vec<String> = if git.dirty {
        // Uncommitted changes: one tag that says so, never a tag a clean build owns.
        vec![format!("sha-{}-dirty", &git.sha[..7])]
    } else {
        let mut tags: Vec<String> = wharf_tag::tags(&facts)?
            .iter()
            .map(|t| t.to_string())
            .collect();
        // The sha tag first: it is unique to this commit, so it is the primary reference.
        let sha_tag = format!("sha-{}", &git.sha[..7]);
        tags.retain(|t| *t != sha_tag);
        tags.insert(0, sha_tag);
        tags
    };

    let mut labels = BTreeMap::new();
    labels.insert(label::TITLE.to_string(), repository.clone());
    labels.insert(label::VERSION.to_string(), version.to_string());
    labels.insert(label::REVISION.to_string(), git.sha.clone());
    if let Some(source) = config.source.clone().or(package.repository.clone()) {
        labels.insert(label::SOURCE.to_string(), source);
    }
    if let Some(license) = &package.license {
        labels.insert(label::LICENSES.to_string(), license.clone());
    }
    if let Some(description) = &package.description {
        labels.insert(
            "org.opencontainers.image.description".to_string(),
            description.clone(),
        );
    }

    Ok(ImagePlan {
        entrypoint: config
            .entrypoint
            .clone()
            .unwrap_or_else(|| vec![format!("/app/{binary}")]),
        package: config.package.clone(),
        binary,
        repository,
        layout,
        base: config.base.clone(),
        tags,
        created,
        uid,
        gid,
        cmd: config.cmd.clone(),
        env: config.env.clone(),
        ports: config.ports.clone(),
        workdir: config.workdir.clone(),
        files: config
            .files
            .iter()
            .map(|f| (workspace.root.join(&f.from), f.to.clone()))
            .collect(),
        labels,
    })
}

/// Compiles the binary, then assembles the image.
pub fn build(
    plan: &ImagePlan,
    workspace: &Workspace,
    progress: &Progress,
) -> Result<ImageOutcome, ImageError> {
    build_with(plan, workspace, progress, |cmd| {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
    })
}

/// [`build`], with `configure` applied to the cargo command that compiles the binary.
pub fn build_with(
    plan: &ImagePlan,
    workspace: &Workspace,
    progress: &Progress,
    configure: impl FnOnce(&mut std::process::Command),
) -> Result<ImageOutcome, ImageError> {
    let step = progress.start(format!("compiling {} (static, release)", plan.binary));
    let compiled =
        step.suspend(|| workspace.build_static_with(&plan.package, &plan.binary, configure));
    let binary = match compiled {
        Ok(binary) => {
            step.done(&binary.display().to_string());
            binary
        }
        Err(e) => {
            step.failed("");
            return Err(e.into());
        }
    };
    assemble(plan, &binary, progress)
}

/// Assembles the image from an already compiled binary.
pub fn assemble(
    plan: &ImagePlan,
    binary: &Path,
    progress: &Progress,
) -> Result<ImageOutcome, ImageError> {
    let step = progress.start(format!("assembling image {}", plan.repository));
    let result = assemble_inner(plan, binary);
    match &result {
        Ok(outcome) => {
            let reused = outcome.layers.iter().filter(|l| l.reused).count();
            step.done(&format!(
                "{} ({} layers, {} reused)",
                outcome.digest,
                outcome.layers.len(),
                reused
            ))
        }
        Err(_) => step.failed(""),
    }
    result
}

/// Opens the base image's layout and checks its pin: `None` for `scratch`.
fn open_base(base: &str) -> Result<Option<(Layout, Descriptor)>, ImageError> {
    if base == "scratch" {
        return Ok(None);
    }
    let pinned = parse_base(base).map_err(ImageError::Config)?;
    let layout = Layout::open(&pinned.dir)?;
    let descriptor = layout.resolve(&pinned.tag)?;
    if descriptor.digest != pinned.digest {
        return Err(ImageError::BasePin {
            location: format!("oci:{}:{}", pinned.dir.display(), pinned.tag),
            expected: pinned.digest,
            actual: descriptor.digest,
        });
    }
    Ok(Some((layout, descriptor)))
}

fn assemble_inner(plan: &ImagePlan, binary: &Path) -> Result<ImageOutcome, ImageError> {
    let layout = Layout::create(&plan.layout)?;
    let base_layout;
    let base_image;
    let mut spec = BuildSpec::new(plan.created);
    // Checked again: the base may have moved since the plan was made.
    if let Some((opened, descriptor)) = open_base(&plan.base)? {
        base_layout = opened;
        base_image = base_layout.image(&descriptor, &Platform::linux_amd64())?;
        spec.base = Some(Base {
            name: plan.base.clone(),
            image: &base_image,
        });
    }
    spec.uid = plan.uid;
    spec.gid = plan.gid;
    spec.entrypoint = plan.entrypoint.clone();
    spec.cmd = plan.cmd.clone();
    spec.env = plan.env.clone();
    spec.exposed_ports = plan.ports.clone();
    spec.working_dir = plan.workdir.clone();
    spec.labels = plan.labels.clone();
    // The binary gets a layer of its own: other files change less often and more often than
    // it does, and separate layers keep each other's digests (and cache) stable.
    let entry = plan
        .entrypoint
        .first()
        .cloned()
        .unwrap_or_else(|| format!("/app/{}", plan.binary));
    spec.layers.push(
        LayerSpec {
            description: format!("binary {}", plan.binary),
            files: Vec::new(),
        }
        .with_path(binary, &entry)?,
    );
    if !plan.files.is_empty() {
        let mut files = LayerSpec {
            description: "files".into(),
            files: Vec::new(),
        };
        for (from, to) in &plan.files {
            files = files.with_path(from, to)?;
        }
        spec.layers.push(files);
    }
    let primary = plan.tags.first().map(String::as_str);
    let built = wharf_build::build(&spec, &layout, primary)?;
    for tag in plan.tags.iter().skip(1) {
        layout.tag(&built.descriptor, tag)?;
    }
    let image = layout.image(&built.descriptor, &Platform::linux_amd64())?;
    let size = image::size(&image)?;
    Ok(ImageOutcome {
        digest: built.descriptor.digest.clone(),
        reference: format!(
            "oci:{}:{}",
            plan.layout.display(),
            primary.unwrap_or_default()
        ),
        layout: plan.layout.clone(),
        tags: plan.tags.clone(),
        binary: binary.to_path_buf(),
        config_digest: built.config.digest,
        size,
        layers: built.layers,
    })
}
