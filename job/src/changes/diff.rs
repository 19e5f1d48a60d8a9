//! The content difference between the parent snapshot and the new one, from their trees alone
//! (kept in the hot part): subtrees with the same id are skipped, so an unchanged run reads no
//! tree at all and a small edit reads only the trees on its path.

use std::collections::{BTreeSet, HashMap};

use rustic_core::repofile::{Node, NodeType};
use rustic_core::{DataId, TreeId};

/// Reads the nodes of a tree.
pub type LoadTree<'a> = dyn Fn(&TreeId) -> Result<Vec<Node>, String> + 'a;

/// One changed file whose content may have become incompressible: the caller decides with the
/// index whether its previous content compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    pub path: String,
    pub old_content: Vec<DataId>,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Tally {
    pub new: u64,
    pub changed: u64,
    pub deleted: u64,
    pub renamed: u64,
    /// Renamed files whose new extension the resource never had.
    pub renamed_to_new_extension: u64,
    /// New or renamed files whose extension the resource never had.
    pub new_extension_files: u64,
    pub bytes_changed: u64,
    pub bytes_deleted: u64,
    /// Extensions seen in new and renamed files (all of them, to learn).
    pub extensions_seen: BTreeSet<String>,
    /// Of those, the ones not known before.
    pub new_extensions: BTreeSet<String>,
    /// Changed files per directory.
    pub per_dir: HashMap<String, u64>,
    /// Changed files the sampler found incompressible.
    pub suspects: Vec<Suspect>,
}

/// Inputs the walk consults besides the trees.
pub struct Known<'a> {
    /// Extensions the resource had before this run; `None` when unknown (nothing is then "new").
    pub extensions: Option<&'a BTreeSet<String>>,
    /// Whether the file at a path was judged incompressible while it streamed.
    pub incompressible: &'a dyn Fn(&str) -> bool,
}

/// The lower-case extension of a file name (`a.tar.GZ` -> `gz`), if it looks like one: after
/// the last dot, not a leading dot, 1-12 letters or digits.
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()
        && (1..=12).contains(&ext.len())
        && ext.chars().all(|c| c.is_ascii_alphanumeric()))
    .then(|| ext.to_ascii_lowercase())
}

/// Compares the trees `old` and `new` (either may be absent) at `dir`.
pub fn diff(
    load: &LoadTree<'_>,
    known: &Known<'_>,
    old: Option<&TreeId>,
    new: Option<&TreeId>,
    dir: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    if old == new {
        return Ok(());
    }
    let old_nodes = match old {
        Some(id) => load(id)?,
        None => Vec::new(),
    };
    let new_nodes = match new {
        Some(id) => load(id)?,
        None => Vec::new(),
    };
    let old_by_name: HashMap<String, &Node> = old_nodes
        .iter()
        .map(|n| (n.name().to_string_lossy().into_owned(), n))
        .collect();
    let new_by_name: HashMap<String, &Node> = new_nodes
        .iter()
        .map(|n| (n.name().to_string_lossy().into_owned(), n))
        .collect();
    // Files present on one side only, for rename matching within this directory.
    let mut gone: Vec<(String, &Node)> = Vec::new();
    let mut came: Vec<(String, &Node)> = Vec::new();
    for (name, o) in &old_by_name {
        let path = join(dir, name);
        match new_by_name.get(name) {
            Some(n) => both(load, known, &path, o, n, tally)?,
            None if is_dir(o) => diff(load, known, o.subtree.as_ref(), None, &path, tally)?,
            None if is_file(o) => gone.push((name.clone(), o)),
            None => {}
        }
    }
    for (name, n) in &new_by_name {
        if old_by_name.contains_key(name) {
            continue;
        }
        let path = join(dir, name);
        if is_dir(n) {
            diff(load, known, None, n.subtree.as_ref(), &path, tally)?;
        } else if is_file(n) {
            came.push((name.clone(), n));
        }
    }
    renames_and_rest(known, dir, gone, came, tally);
    Ok(())
}

/// A name on both sides: same kind compared, a kind change is a deletion plus an addition.
fn both(
    load: &LoadTree<'_>,
    known: &Known<'_>,
    path: &str,
    o: &Node,
    n: &Node,
    tally: &mut Tally,
) -> Result<(), String> {
    match (is_dir(o), is_dir(n), is_file(o), is_file(n)) {
        (true, true, _, _) => diff(
            load,
            known,
            o.subtree.as_ref(),
            n.subtree.as_ref(),
            path,
            tally,
        ),
        (_, _, true, true) => {
            if o.content != n.content {
                tally.changed += 1;
                tally.bytes_changed += n.meta.size;
                bump(tally, parent(path));
                if (known.incompressible)(path) {
                    tally.suspects.push(Suspect {
                        path: path.to_string(),
                        old_content: o.content.clone().unwrap_or_default(),
                    });
                }
            }
            Ok(())
        }
        _ => {
            if is_dir(o) {
                diff(load, known, o.subtree.as_ref(), None, path, tally)?;
            } else if is_file(o) {
                deleted(tally, path, o);
            }
            if is_dir(n) {
                diff(load, known, None, n.subtree.as_ref(), path, tally)?;
            } else if is_file(n) {
                added(known, tally, path, n);
            }
            Ok(())
        }
    }
}

