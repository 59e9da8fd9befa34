//! Turns a container of a Pod into a process launch: which executable (image mapping), which
//! arguments (`$(VAR)` expanded), which environment (service-account kubeconfig, API server
//! location, then the container's own variables), where (the pod's working directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Client;

use crate::config::{ImageMap, find_program};
use crate::env;
use crate::events::Events;
use crate::process::Launch;
use crate::token::{self, ApiServer};

/// What every pod on this node shares.
#[derive(Clone)]
pub struct NodeContext {
    pub client: Client,
    pub api: ApiServer,
    pub images: ImageMap,
    pub events: Events,
    pub work_dir: PathBuf,
    /// PATH of the node process: where unmapped images find their commands.
    pub host_path: String,
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext")
            .field("api", &self.api)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

/// The pod's working directory, unique per pod instance.
pub fn pod_dir(ctx: &NodeContext, pod: &Pod) -> PathBuf {
    let meta = &pod.metadata;
    ctx.work_dir.join("pods").join(format!(
        "{}_{}_{}",
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or("pod"),
        meta.uid.as_deref().unwrap_or("nouid"),
    ))
}

/// Credentials for the pod's processes: the kubeconfig path, unless the pod opted out of
/// service-account tokens.
pub async fn credentials(ctx: &NodeContext, pod: &Pod, dir: &Path) -> Result<Option<PathBuf>> {
    let automount = pod
        .spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
        .unwrap_or(true);
    if !automount {
        return Ok(None);
    }
    token::write_credentials(&ctx.client, &ctx.api, pod, dir)
        .await
        .map(Some)
}

/// The launch of one container.
pub async fn prepare(
    ctx: &NodeContext,
    pod: &Pod,
    container: &Container,
    dir: &Path,
    kubeconfig: Option<&Path>,
) -> Result<Launch> {
    let image = container.image.as_deref().unwrap_or_default();
    let (service_host, service_port) = ctx.api.host_port();
    let path = match ctx.images.bin_dir(image) {
        Some(bin) => format!("{}:{}", bin.display(), ctx.host_path),
        None => ctx.host_path.clone(),
    };
    let mounts = mounts(ctx, pod, container, dir)?;
    let mut vars: Vec<(String, String)> = vec![
        ("PATH".into(), path),
        ("HOME".into(), dir.display().to_string()),
        // The pod's own /tmp, as an emptyDir at /tmp or the image's /tmp would be.
        ("TMPDIR".into(), dir.join("tmp").display().to_string()),
        (
            "HOSTNAME".into(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        ("KUBERNETES_SERVICE_HOST".into(), service_host),
        ("KUBERNETES_SERVICE_PORT".into(), service_port),
    ];
    if let Some(kubeconfig) = kubeconfig {
        vars.push(("KUBECONFIG".into(), kubeconfig.display().to_string()));
    }
    vars.extend(
        env::resolve(&ctx.client, pod, container)
            .await?
            .into_iter()
            .map(|(k, v)| (k, rewrite(&v, &mounts))),
    );
    let known: BTreeMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let command: Vec<String> = container
        .command
        .iter()
        .flatten()
        .map(|a| rewrite(&env::expand(a, &known), &mounts))
        .collect();
    let args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| rewrite(&env::expand(a, &known), &mounts))
        .collect();
    let (program, args) = match command.first() {
        // A program in one of the pod's volumes (a binary an init container puts there) is
        // taken as it is: it may not exist before the init containers ran.
        Some(first) if Path::new(first).starts_with(dir) => {
            let mut command = command.into_iter();
            let program = PathBuf::from(command.next().unwrap_or_default());
            (program, command.chain(args).collect())
        }
        _ => resolve_program(ctx, image, command, args)?,
    };
    Ok(Launch {
        program,
        args,
        env: vars,
        dir: dir.to_path_buf(),
        log: dir.join(format!("{}.log", container.name)),
        pidfile: dir.join(format!("{}.pid", container.name)),
    })
}

/// Where the container's mounts are on this machine, longest path first: its `emptyDir`
/// volumes (a directory per volume in the pod's directory, shared by its containers) and the
/// image's `--image-dir` directories. Other volume types are not mounted.
fn mounts(
    ctx: &NodeContext,
    pod: &Pod,
    container: &Container,
    dir: &Path,
) -> Result<Vec<(String, PathBuf)>> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let empty_dir = volumes
            .into_iter()
            .flatten()
            .any(|v| v.name == mount.name && v.empty_dir.is_some());
        if empty_dir {
            let local = dir.join("volumes").join(&mount.name);
            std::fs::create_dir_all(&local)
                .with_context(|| format!("creating emptyDir {}", local.display()))?;
            mounts.push((mount.mount_path.trim_end_matches('/').to_owned(), local));
        }
    }
    mounts.extend(
        ctx.images
            .directories(container.image.as_deref().unwrap_or_default()),
    );
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    Ok(mounts)
}

