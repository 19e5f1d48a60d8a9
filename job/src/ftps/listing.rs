//! Directory listings: parsing MLSD facts and `ls -l` style LIST lines (pure), and fetching one
//! directory's entries over the pool, with MDTM for exact times when the server has no MLSD.

use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use jiff::Timestamp;
use suppaftp::list::ListParser;

use super::dating::Dating;
use super::list_time::{self, Shown};
use super::pool::Pool;
use super::retry::with_retries;
use super::stats::SourceStats;
use super::{completeness, datacmd, FtpsError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
}

/// One name in a directory, with the facts the archiver compares against the parent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Second precision, UTC. `None` for directories (LIST servers cannot tell it exactly).
    pub mtime: Option<Timestamp>,
    /// The time a LIST line showed (minute or day), for skipping MDTM; `None` with MLSD.
    pub shown: Option<Shown>,
}

/// How the server lets us list: chosen once per run from FEAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingMode {
    Mlsd,
    ListAndMdtm,
}

/// Parses one MLSD line (RFC 3659 §7): `fact=value;fact=value; name`.
/// Returns `Ok(None)` for the `.`/`..` entries (`cdir`, `pdir`).
pub fn parse_mlsd_line(line: &str) -> Result<Option<RemoteEntry>, String> {
    let (facts, name) = line
        .split_once(' ')
        .ok_or_else(|| format!("MLSD line without a name: {line:?}"))?;
    if name.is_empty() {
        return Err(format!("MLSD line without a name: {line:?}"));
    }
    let mut kind = None;
    let mut size = None;
    let mut mtime = None;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact
            .split_once('=')
            .ok_or_else(|| format!("malformed MLSD fact {fact:?} in {line:?}"))?;
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                let v = value.to_ascii_lowercase();
                kind = Some(match v.as_str() {
                    "file" => Some(Kind::File),
                    "dir" => Some(Kind::Dir),
                    "cdir" | "pdir" => None,
                    _ if v.starts_with("os.unix=slink:") => {
                        Some(Kind::Symlink(value["os.unix=slink:".len()..].to_string()))
                    }
                    _ if v == "os.unix=symlink" => Some(Kind::Symlink(String::new())),
                    _ => return Err(format!("unknown MLSD type {value:?} for {name:?}")),
                });
            }
            "size" => {
                size = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| format!("bad MLSD size {value:?} for {name:?}"))?,
                )
            }
            "modify" => mtime = Some(parse_ftp_time(value)?),
            _ => {}
        }
    }
    let Some(kind) = kind.ok_or_else(|| format!("MLSD line without type fact: {line:?}"))? else {
        return Ok(None);
    };
    check_name(name)?;
    if kind == Kind::File && (size.is_none() || mtime.is_none()) {
        return Err(format!(
            "MLSD gives no size or modify fact for {name:?}; the server must offer both"
        ));
    }
    Ok(Some(RemoteEntry {
        name: name.to_string(),
        mtime: if kind == Kind::Dir { None } else { mtime },
        shown: None,
        size: if kind == Kind::File {
            size.unwrap_or(0)
        } else {
            0
        },
        kind,
    }))
}

/// `YYYYMMDDHHMMSS[.sss]`, UTC (RFC 3659 time-val). Fractions are dropped: MDTM-only servers give
/// seconds, and both listing paths must describe a file identically.
pub fn parse_ftp_time(value: &str) -> Result<Timestamp, String> {
    let digits = value.split('.').next().unwrap_or(value);
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad FTP time {value:?}"));
    }
    let num = |r: std::ops::Range<usize>| digits[r].parse::<i16>().unwrap_or(0);
    let dt = jiff::civil::DateTime::new(
        num(0..4),
        num(4..6) as i8,
        num(6..8) as i8,
        num(8..10) as i8,
        num(10..12) as i8,
        num(12..14) as i8,
        0,
    )
    .map_err(|e| format!("bad FTP time {value:?}: {e}"))?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| format!("bad FTP time {value:?}: {e}"))
}

/// Parses one LIST line (`ls -l` style, or DOS style). `Ok(None)` for `total N`, `.` and `..`.
/// Exact times are left out: LIST shows minutes at best, so MDTM supplies them (or the previous
/// snapshot, when the shown time proves the file unchanged).
pub fn parse_list_line(line: &str) -> Result<Option<RemoteEntry>, String> {
    if line.trim().is_empty() || line.starts_with("total ") {
        return Ok(None);
    }
    let file = ListParser::parse_posix(line)
        .or_else(|_| ListParser::parse_dos(line))
        .map_err(|e| format!("unparsable LIST line {line:?}: {e}"))?;
    let name = file.name().to_string();
    if name == "." || name == ".." {
        return Ok(None);
    }
    check_name(&name)?;
    let kind = if file.is_directory() {
        Kind::Dir
    } else if file.is_symlink() {
        Kind::Symlink(
            file.symlink()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    } else {
        Kind::File
    };
    Ok(Some(RemoteEntry {
        size: if kind == Kind::File {
            file.size() as u64
        } else {
            0
        },
        shown: if kind == Kind::File {
            list_time::parse(line)
        } else {
            None
        },
        kind,
        name,
        mtime: None,
    }))
}

/// A name from a listing must be one path component: a server that sends `..`, `a/b` or a NUL
/// is broken or hostile, and its entries could escape the restore directory.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(format!("the server listed an invalid file name {name:?}"));
    }
    Ok(())
}

