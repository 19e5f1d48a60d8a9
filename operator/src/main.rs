//! The unstoppable operator: not built yet. It will reconcile BackupCustomer and BackupResource
//! objects into one CronJob per resource running `unstoppable-job`, using the contract types of
//! `unstoppable-contract`.

fn main() -> std::process::ExitCode {
    eprintln!("unstoppable-operator is not implemented yet; see README.md (Status)");
    std::process::ExitCode::FAILURE
}