/// `value` with a leading mounted path replaced by where it is here: `/kubetrain/bin/x` ->
/// `<pod dir>/volumes/kubetrain/bin/x`. Values that merely contain a path are left alone.
fn rewrite(value: &str, mounts: &[(String, PathBuf)]) -> String {
    for (path, local) in mounts {
        if value == path {
            return local.display().to_string();
        }
        if let Some(rest) = value.strip_prefix(path.as_str())
            && rest.starts_with('/')
        {
            return format!("{}{rest}", local.display());
        }
    }
    value.to_owned()
}

/// A mapped image runs its executable: with no `command`, the image's entrypoint is that
/// executable and `args` are its arguments; a `command` naming the executable (by base name)
/// runs it too. Anything else runs `command` from the host's PATH.
fn resolve_program(
    ctx: &NodeContext,
    image: &str,
    command: Vec<String>,
    args: Vec<String>,
) -> Result<(PathBuf, Vec<String>)> {
    let mapped = ctx.images.executable(image)?;
    let mut command = command.into_iter();
    match (mapped, command.next()) {
        (Some(exe), None) => Ok((exe, args)),
        (Some(exe), Some(first)) if same_program(&first, &exe) => {
            Ok((exe, command.chain(args).collect()))
        }
        (_, Some(first)) => {
            let program = find_program(&first, &ctx.host_path).with_context(|| {
                format!("{first:?} (command of image {image:?}) is not on this machine's PATH")
            })?;
            Ok((program, command.chain(args).collect()))
        }
        (None, None) => bail!(
            "image {image:?} has no mapping on the process node and the container has no command; \
             give it a command or start the node with --map-image"
        ),
    }
}

fn same_program(command: &str, exe: &Path) -> bool {
    Path::new(command).file_name() == exe.file_name()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn mounted_paths_are_rewritten_only_as_a_prefix() {
        let mounts = vec![
            ("/kubetrain/bin".to_owned(), PathBuf::from("/w/bin")),
            ("/kubetrain".to_owned(), PathBuf::from("/w/vol")),
            ("/app".to_owned(), PathBuf::from("/repo/example")),
        ];
        assert_eq!(
            rewrite("/kubetrain/bin/kubetrain", &mounts),
            "/w/bin/kubetrain"
        );
        assert_eq!(rewrite("/kubetrain/model", &mounts), "/w/vol/model");
        assert_eq!(rewrite("/kubetrain", &mounts), "/w/vol");
        assert_eq!(rewrite("/app/train.py", &mounts), "/repo/example/train.py");
        assert_eq!(rewrite("/application", &mounts), "/application");
        assert_eq!(rewrite("--out=/app/x", &mounts), "--out=/app/x");
        assert_eq!(rewrite("python", &mounts), "python");
    }

    #[test]
    fn commands_match_mapped_executables_by_base_name() {
        assert!(same_program(
            "/usr/local/bin/kubetrain",
            Path::new("/w/target/debug/kubetrain")
        ));
        assert!(same_program(
            "kubetrain",
            Path::new("/w/target/debug/kubetrain")
        ));
        assert!(!same_program("sh", Path::new("/w/target/debug/kubetrain")));
    }
}