/// `dir` + `name` as an absolute server path.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Detects MLSD support from FEAT (MLST announces both MLST and MLSD).
pub async fn detect_mode(pool: &Arc<Pool>) -> Result<ListingMode, FtpsError> {
    let mut lease = pool.get().await?;
    let features = lease
        .ftp()
        .feat()
        .await
        .map_err(|e| FtpsError::Protocol(format!("FEAT failed: {e}")))?;
    lease.release();
    let mlsd = features
        .keys()
        .any(|k| k.eq_ignore_ascii_case("MLST") || k.eq_ignore_ascii_case("MLSD"));
    Ok(if mlsd {
        ListingMode::Mlsd
    } else {
        ListingMode::ListAndMdtm
    })
}

/// One directory's entries, sorted by name. `caveat` says why the listing cannot be trusted as
/// complete (truncated by the server, inconsistent); its entries are real but may not be all.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<RemoteEntry>,
    pub caveat: Option<String>,
}

/// Lists one directory (with exact file times). Files that vanish or cannot be dated are left out
/// and recorded in `stats`; an error means the directory itself could not be listed. With
/// `dating`, files the previous snapshot proves unchanged are dated from it instead of by MDTM.
pub async fn list_dir(
    pool: &Arc<Pool>,
    mode: ListingMode,
    dir: &str,
    retries: u32,
    stats: &SourceStats,
    dating: Option<&Dating>,
) -> Result<Listing, FtpsError> {
    let mut listing = with_retries(retries, || list_once(pool, mode, dir)).await?;
    if mode == ListingMode::ListAndMdtm {
        let known = match dating {
            Some(d) => d.known_in(dir).await,
            None => None,
        };
        let reuse = dating.zip(known.as_ref().filter(|k| !k.is_empty()));
        if let Some((d, _)) = reuse {
            d.calibrate(pool, dir, &listing.entries).await;
        }
        // One MDTM round trip per file: run them over all pooled connections at once.
        let width = pool.max_connections();
        let dated: Vec<Option<RemoteEntry>> =
            stream::iter(listing.entries.into_iter().map(|mut entry| async move {
                if entry.kind != Kind::File {
                    return Ok(Some(entry));
                }
                if let Some(time) = reuse.and_then(|(d, k)| d.reuse(&entry, k.get(&entry.name))) {
                    entry.mtime = Some(time);
                    SourceStats::add(&stats.mdtm_skipped, 1);
                    return Ok(Some(entry));
                }
                let path = join(dir, &entry.name);
                match with_retries(retries, || mdtm_once(pool, &path)).await {
                    Ok(time) => {
                        entry.mtime = Some(time);
                        Ok(Some(entry))
                    }
                    Err(err) if err.affects_one_path() => {
                        if err.may_mean_missing() && vanished(pool, mode, &path).await {
                            stats.failures.vanished(&path);
                        } else {
                            stats.failures.path(&path, err.to_string());
                        }
                        Ok(None)
                    }
                    Err(err) => Err(err),
                }
            }))
            .buffered(width)
            .try_collect()
            .await?;
        listing.entries = dated.into_iter().flatten().collect();
    }
    listing.entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
}

/// Whether `path` is gone: a fresh listing of its directory no longer names it. When that
/// cannot be told, it is not gone (the caller then reports the original failure).
pub async fn vanished(pool: &Arc<Pool>, mode: ListingMode, path: &str) -> bool {
    let (dir, name) = match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => return false,
    };
    match list_once(pool, mode, dir).await {
        Ok(listing) => listing.caveat.is_none() && !listing.entries.iter().any(|e| e.name == name),
        Err(_) => false,
    }
}

