//! Stands in for the kubelet, which cannot run here (no container runtime): it takes the Pending
//! Pods of one namespace, runs the job binary on this host with the Pod's arguments and
//! environment — `secretKeyRef`s resolved through the API, the hot PVC as a host directory per
//! claim, Secret volumes written to files — and reports what the kubelet would: phase, the
//! container's exit code and its termination message (the job's summary file).
//!
//! What it does not do: images, scheduling, resource limits, probes, restarts, security
//! contexts, service-account tokens. Everything around it — CronJob and Job controllers,
//! garbage collection, the API — is the real control plane.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

pub struct Agent {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The job binary of this workspace (built by `cargo test --workspace`).
pub fn job_binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/unstoppable-job");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p unstoppable-job`",
        bin.display()
    );
    bin
}

/// Runs the Pods of `ns` until dropped; volumes live below `root`.
pub fn start(client: Client, ns: &str, root: PathBuf) -> Agent {
    let ns = ns.to_string();
    let started: Arc<Mutex<HashSet<String>>> = Arc::default();
    let task = tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        loop {
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for pod in list.items {
                    let name = pod.name_any();
                    let pending = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.as_deref())
                        .is_none_or(|p| p == "Pending");
                    let new = started
                        .lock()
                        .map(|mut s| s.insert(name.clone()))
                        .unwrap_or(false);
                    if pending && new {
                        let client = client.clone();
                        let root = root.clone();
                        tokio::spawn(async move { run_pod(client, pod, &root).await });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Agent { task }
}

async fn run_pod(client: Client, pod: Pod, root: &Path) {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let spec = pod.spec.clone().unwrap_or_default();
    let container = spec.containers.first().cloned().unwrap_or_default();
    let dir = root.join(&name);
    let _ = std::fs::create_dir_all(&dir);

    // Volumes: a host directory per PVC (kept across runs), files for Secret volumes.
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for mount in container.volume_mounts.clone().unwrap_or_default() {
        let Some(volume) = spec
            .volumes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == mount.name)
        else {
            continue;
        };
        let host = if let Some(pvc) = &volume.persistent_volume_claim {
            root.join("pvc").join(&pvc.claim_name)
        } else if let Some(secret) = &volume.secret {
            let host = dir.join(&volume.name);
            let _ = std::fs::create_dir_all(&host);
            let name = secret.secret_name.clone().unwrap_or_default();
            let data = secrets
                .get(&name)
                .await
                .ok()
                .and_then(|s| s.data)
                .unwrap_or_default();
            for item in secret.items.clone().unwrap_or_default() {
                if let Some(value) = data.get(&item.key) {
                    let _ = std::fs::write(host.join(&item.path), &value.0);
                }
            }
            host
        } else {
            dir.join(&volume.name)
        };
        let _ = std::fs::create_dir_all(&host);
        mounts.push((mount.mount_path.clone(), host));
    }
    let on_host = |value: &str| {
        for (path, host) in &mounts {
            if let Some(rest) = value.strip_prefix(path.as_str()) {
                return format!("{}{rest}", host.display());
            }
        }
        value.to_string()
    };

    // Environment: plain values (paths mapped to the host) and secretKeyRefs.
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container.env.clone().unwrap_or_default() {
        if let Some(value) = &var.value {
            env.push((var.name.clone(), on_host(value)));
        } else if let Some(r) = var
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.clone())
        {
            let secret = secrets.get(&r.name).await.ok();
            let value = secret
                .and_then(|s| s.data)
                .and_then(|d| d.get(&r.key).cloned())
                .map(|b| String::from_utf8_lossy(&b.0).into_owned());
            match value {
                Some(v) => env.push((var.name.clone(), v)),
                None => {
                    // The kubelet would leave the Pod in CreateContainerConfigError.
                    return;
                }
            }
        }
    }
    let summary = dir.join("termination-log");
    env.push((
        "UNSTOPPABLE_SUMMARY_PATH".into(),
        summary.display().to_string(),
    ));

    let started = k8s_openapi::jiff::Timestamp::now();
    let _ = pods
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Running", "startTime": started.to_string()}}),
            ),
        )
        .await;
    let args = container.args.clone().unwrap_or_default();
    let workdir = dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(job_binary())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .current_dir(&workdir)
            .output()
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    let code = output
        .as_ref()
        .ok()
        .and_then(|o| o.status.code())
        .unwrap_or(128);
    let message = std::fs::read_to_string(&summary).unwrap_or_default();
    let _ = std::fs::write(
        dir.join("log"),
        output.map(|o| o.stderr).unwrap_or_default(),
    );
    let finished = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "phase": if code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{
            "name": container.name, "image": container.image.unwrap_or_default(), "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"terminated": {
                "exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                "message": message, "startedAt": started.to_string(), "finishedAt": finished,
            }},
        }],
    }});
    let _ = pods
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await;
}