/// Pairs a file that went with one that came in the same directory under the same name with
/// another extension: `a.html` -> `a.html.locked` (appended) or `a.doc` -> `a.crypt` (swapped).
fn renames_and_rest(
    known: &Known<'_>,
    dir: &str,
    gone: Vec<(String, &Node)>,
    came: Vec<(String, &Node)>,
    tally: &mut Tally,
) {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut by_stem: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (name, _)) in gone.iter().enumerate() {
        by_name.insert(name, i);
        by_stem.entry(stem(name)).or_default().push(i);
    }
    let mut matched = vec![false; gone.len()];
    for (name, node) in &came {
        let path = join(dir, name);
        let candidate = by_name
            .get(stem(name))
            .copied()
            .filter(|i| !matched[*i])
            .or_else(|| {
                by_stem.get(stem(name)).and_then(|list| {
                    list.iter()
                        .copied()
                        .find(|i| !matched[*i] && extension(&gone[*i].0) != extension(name))
                })
            });
        match candidate {
            Some(i) => {
                matched[i] = true;
                tally.renamed += 1;
                tally.bytes_changed += node.meta.size;
                bump(tally, dir);
                if let Some(ext) = extension(name) {
                    if is_new_extension(known, &ext) {
                        tally.renamed_to_new_extension += 1;
                        tally.new_extension_files += 1;
                        tally.new_extensions.insert(ext.clone());
                    }
                    tally.extensions_seen.insert(ext);
                }
            }
            None => added(known, tally, &path, node),
        }
    }
    for (i, (name, node)) in gone.iter().enumerate() {
        if !matched[i] {
            deleted(tally, &join(dir, name), node);
        }
    }
}

fn added(known: &Known<'_>, tally: &mut Tally, path: &str, n: &Node) {
    tally.new += 1;
    tally.bytes_changed += n.meta.size;
    bump(tally, parent(path));
    if let Some(ext) = extension(base(path)) {
        if is_new_extension(known, &ext) {
            tally.new_extension_files += 1;
            tally.new_extensions.insert(ext.clone());
        }
        tally.extensions_seen.insert(ext);
    }
}

fn deleted(tally: &mut Tally, path: &str, o: &Node) {
    tally.deleted += 1;
    tally.bytes_deleted += o.meta.size;
    bump(tally, parent(path));
}

fn is_new_extension(known: &Known<'_>, ext: &str) -> bool {
    known.extensions.is_some_and(|set| !set.contains(ext))
}

fn bump(tally: &mut Tally, dir: &str) {
    *tally.per_dir.entry(dir.to_string()).or_default() += 1;
}

fn is_dir(n: &Node) -> bool {
    matches!(n.node_type, NodeType::Dir)
}

fn is_file(n: &Node) -> bool {
    matches!(n.node_type, NodeType::File)
}

fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn base(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Every extension of the files under `root` (to learn them when no record of them is kept).
pub fn all_extensions(
    load: &LoadTree<'_>,
    root: &TreeId,
    out: &mut BTreeSet<String>,
) -> Result<(), String> {
    for node in load(root)? {
        if is_dir(&node) {
            if let Some(sub) = &node.subtree {
                all_extensions(load, sub, out)?;
            }
        } else if is_file(&node) {
            if let Some(ext) = extension(&node.name().to_string_lossy()) {
                out.insert(ext);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustic_core::repofile::Metadata;
    use rustic_core::Id;

    /// Trees built in memory, ids from their content.
    #[derive(Default)]
    struct Store(HashMap<TreeId, Vec<Node>>);

    enum E<'a> {
        F(&'a str, &'a str),
        D(&'a str, Vec<E<'a>>),
    }

    impl Store {
        fn tree(&mut self, entries: Vec<E<'_>>) -> TreeId {
            let mut nodes = Vec::new();
            for e in entries {
                match e {
                    E::F(name, content) => {
                        let mut n = Node::new_node(
                            std::ffi::OsStr::new(name),
                            NodeType::File,
                            Metadata {
                                size: content.len() as u64,
                                ..Default::default()
                            },
                        );
                        n.content = Some(vec![DataId::from(id_of(content))]);
                        nodes.push(n);
                    }
                    E::D(name, children) => {
                        let sub = self.tree(children);
                        let mut n = Node::new_node(
                            std::ffi::OsStr::new(name),
                            NodeType::Dir,
                            Metadata::default(),
                        );
                        n.subtree = Some(sub);
                        nodes.push(n);
                    }
                }
            }
            let key: String = nodes
                .iter()
                .map(|n| {
                    format!(
                        "{}{:?}{:?};",
                        n.name().to_string_lossy(),
                        n.content,
                        n.subtree
                    )
                })
                .collect();
            let id = TreeId::from(id_of(&key));
            self.0.insert(id, nodes);
            id
        }

        fn diff(
            &self,
            old: Option<&TreeId>,
            new: &TreeId,
            exts: Option<&BTreeSet<String>>,
            hot: &[&str],
        ) -> Tally {
            let load = |id: &TreeId| {
                self.0
                    .get(id)
                    .cloned()
                    .ok_or_else(|| format!("no tree {id}"))
            };
            let incompressible = |p: &str| hot.contains(&p);
            let known = Known {
                extensions: exts,
                incompressible: &incompressible,
            };
            let mut tally = Tally::default();
            diff(&load, &known, old, Some(new), "", &mut tally).expect("diff");
            tally
        }
    }

    fn id_of(text: &str) -> Id {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        format!("{:064x}", h.finish()).parse().expect("hex id")
    }

    #[test]
    fn counts_new_changed_deleted_and_skips_unchanged_subtrees() {
        let mut s = Store::default();
        let old = s.tree(vec![
            E::F("index.html", "home"),
            E::D("a", vec![E::F("x.txt", "x"), E::F("y.txt", "y")]),
            E::D("same", vec![E::F("z.txt", "z")]),
        ]);
        let new = s.tree(vec![
            E::F("index.html", "home, edited"),
            E::D("a", vec![E::F("x.txt", "x"), E::F("w.txt", "w")]),
            E::D("same", vec![E::F("z.txt", "z")]),
            E::D("fresh", vec![E::F("n1.css", "n"), E::F("n2.css", "m")]),
        ]);
        let known: BTreeSet<String> = ["html", "txt"].iter().map(|s| s.to_string()).collect();
        let t = s.diff(Some(&old), &new, Some(&known), &["index.html"]);
        assert_eq!((t.new, t.changed, t.deleted, t.renamed), (3, 1, 1, 0));
        assert_eq!(
            t.new_extension_files, 2,
            "two .css files, an extension not known"
        );
        assert_eq!(t.new_extensions.iter().collect::<Vec<_>>(), vec!["css"]);
        assert_eq!(t.per_dir.get("fresh"), Some(&2));
        assert_eq!(t.per_dir.get("a"), Some(&2));
        assert_eq!(t.suspects.len(), 1);
        assert_eq!(t.suspects[0].path, "index.html");
        assert_eq!(t.bytes_changed, "home, edited".len() as u64 + 3);

        let t = s.diff(Some(&new), &new, Some(&known), &[]);
        assert_eq!((t.new, t.changed, t.deleted), (0, 0, 0), "identical trees");
    }

    #[test]
    fn renames_to_another_extension_are_neither_new_nor_deleted() {
        let mut s = Store::default();
        let old = s.tree(vec![E::D(
            "docs",
            vec![
                E::F("a.html", "a"),
                E::F("b.doc", "b"),
                E::F("c.txt", "c"),
                E::F("d.txt", "d"),
            ],
        )]);
        let new = s.tree(vec![E::D(
            "docs",
            vec![
                E::F("a.html.locked", "A"),
                E::F("b.locked", "B"),
                E::F("c.txt", "c"),
                E::F("e.txt", "e"),
            ],
        )]);
        let known: BTreeSet<String> = ["html", "doc", "txt"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = s.diff(Some(&old), &new, Some(&known), &[]);
        assert_eq!((t.renamed, t.renamed_to_new_extension), (2, 2));
        assert_eq!(
            (t.new, t.deleted),
            (1, 1),
            "e.txt came, d.txt went: not a rename"
        );
        assert_eq!(t.new_extensions.iter().collect::<Vec<_>>(), vec!["locked"]);
    }

    #[test]
    fn a_removed_directory_counts_every_file_in_it_and_unknown_extensions_are_never_new() {
        let mut s = Store::default();
        let old = s.tree(vec![
            E::F("index.html", "i"),
            E::D(
                "blog",
                vec![E::F("1.html", "1"), E::D("img", vec![E::F("p.png", "p")])],
            ),
        ]);
        let new = s.tree(vec![E::F("index.html", "hacked")]);
        let t = s.diff(Some(&old), &new, None, &[]);
        assert_eq!((t.deleted, t.changed, t.new_extension_files), (2, 1, 0));
        assert_eq!(t.per_dir.get("blog/img"), Some(&1));
        let mut exts = BTreeSet::new();
        let load = |id: &TreeId| s.0.get(id).cloned().ok_or_else(|| "no tree".to_string());
        all_extensions(&load, &old, &mut exts).expect("walk");
        assert_eq!(exts.into_iter().collect::<Vec<_>>(), vec!["html", "png"]);
    }

    #[test]
    fn extensions_are_lower_case_and_plausible() {
        assert_eq!(extension("A.HTML").as_deref(), Some("html"));
        assert_eq!(extension(".htaccess"), None);
        assert_eq!(extension("README"), None);
        assert_eq!(extension("x.a b"), None);
        assert_eq!(extension("archive.tar.gz").as_deref(), Some("gz"));
    }
}
