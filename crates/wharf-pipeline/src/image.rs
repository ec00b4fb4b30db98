//! The image step: plan what to build (binary, tags, labels, base, layout), then build it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use wharf_build::{Base, BuildSpec, LayerCache, LayerSpec, label};
use wharf_engine::Engine;
use wharf_oci::{
    Descriptor, Digest, Index, Layout, Platform, Reference, canonical_json, image, media_type,
};
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
    #[error(transparent)]
    Engine(#[from] wharf_engine::Error),
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
    /// One image per platform, each with its binary.
    pub platforms: Vec<PlatformPlan>,
    /// The tags name an OCI image index of the platforms' images (`[image] platforms` is
    /// set), not a single image.
    pub index: bool,
    /// Absolute path of the layer cache (`[image] layer_cache`), if there is one.
    pub layer_cache: Option<PathBuf>,
    /// `Some` when a Dockerfile builds the image (with the Docker engine); `platforms` is
    /// then empty: nothing is compiled on the host.
    pub dockerfile: Option<DockerfilePlan>,
}

/// A Dockerfile build.
#[derive(Clone, Debug, Serialize)]
pub struct DockerfilePlan {
    /// Absolute paths.
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// Build every step again instead of using the engine's cache (`docker build
    /// --no-cache`); set by `cargo xtask image --no-cache`.
    pub no_cache: bool,
}

/// One platform's image: where its binary comes from.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformPlan {
    /// `os/arch[/variant]`.
    pub platform: String,
    pub binary: BinarySource,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinarySource {
    /// `cargo build --release --target TARGET`, linked statically.
    Compile { target: String },
    /// A binary built elsewhere (`[image] binaries`), used as it is.
    File { path: PathBuf },
}

/// What the image step produced.
#[derive(Clone, Debug, Serialize)]
pub struct ImageOutcome {
    pub digest: Digest,
    /// The image's location in skopeo syntax, `oci:LAYOUT:TAG` (primary tag).
    pub reference: String,
    pub layout: PathBuf,
    pub tags: Vec<String>,
    /// The first platform's binary.
    pub binary: PathBuf,
    /// The first platform's image: its config, size and layers.
    pub config_digest: Digest,
    pub size: u64,
    pub layers: Vec<wharf_build::Layer>,
    /// Every platform's image (one entry when no index was built).
    pub platforms: Vec<PlatformOutcome>,
}

/// What the image step built for one platform.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformOutcome {
    pub platform: String,
    /// The platform's image manifest (listed in the index, if there is one).
    pub digest: Digest,
    pub binary: PathBuf,
    pub size: u64,
}

/// `cause`, naming the config file and the key that led to it.
fn in_key(config_path: &Path, key: &'static str, cause: ImageError) -> ImageError {
    ImageError::Key {
        path: config_path.to_path_buf(),
        key,
        cause: Box::new(cause),
    }
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
    let in_key = |key: &'static str| move |cause| in_key(config_path, key, cause);
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
    let dockerfile = plan_dockerfile(workspace, config, config_path)?;
    let platforms = match dockerfile {
        Some(_) => Vec::new(),
        None => plan_platforms(workspace, config, config_path)?,
    };
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
        platforms,
        index: !config.platforms.is_empty(),
        layer_cache: config
            .layer_cache
            .as_ref()
            .map(|dir| workspace.root.join(dir)),
        dockerfile,
    })
}

/// The Dockerfile build, if `[image] dockerfile` asks for one: its file and context must be
/// there.
fn plan_dockerfile(
    workspace: &Workspace,
    config: &ImageConfig,
    config_path: &Path,
) -> Result<Option<DockerfilePlan>, ImageError> {
    let Some(dockerfile) = &config.dockerfile else {
        return Ok(None);
    };
    let dockerfile = workspace.root.join(dockerfile);
    if !dockerfile.is_file() {
        return Err(in_key(
            config_path,
            "image.dockerfile",
            ImageError::Config(format!("{} is not a file", dockerfile.display())),
        ));
    }
    let context = workspace
        .root
        .join(config.context.as_deref().unwrap_or(Path::new(".")));
    if !context.is_dir() {
        return Err(in_key(
            config_path,
            "image.context",
            ImageError::Config(format!("{} is not a directory", context.display())),
        ));
    }
    Ok(Some(DockerfilePlan {
        dockerfile,
        context,
        build_args: config.build_args.clone(),
        target: config.target.clone(),
        no_cache: false,
    }))
}

