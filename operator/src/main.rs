//! `unstoppable-operator`: runs the controllers and serves metrics and health endpoints.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{predicates, watcher, Controller, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use unstoppable_operator::context::Context;
use unstoppable_operator::crd::{BackupCustomer, BackupResource};
use unstoppable_operator::keys::{LABEL_MANAGED_BY, MANAGED_BY};
use unstoppable_operator::leadership::{self, LeaseSettings};
use unstoppable_operator::metrics::{Metrics, ResourceLabels};
use unstoppable_operator::restore_crd::BackupRestore;
use unstoppable_operator::server::{router, ServerState};
use unstoppable_operator::settings::{self, Settings};
use unstoppable_operator::tolerant_watch;
use unstoppable_operator::watch_health::{self, WatchHealth};
use unstoppable_operator::{
    customer_controller, job_controller, resource_controller, restore_controller,
};

/// Reconciles BackupCustomer and BackupResource objects into scheduled backup CronJobs.
#[derive(Parser, Debug)]
#[command(name = "unstoppable-operator", version, about)]
struct Args {
    /// Image of the backup job.
    #[arg(long, env = "UNSTOPPABLE_JOB_IMAGE")]
    job_image: String,
    /// Pull policy of the job image.
    #[arg(
        long,
        env = "UNSTOPPABLE_JOB_IMAGE_PULL_POLICY",
        default_value = settings::DEFAULT_PULL_POLICY
    )]
    job_image_pull_policy: String,
    /// StorageClass of hot PVCs when the customer sets none (default: the cluster's default).
    #[arg(long, env = "UNSTOPPABLE_DEFAULT_STORAGE_CLASS")]
    default_storage_class: Option<String>,
    /// Size of hot PVCs when the customer sets none.
    #[arg(long, env = "UNSTOPPABLE_DEFAULT_HOT_SIZE", default_value = settings::DEFAULT_HOT_SIZE)]
    default_hot_size: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "UNSTOPPABLE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Take a Lease before reconciling, so several replicas can run (one leads, the others
    /// stand by). Needs POD_NAMESPACE (and POD_NAME as identity) from the downward API.
    #[arg(long, env = "UNSTOPPABLE_LEADER_ELECTION", default_value_t = false)]
    leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(
        long,
        env = "UNSTOPPABLE_LEASE_NAME",
        default_value = "unstoppable-operator"
    )]
    lease_name: String,
    /// Reconciliations run at once per controller. Bounds the operator's memory and its load on
    /// the API server however many resources there are; each takes a few requests of a few
    /// milliseconds, so a small number keeps up with thousands of resources.
    #[arg(
        long,
        env = "UNSTOPPABLE_MAX_CONCURRENT_RECONCILES",
        default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    max_concurrent_reconciles: u16,
    /// `json` (default) or `text` logs.
    #[arg(long, env = "UNSTOPPABLE_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

fn main() -> std::process::ExitCode {
    unstoppable_operator::allocator::configure();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(operate())
}

