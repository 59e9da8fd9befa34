//! Command line, node capacity and the image-to-executable mapping.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Runs the Pods bound to one Node as local processes (a test stand-in for kubelet + runtime).
#[derive(Debug, Parser)]
#[command(name = "kubetrain-testnode", version)]
pub struct Args {
    /// Kubeconfig of the node's own identity (user `system:node:<name>`, group `system:nodes`).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Name of the Node object to register.
    #[arg(long, default_value = "kubetrain-node")]
    pub node_name: String,
    /// Directory for per-pod working directories, logs, tokens and pidfiles.
    #[arg(long)]
    pub work_dir: PathBuf,
    /// Workspace root, to find `target/{release,debug}/kubetrain` for kubetrain images.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// CPU capacity (a Kubernetes quantity); default: the machine's cores.
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory capacity (a Kubernetes quantity); default: the machine's memory.
    #[arg(long)]
    pub memory: Option<String>,
    /// Number of `nvidia.com/gpu` to advertise.
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// Port of the kubelet logs endpoint on 127.0.0.1 (`kubectl logs`); 0 serves none.
    #[arg(long, default_value_t = 0)]
    pub kubelet_port: u16,
    /// Serving certificate of the logs endpoint (for 127.0.0.1).
    #[arg(long, requires = "kubelet_port")]
    pub serving_cert: Option<PathBuf>,
    /// Key of the serving certificate.
    #[arg(long)]
    pub serving_key: Option<PathBuf>,
    /// CA whose client certificates may read logs (the API server's kubelet client).
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// Extra image mappings, `SUBSTRING=EXECUTABLE`: images whose name contains SUBSTRING run
    /// EXECUTABLE. Checked before the built-in `kubetrain` mapping.
    #[arg(long = "map-image", value_name = "SUBSTRING=EXECUTABLE")]
    pub map_image: Vec<String>,
    /// Files of an image, `SUBSTRING:PATH=DIR`: in containers of images whose name contains
    /// SUBSTRING, the image's directory PATH (e.g. `/app`, where a Dockerfile copied a
    /// script) is DIR on this machine.
    #[arg(long = "image-dir", value_name = "SUBSTRING:PATH=DIR")]
    pub image_dir: Vec<String>,
}

/// What the node advertises as capacity (and allocatable).
#[derive(Debug, Clone)]
pub struct Capacity {
    pub cpu: String,
    pub memory: String,
    pub gpu: u32,
}

impl Capacity {
    /// The configured capacity, defaulting to this machine's cores and memory.
    pub fn from_args(args: &Args) -> Result<Self> {
        let cpu = match &args.cpu {
            Some(cpu) => cpu.clone(),
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .to_string(),
        };
        let memory = match &args.memory {
            Some(memory) => memory.clone(),
            None => format!("{}Ki", mem_total_kib()?),
        };
        Ok(Self {
            cpu,
            memory,
            gpu: args.gpu,
        })
    }
}

fn mem_total_kib() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no MemTotal in /proc/meminfo; pass --memory")
}

/// Maps container images to local executables and image directories to local ones.
#[derive(Debug, Clone)]
pub struct ImageMap {
    rules: Vec<(String, PathBuf)>,
    dirs: Vec<ImageDir>,
    repo: PathBuf,
}

/// One `--image-dir` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageDir {
    image: String,
    path: String,
    dir: PathBuf,
}

impl ImageMap {
    pub fn from_args(args: &Args) -> Result<Self> {
        let rules = args
            .map_image
            .iter()
            .map(|rule| match rule.split_once('=') {
                Some((image, exe)) if !image.is_empty() && !exe.is_empty() => {
                    Ok((image.to_owned(), PathBuf::from(exe)))
                }
                _ => bail!("--map-image {rule:?} is not SUBSTRING=EXECUTABLE"),
            })
            .collect::<Result<_>>()?;
        let dirs = args
            .image_dir
            .iter()
            .map(|rule| {
                let parsed = rule.split_once('=').and_then(|(left, dir)| {
                    let (image, path) = left.split_once(':')?;
                    (!image.is_empty() && path.starts_with('/') && !dir.is_empty()).then(|| {
                        ImageDir {
                            image: image.to_owned(),
                            path: path.trim_end_matches('/').to_owned(),
                            dir: PathBuf::from(dir),
                        }
                    })
                });
                parsed.with_context(|| format!("--image-dir {rule:?} is not SUBSTRING:/PATH=DIR"))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            rules,
            dirs,
            repo: args.repo.clone(),
        })
    }

