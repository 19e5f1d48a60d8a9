//! Test constructors for the custom resources (used by unit and integration tests).

use kube::api::ObjectMeta;

use crate::crd::*;

impl BackupCustomer {
    /// A customer `acme` in namespace `backups` with a Kubernetes Secret as secret source.
    pub fn test() -> Self {
        let mut c = BackupCustomer::new(
            "acme",
            BackupCustomerSpec {
                cold_storage: ColdStorage {
                    endpoint: "https://s3.example.org".into(),
                    region: "eu-central-1".into(),
                    bucket: None,
                    path_style: true,
                    object_lock: None,
                },
                secrets: SecretSource {
                    infisical: None,
                    secret_ref: Some(SecretRef {
                        name: "acme-credentials".into(),
                    }),
                },
                retention: None,
                maintenance: None,
                hot_storage: HotStorage::default(),
                suspend: false,
            },
        );
        c.metadata = ObjectMeta {
            name: Some("acme".into()),
            namespace: Some("backups".into()),
            uid: Some("c0ffee00-0000-4000-8000-000000000001".into()),
            generation: Some(1),
            ..Default::default()
        };
        c
    }
}

impl BackupResource {
    /// A resource `www` of customer `acme`, daily at 03:00 UTC.
    pub fn test() -> Self {
        let mut r = BackupResource::new(
            "www",
            BackupResourceSpec {
                customer_ref: CustomerRef {
                    name: "acme".into(),
                },
                source: Source {
                    ftps: FtpsSource {
                        host: "ftp.acme.example".into(),
                        port: 21,
                        path: "/htdocs".into(),
                        include: vec![],
                        exclude: vec!["cache/**".into()],
                        tls: FtpsTls::default(),
                        credentials: CredentialKeys::default(),
                        max_connections: 4,
                    },
                },
                schedule: "0 3 * * *".into(),
                time_zone: None,
                retention: None,
                maintenance: None,
                hot_storage: None,
                suspend: false,
                resources: None,
                deadline_seconds: None,
                anomaly: None,
            },
        );
        r.metadata = ObjectMeta {
            name: Some("www".into()),
            namespace: Some("backups".into()),
            uid: Some("c0ffee00-0000-4000-8000-000000000002".into()),
            generation: Some(1),
            ..Default::default()
        };
        r
    }
}

impl crate::restore_crd::BackupRestore {
    /// A restore `put-back` of resource `www` onto its own FTPS server.
    pub fn test() -> Self {
        use crate::restore_crd::*;
        let mut r = BackupRestore::new(
            "put-back",
            BackupRestoreSpec {
                resource_ref: ResourceRef { name: "www".into() },
                snapshot: SnapshotSelector::default(),
                path: None,
                include: vec![],
                exclude: vec![],
                target: RestoreTarget {
                    ftps: Some(FtpsTarget::default()),
                    pvc: None,
                    s3: None,
                },
                repository_as_of: None,
                resources: None,
                deadline_seconds: None,
            },
        );
        r.metadata = ObjectMeta {
            name: Some("put-back".into()),
            namespace: Some("backups".into()),
            uid: Some("c0ffee00-0000-4000-8000-000000000003".into()),
            generation: Some(1),
            ..Default::default()
        };
        r
    }
}