/// Where each platform's binary comes from: `[image] binaries`, else a static cargo build
/// for the platform's Rust target, which must be installed (checked now, so the error comes
/// before anything is compiled).
fn plan_platforms(
    workspace: &Workspace,
    config: &ImageConfig,
    config_path: &Path,
) -> Result<Vec<PlatformPlan>, ImageError> {
    config
        .platform_list()
        .into_iter()
        .map(|platform| {
            let binary = match config.binaries.get(&platform) {
                Some(path) => {
                    let path = workspace.root.join(path);
                    if !path.is_file() {
                        return Err(in_key(
                            config_path,
                            "image.binaries",
                            ImageError::Config(format!(
                                "the binary for {platform}, {}, is not a file (build it first, or fix the path)",
                                path.display()
                            )),
                        ));
                    }
                    BinarySource::File { path }
                }
                None => match Platform::parse(&platform)
                    .map_err(ImageError::Config)
                    .and_then(|p| {
                        let variant = p.variant.as_deref();
                        Ok(wharf_source::installed_rust_target(&p.os, &p.architecture, variant)?)
                    }) {
                    Ok(target) => BinarySource::Compile {
                        target: target.to_string(),
                    },
                    Err(e) => return Err(in_key(config_path, "image.platforms", e)),
                },
            };
            Ok(PlatformPlan { platform, binary })
        })
        .collect()
}

/// Compiles the binaries (one per platform, unless given), then assembles the image.
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

/// [`build`], with `configure` applied to each cargo command that compiles a binary.
pub fn build_with(
    plan: &ImagePlan,
    workspace: &Workspace,
    progress: &Progress,
    mut configure: impl FnMut(&mut std::process::Command),
) -> Result<ImageOutcome, ImageError> {
    if plan.dockerfile.is_some() {
        return build_dockerfile(plan, progress, |_| {});
    }
    let mut binaries = Vec::new();
    for platform in &plan.platforms {
        let target = match &platform.binary {
            BinarySource::File { path } => {
                binaries.push(path.clone());
                continue;
            }
            BinarySource::Compile { target } => target,
        };
        let what = match plan.index {
            true => format!(
                "compiling {} for {} (static, release)",
                plan.binary, platform.platform
            ),
            false => format!("compiling {} (static, release)", plan.binary),
        };
        let step = progress.start(what);
        let compiled = step.suspend(|| {
            workspace.build_static_for(&plan.package, &plan.binary, target, &mut configure)
        });
        match compiled {
            Ok(binary) => {
                step.done(&binary.display().to_string());
                binaries.push(binary);
            }
            Err(e) => {
                step.failed("");
                return Err(e.into());
            }
        }
    }
    assemble(plan, &binaries, progress)
}

/// Assembles the image from already compiled binaries, one per platform of the plan (in
/// its order).
pub fn assemble(
    plan: &ImagePlan,
    binaries: &[PathBuf],
    progress: &Progress,
) -> Result<ImageOutcome, ImageError> {
    let step = progress.start(format!("assembling image {}", plan.repository));
    let result = assemble_inner(plan, binaries);
    match &result {
        Ok(outcome) => {
            let reused = outcome.layers.iter().filter(|l| l.reused).count();
            let platforms = match plan.index {
                true => format!(", index of {} platforms", outcome.platforms.len()),
                false => String::new(),
            };
            step.done(&format!(
                "{} ({} layers, {} reused{platforms})",
                outcome.digest,
                outcome.layers.len(),
                reused
            ))
        }
        Err(_) => step.failed(""),
    }
    result
}

/// Builds the plan's Dockerfile with the Docker engine, then reads the image back into the
/// layout (through the same export as `docker-daemon:` locations) and tags it there. Each
/// line the builder prints goes to the progress and to `on_line`.
pub fn build_dockerfile(
    plan: &ImagePlan,
    progress: &Progress,
    mut on_line: impl FnMut(&str),
) -> Result<ImageOutcome, ImageError> {
    let Some(docker) = &plan.dockerfile else {
        return Err(ImageError::Config(
            "the plan has no Dockerfile to build".into(),
        ));
    };
    let step = progress.start(format!(
        "building {} from {} with the Docker engine",
        plan.repository,
        docker.dockerfile.display()
    ));
    let result = dockerfile_inner(plan, docker, &mut |line| {
        step.line(line);
        on_line(line);
    });
    match &result {
        Ok(outcome) => step.done(&format!(
            "{} ({} layers)",
            outcome.digest,
            outcome.layers.len()
        )),
        Err(_) => step.failed(""),
    }
    result
}

