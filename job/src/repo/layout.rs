//! Where rustic keeps each file of a repository, relative to its root: the layout restic
//! defined, which every back-end of the cold part shares.

use rustic_core::{FileType, Id};

pub fn path(tpe: FileType, id: &Id) -> String {
    let hex = id.to_hex();
    match tpe {
        FileType::Config => "config".into(),
        FileType::Pack => format!("data/{}/{}", &hex[..2], &*hex),
        _ => format!("{}/{}", tpe.dirname(), &*hex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_where_restic_puts_them() {
        let id: Id = "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"
            .parse()
            .expect("id");
        assert_eq!(path(FileType::Config, &Id::default()), "config");
        assert!(path(FileType::Pack, &id).starts_with("data/aa/aabbcc"));
        assert!(path(FileType::Snapshot, &id).starts_with("snapshots/aabbcc"));
        assert!(path(FileType::Key, &id).starts_with("keys/"));
        assert!(path(FileType::Index, &id).starts_with("index/"));
    }
}