    /// The directories of `image` that live elsewhere here: `(image path, local dir)`.
    pub fn directories(&self, image: &str) -> Vec<(String, PathBuf)> {
        self.dirs
            .iter()
            .filter(|d| image.contains(d.image.as_str()))
            .map(|d| (d.path.clone(), d.dir.clone()))
            .collect()
    }

    /// The extra PATH entry of `image`: the directory of its `--map-image` executable (a
    /// virtualenv's `bin`, as the image's own PATH would have it), for images other than
    /// kubetrain's.
    pub fn bin_dir(&self, image: &str) -> Option<PathBuf> {
        self.rules
            .iter()
            .find(|(s, _)| image.contains(s.as_str()))
            .and_then(|(_, exe)| exe.parent().map(Path::to_path_buf))
    }

    /// The executable an image stands for, or `None` for images without a mapping (their
    /// command then runs from the host's PATH). Resolved at each start, so a binary built after
    /// the node started is found.
    pub fn executable(&self, image: &str) -> Result<Option<PathBuf>> {
        if let Some((_, exe)) = self.rules.iter().find(|(s, _)| image.contains(s.as_str())) {
            return Ok(Some(exe.clone()));
        }
        if image.contains("kubetrain") {
            return kubetrain_binary(&self.repo).map(Some);
        }
        Ok(None)
    }
}

/// `$KUBETRAIN_BIN`, else the workspace's release build, else its debug build.
fn kubetrain_binary(repo: &Path) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("KUBETRAIN_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    for profile in ["release", "debug"] {
        let candidate = target.join(profile).join("kubetrain");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no kubetrain binary for this image: set KUBETRAIN_BIN or run `cargo build -p kubetrain` in {}",
        repo.display()
    )
}

/// Finds a program the way a shell would: paths with a slash as they are (falling back to the
/// base name on PATH when they do not exist here, e.g. `/usr/local/bin/app` of an image),
/// other names on PATH.
pub fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    let as_given = Path::new(program);
    if program.contains('/') && as_given.is_file() {
        return Some(as_given.to_path_buf());
    }
    let name = as_given.file_name()?;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn map(rules: &[&str]) -> ImageMap {
        let args = Args::parse_from(
            ["kubetrain-testnode", "--kubeconfig", "k", "--work-dir", "w"]
                .into_iter()
                .chain(rules.iter().flat_map(|r| ["--map-image", r])),
        );
        ImageMap::from_args(&args).unwrap()
    }

    #[test]
    fn explicit_rules_win_and_unmapped_images_have_no_executable() {
        let m = map(&["kubetrain=/opt/kt", "python=/usr/bin/python3"]);
        assert_eq!(
            m.executable("ghcr.io/kubetrain/kubetrain:dev").unwrap(),
            Some(PathBuf::from("/opt/kt"))
        );
        assert_eq!(m.executable("busybox:1.36").unwrap(), None);
    }

    #[test]
    fn malformed_rule_is_rejected() {
        let args = Args::parse_from([
            "kubetrain-testnode",
            "--kubeconfig",
            "k",
            "--work-dir",
            "w",
            "--map-image",
            "nope",
        ]);
        assert!(ImageMap::from_args(&args).is_err());
    }

    #[test]
    fn programs_resolve_from_path_also_for_image_paths() {
        assert!(find_program("sh", "/usr/bin:/bin").is_some());
        assert!(find_program("/usr/local/bin/sh", "/usr/bin:/bin").is_some());
        assert!(find_program("surely-not-a-program", "/usr/bin:/bin").is_none());
    }
}