fn dockerfile_inner(
    plan: &ImagePlan,
    docker: &DockerfilePlan,
    on_line: &mut dyn FnMut(&str),
) -> Result<ImageOutcome, ImageError> {
    let (context, dockerfile) = wharf_engine::context_tar(&docker.context, &docker.dockerfile)?;
    let mut labels = plan.labels.clone();
    labels.insert(label::CREATED.into(), wharf_build::rfc3339(plan.created)?);
    let request = wharf_engine::BuildRequest {
        context,
        dockerfile,
        args: docker.build_args.clone(),
        target: docker.target.clone(),
        labels,
        no_cache: docker.no_cache,
    };
    let primary = plan
        .tags
        .first()
        .ok_or_else(|| ImageError::Config("the plan has no tag".into()))?;
    // The engine names the image as the layout will: repository and primary tag.
    let name: Reference = format!("{}:{primary}", plan.repository.to_lowercase())
        .parse()
        .map_err(|e| ImageError::Config(format!("naming the image in the engine: {e}")))?;
    let engine = Engine::connect()?;
    engine.build(request, &name, on_line)?;
    let exported = engine.export(&name)?;
    let layout = Layout::create(&plan.layout)?;
    let (descriptor, _) = layout.write_image(exported.image(), Some(primary))?;
    for tag in plan.tags.iter().skip(1) {
        layout.tag(&descriptor, tag)?;
    }
    let image = layout.image(&descriptor, &Platform::linux_amd64())?;
    let manifest = image::manifest(&image)?;
    let config = image::config(&image)?;
    let size = image::size(&image)?;
    let layers = manifest
        .layers
        .iter()
        .zip(config.rootfs.diff_ids)
        .map(|(descriptor, diff_id)| wharf_build::Layer {
            descriptor: descriptor.clone(),
            diff_id,
            reused: false,
        })
        .collect();
    Ok(ImageOutcome {
        digest: descriptor.digest.clone(),
        reference: format!("oci:{}:{primary}", plan.layout.display()),
        layout: plan.layout.clone(),
        tags: plan.tags.clone(),
        binary: docker.dockerfile.clone(),
        config_digest: manifest.config.digest.clone(),
        size,
        layers,
        platforms: vec![PlatformOutcome {
            platform: format!("{}/{}", config.os, config.architecture),
            digest: descriptor.digest,
            binary: docker.dockerfile.clone(),
            size,
        }],
    })
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

fn assemble_inner(plan: &ImagePlan, binaries: &[PathBuf]) -> Result<ImageOutcome, ImageError> {
    if binaries.len() != plan.platforms.len() {
        return Err(ImageError::Config(format!(
            "{} binaries given for {} platforms",
            binaries.len(),
            plan.platforms.len()
        )));
    }
    let layout = Layout::create(&plan.layout)?;
    // Checked again: the base may have moved since the plan was made.
    let base = open_base(&plan.base)?;
    let cache = match &plan.layer_cache {
        Some(dir) => Some(LayerCache::open(dir)?),
        None => None,
    };
    let primary = plan.tags.first().map(String::as_str);
    let mut built = Vec::new();
    for (platform_plan, binary) in plan.platforms.iter().zip(binaries) {
        let platform = Platform::parse(&platform_plan.platform).map_err(ImageError::Config)?;
        let base_image = match &base {
            Some((base_layout, descriptor)) => Some(base_layout.image(descriptor, &platform)?),
            None => None,
        };
        let mut spec = spec(plan, binary)?;
        spec.platform = platform.clone();
        spec.cache = cache.as_ref();
        if let Some(image) = &base_image {
            spec.base = Some(Base {
                name: plan.base.clone(),
                image,
            });
        }
        // In an index, the platforms' images are reached through the index's tags.
        let tag = if plan.index { None } else { primary };
        let result = wharf_build::build(&spec, &layout, tag)?;
        let image = layout.image(&result.descriptor, &platform)?;
        if let Some(cache) = &cache {
            // One entry per repository and platform: the next build finds these layers.
            // The image is built; a cache that cannot keep it (a full disk, another build
            // pruning at the same moment) costs the next build a compression, not this one.
            let name = format!("{}-{platform}", plan.repository).replace('/', "_");
            if let Err(e) = cache.keep(&image, &name) {
                tracing::warn!(cache = %cache.layout().root().display(), "keeping the layers in the layer cache: {e}");
            }
        }
        let outcome = PlatformOutcome {
            platform: platform_plan.platform.clone(),
            digest: result.descriptor.digest.clone(),
            binary: binary.clone(),
            size: image::size(&image)?,
        };
        built.push((platform, result, outcome));
    }
    let descriptor = if plan.index {
        let mut index = Index::new();
        for (platform, result, _) in &built {
            let mut entry = result.descriptor.clone();
            entry.platform = Some(platform.clone());
            index.manifests.push(entry);
        }
        index.annotations = plan.labels.clone();
        index
            .annotations
            .insert(label::CREATED.into(), wharf_build::rfc3339(plan.created)?);
        let descriptor = layout.write_blob_bytes(media_type::OCI_INDEX, &canonical_json(&index))?;
        if let Some(tag) = primary {
            layout.tag(&descriptor, tag)?;
        }
        descriptor
    } else {
        built[0].1.descriptor.clone()
    };
    for tag in plan.tags.iter().skip(1) {
        layout.tag(&descriptor, tag)?;
    }
    let (_, first, first_outcome) = &built[0];
    Ok(ImageOutcome {
        digest: descriptor.digest.clone(),
        reference: format!(
            "oci:{}:{}",
            plan.layout.display(),
            primary.unwrap_or_default()
        ),
        layout: plan.layout.clone(),
        tags: plan.tags.clone(),
        binary: first_outcome.binary.clone(),
        config_digest: first.config.digest.clone(),
        size: first_outcome.size,
        layers: first.layers.clone(),
        platforms: built.into_iter().map(|(_, _, outcome)| outcome).collect(),
    })
}

/// The build of one platform's image, base aside: the plan's settings and the binary in a
/// layer of its own.
fn spec(plan: &ImagePlan, binary: &Path) -> Result<BuildSpec<'static>, ImageError> {
    let mut spec = BuildSpec::new(plan.created);
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
    Ok(spec)
}