async fn list_once(pool: &Arc<Pool>, mode: ListingMode, dir: &str) -> Result<Listing, FtpsError> {
    let err = |detail: String| FtpsError::Listing {
        path: dir.to_string(),
        detail,
    };
    let mut lease = pool.get().await?;
    let timeout = pool.connector().timeout();
    let raw = tokio::time::timeout(timeout, async {
        match mode {
            ListingMode::Mlsd => datacmd::listing(lease.ftp(), &format!("MLSD {dir}"))
                .await
                .map_err(|e| FtpsError::from_ftp(e, "MLSD", dir, err)),
            ListingMode::ListAndMdtm => {
                // LIST's argument is globbed and option-parsed by many servers: change into the
                // directory and list it without a name instead.
                lease
                    .ftp()
                    .cwd(dir)
                    .await
                    .map_err(|e| FtpsError::from_ftp(e, "CWD", dir, err))?;
                datacmd::listing(lease.ftp(), "LIST -a")
                    .await
                    .map_err(|e| FtpsError::from_ftp(e, "LIST", dir, err))
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(err(format!("no answer within {timeout:?}"))));
    lease.settle(&raw);
    let raw = raw?;
    let parse = match mode {
        ListingMode::Mlsd => parse_mlsd_line,
        ListingMode::ListAndMdtm => parse_list_line,
    };
    let mut entries = Vec::with_capacity(raw.lines.len());
    for line in &raw.lines {
        if let Some(entry) = parse(line).map_err(err)? {
            entries.push(entry);
        }
    }
    let counted = raw
        .lines
        .iter()
        .filter(|l| !l.starts_with("total "))
        .count();
    let caveat = completeness::caveat(dir, &raw.reply, counted).or_else(|| {
        completeness::duplicate(&entries)
            .map(|name| format!("the listing of `{dir}` is inconsistent: it names {name:?} twice"))
    });
    Ok(Listing { entries, caveat })
}

pub(super) async fn mdtm_once(pool: &Arc<Pool>, path: &str) -> Result<Timestamp, FtpsError> {
    let err = |detail: String| FtpsError::Listing {
        path: path.to_string(),
        detail: format!("MDTM: {detail}"),
    };
    let mut lease = pool.get().await?;
    let timeout = pool.connector().timeout();
    let time = tokio::time::timeout(timeout, lease.ftp().mdtm(path))
        .await
        .map_err(|_| err(format!("no answer within {timeout:?}")))
        .and_then(|r| r.map_err(|e| FtpsError::from_ftp(e, "MDTM", path, err)));
    lease.settle(&time);
    let time = time?;
    Timestamp::from_second(time.and_utc().timestamp()).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlsd_lines_give_type_size_and_second_precise_time() {
        let e = parse_mlsd_line("type=file;size=1234;modify=20260102030405.123;perm=r; a b.txt")
            .expect("parses")
            .expect("an entry");
        assert_eq!(e.name, "a b.txt");
        assert_eq!(e.kind, Kind::File);
        assert_eq!(e.size, 1234);
        assert_eq!(e.mtime.expect("time").to_string(), "2026-01-02T03:04:05Z");
        let d = parse_mlsd_line("Type=dir;Modify=20260102030405; sub")
            .expect("ok")
            .expect("entry");
        assert_eq!((d.kind, d.mtime), (Kind::Dir, None));
        assert_eq!(
            parse_mlsd_line("type=cdir;modify=20260102030405; .").expect("ok"),
            None
        );
    }

    #[test]
    fn mlsd_without_size_or_time_is_an_error_not_a_guess() {
        assert!(parse_mlsd_line("type=file;modify=20260102030405; x").is_err());
        assert!(parse_mlsd_line("type=file;size=1; x").is_err());
        assert!(parse_mlsd_line("type=file;size=1;modify=2026; x").is_err());
        assert!(parse_mlsd_line("garbage").is_err());
    }

    #[test]
    fn list_lines_from_vsftpd_parse() {
        let f =
            parse_list_line("-rw-r--r--    1 1000     1000         5120 Nov 24 10:11 my file.bin")
                .expect("ok")
                .expect("entry");
        assert_eq!(
            (f.name.as_str(), f.kind.clone(), f.size),
            ("my file.bin", Kind::File, 5120)
        );
        let d =
            parse_list_line("drwxr-xr-x    2 0        0            4096 Jan 01  2025 Ünïcode dir")
                .expect("ok")
                .expect("entry");
        assert_eq!((d.name.as_str(), d.kind), ("Ünïcode dir", Kind::Dir));
        assert_eq!(parse_list_line("total 8").expect("ok"), None);
        assert!(parse_list_line("this is not a listing").is_err());
    }

    #[test]
    fn names_that_are_not_one_path_component_are_refused() {
        assert!(
            parse_mlsd_line("type=file;size=1;modify=20260102030405; ../../etc/passwd").is_err()
        );
        assert!(parse_mlsd_line("type=dir;modify=20260102030405; ..").is_err());
        assert!(parse_list_line("-rw-r--r-- 1 0 0 5 Nov 24 10:11 a/b").is_err());
    }

    #[test]
    fn join_keeps_single_slashes() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/data", "a b"), "/data/a b");
    }
}