async fn operate() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging(&args.log_format);
    unstoppable_operator::install_crypto_provider();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the Kubernetes API: {e}"))?;
    let settings = Settings {
        job_image: args.job_image,
        image_pull_policy: args.job_image_pull_policy,
        default_storage_class: args.default_storage_class,
        default_hot_size: args.default_hot_size,
        ..Settings::default()
    };
    let metrics = Arc::new(Metrics::default());
    metrics.start_time.set(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    );
    let watches = Arc::new(WatchHealth::default());
    // Resources read their customer from this watch's store (streams start when polled).
    let (customer_cache, customers_for_resources) = tolerant_watch::watch::<BackupCustomer>(
        client.clone(),
        watcher::Config::default(),
        metrics.clone(),
    );
    // Our CRDs are watched object by object: one that cannot be decoded is skipped and
    // reported, never a stall of every tenant's reconciliation.
    let (resource_store, resources) = tolerant_watch::watch::<BackupResource>(
        client.clone(),
        watcher::Config::default(),
        metrics.clone(),
    );
    let ctx = Arc::new(
        Context::new(client.clone(), settings, metrics.clone())
            .with_customer_store(customer_cache)
            .with_resource_store(resource_store.clone()),
    );
    let ready = Arc::new(AtomicBool::new(false));
    let lease = if args.leader_election {
        Some(LeaseSettings {
            name: args.lease_name.clone(),
            namespace: std::env::var("POD_NAMESPACE").map_err(|_| {
                "--leader-election needs POD_NAMESPACE (the namespace of the Lease); set it from the downward API".to_string()
            })?,
            identity: std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| format!("unstoppable-{}", std::process::id())),
        })
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_addr))?;
    let app = router(ServerState {
        metrics: metrics.clone(),
        ready: ready.clone(),
        watches: watches.clone(),
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
    });

    // A standby is healthy and ready (a rollout must not wait for it); it only does not reconcile.
    let leading = match &lease {
        Some(settings) => {
            ready.store(true, Ordering::Relaxed);
            let leading = leadership::lead(client.clone(), settings)
                .await
                .map_err(|e| format!("leader election on Lease {}: {e}", settings.name))?;
            Some(leading)
        }
        None => None,
    };
    metrics.leader.set(1);

    // Only our CRDs and our labelled children are watched: the cache stays small.
    let ours = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let (customer_store, customers) = tolerant_watch::watch::<BackupCustomer>(
        client.clone(),
        watcher::Config::default(),
        metrics.clone(),
    );
    // Only spec changes start a reconcile: the status it writes itself (and the job results the
    // job controller writes) would otherwise start another one for every write.
    let resources = resources.predicate_filter(predicates::generation, Default::default());
    // Children are watched by metadata only: ownership is all the trigger needs.
    let cron_jobs = watcher(
        Api::<PartialObjectMeta<CronJob>>::all(client.clone()),
        ours.clone(),
    )
    .inspect_ok(track_child::<CronJob>(&ctx))
    .touched_objects()
    .try_filter(not_own_write::<CronJob>(&ctx));
    let pvcs = watcher(
        Api::<PartialObjectMeta<PersistentVolumeClaim>>::all(client.clone()),
        ours.clone(),
    )
    .inspect_ok(track_child::<PersistentVolumeClaim>(&ctx))
    .touched_objects()
    .try_filter(not_own_write::<PersistentVolumeClaim>(&ctx));
    // The debounce folds the triggers of one write burst (a resource's own children appearing,
    // its status landing in the cache) into one reconcile that sees them all.
    let config = ControllerConfig::default()
        .concurrency(args.max_concurrent_reconciles)
        .debounce(Duration::from_secs(1));
    let by_customer = resource_store.clone();
    let resource_loop = Controller::for_stream(resources, resource_store.clone())
        .with_config(config.clone())
        .owns_stream(cron_jobs)
        .owns_stream(pvcs)
        .watches_stream(customers_for_resources, move |customer| {
            let ns = customer.namespace();
            let name = customer.name_any();
            by_customer
                .state()
                .into_iter()
                .filter(|r| r.namespace() == ns && r.spec.customer_ref.name == name)
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(
            resource_controller::reconcile,
            resource_controller::error_policy,
            ctx.clone(),
        )
        .for_each(observe(resource_controller::CONTROLLER, &metrics, &watches));
    let customers = customers.predicate_filter(predicates::generation, Default::default());
    let customer_loop = Controller::for_stream(customers, customer_store)
        .with_config(config.clone())
        .shutdown_on_signal()
        .run(
            customer_controller::reconcile,
            customer_controller::error_policy,
            ctx.clone(),
        )
        .for_each(observe(customer_controller::CONTROLLER, &metrics, &watches));
    // Each BackupRestore runs once; the Job it owns wakes it when it finishes.
    let restore_loop = Controller::new(
        Api::<BackupRestore>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_config(config.clone())
    .owns(Api::<Job>::all(client.clone()), ours.clone())
    .shutdown_on_signal()
    .run(
        restore_controller::reconcile,
        restore_controller::error_policy,
        ctx.clone(),
    )
    .for_each(observe(restore_controller::CONTROLLER, &metrics, &watches));
    let job_loop = Controller::new(Api::<Job>::all(client.clone()), ours)
        .with_config(config)
        .shutdown_on_signal()
        .run(
            job_controller::reconcile,
            job_controller::error_policy,
            ctx.clone(),
        )
        .for_each(observe(job_controller::CONTROLLER, &metrics, &watches));
    // Series of deleted resources disappear, so their alerts stop.
    let gc_metrics = metrics.clone();
    let gc = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            // The live set is taken only once the store holds the whole list: a sweep against a
            // half-filled store would drop the series of resources not seen yet.
            if resource_store.wait_until_ready().await.is_err() {
                continue;
            }
            // Looked up one by one: a set of every resource's labels would be megabytes at
            // thousands of resources, every 30 seconds.
            gc_metrics.retain(|l| {
                let key = ObjectRef::new(&l.resource).within(&l.namespace);
                resource_store
                    .get(&key)
                    .is_some_and(|r| ResourceLabels::of(&r) == *l)
            });
        }
    });
    ready.store(true, Ordering::Relaxed);
    tracing::info!("controllers started");
    let controllers = async {
        tokio::join!(resource_loop, customer_loop, job_loop, restore_loop);
    };
    match leading {
        Some(leading) => {
            tokio::select! {
                _ = controllers => {}
                _ = leadership::lost(leading) => {
                    // Another replica may lead already: stop writing at once.
                    tracing::error!("lost the leader lease; exiting so that only one replica reconciles");
                    std::process::exit(1);
                }
            }
        }
        None => controllers.await,
    }
    gc.abort();
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// Tells the record of applied children what the watch of `K` sees.
fn track_child<K: k8s_openapi::Resource>(
    ctx: &Arc<Context>,
) -> impl FnMut(&watcher::Event<PartialObjectMeta<K>>) {
    let ctx = ctx.clone();
    move |event| match event {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
            ctx.applied.seen(K::KIND, &o.metadata)
        }
        watcher::Event::Delete(o) => ctx.applied.deleted(K::KIND, &o.metadata),
        watcher::Event::Init => ctx.applied.relist_started(K::KIND),
        watcher::Event::InitDone => ctx.applied.relist_done(K::KIND),
    }
}

