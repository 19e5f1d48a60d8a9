//! The words the operator's objects share: labels and annotations on what it creates, the keys it
//! reads from customers' Secrets, its field manager. Controllers and the pure modules take them
//! from here, not from each other.

use unstoppable_contract::defaults;

/// The field manager of every server-side apply and status patch.
pub const FIELD_MANAGER: &str = "unstoppable";

pub const LABEL_CUSTOMER: &str = "unstoppable.dev/customer";
pub const LABEL_RESOURCE: &str = "unstoppable.dev/resource";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "unstoppable-operator";

/// The annotations our Jobs carry (from the CronJob's job template) to name their resource
/// exactly (label values may be shortened).
pub const ANNOTATION_RESOURCE: &str = "unstoppable.dev/resource-name";
pub const ANNOTATION_CUSTOMER: &str = "unstoppable.dev/customer-name";
/// The annotation a restore Job carries instead: the BackupRestore it runs for. (It carries no
/// resource annotation, so its outcome is never read as a backup's.)
pub const ANNOTATION_RESTORE: &str = "unstoppable.dev/restore-name";
pub const LABEL_RESTORE: &str = "unstoppable.dev/restore";

/// Keys the job reads from a customer's Kubernetes Secret (secrets.secretRef): the same names
/// the job looks for in Infisical by default.
pub const SECRET_KEY_REPOSITORY_PASSWORD: &str = defaults::REPOSITORY_PASSWORD_KEY;
pub const SECRET_KEY_S3_ACCESS_KEY_ID: &str = defaults::S3_ACCESS_KEY_ID_KEY;
pub const SECRET_KEY_S3_SECRET_ACCESS_KEY: &str = defaults::S3_SECRET_ACCESS_KEY_KEY;
/// Keys of the Secret holding an Infisical machine identity (secrets.infisical.identitySecretRef).
pub const SECRET_KEY_CLIENT_ID: &str = "clientId";
pub const SECRET_KEY_CLIENT_SECRET: &str = "clientSecret";