/// Drops the watch events that only show a child as the operator itself just applied it: its
/// owner needs no reconcile for them.
fn not_own_write<K: k8s_openapi::Resource>(
    ctx: &Arc<Context>,
) -> impl FnMut(&PartialObjectMeta<K>) -> std::future::Ready<bool> {
    let ctx = ctx.clone();
    move |o| std::future::ready(!ctx.applied.is_own_write(K::KIND, &o.metadata))
}

/// Counts a controller's stream: watch errors go to the metrics and the readiness check
/// (reconcile errors are counted by the reconcilers themselves).
fn observe<T, E: std::fmt::Display>(
    controller: &'static str,
    metrics: &Arc<Metrics>,
    watches: &Arc<WatchHealth>,
) -> impl FnMut(Result<T, kube::runtime::controller::Error<E, watcher::Error>>) -> std::future::Ready<()>
{
    let metrics = metrics.clone();
    let watches = watches.clone();
    move |result| {
        use kube::runtime::controller::Error as E2;
        match result {
            Ok(_) => watches.ok(controller),
            Err(E2::QueueError(e)) if watch_health::is_routine(&e) => {
                tracing::info!(controller, "watch expired, listing again: {e}");
            }
            Err(E2::QueueError(e)) => {
                tracing::warn!(controller, "watch failed: {e}");
                metrics.watch_failed(controller);
                watches.error(controller, std::time::Instant::now());
            }
            Err(E2::ReconcilerFailed(..)) | Err(E2::ObjectNotFound(_)) => {}
            Err(e) => {
                tracing::warn!(controller, "controller: {e}");
                metrics.watch_failed(controller);
                watches.error(controller, std::time::Instant::now());
            }
        }
        std::future::ready(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "text" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}
