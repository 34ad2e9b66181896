//! The atomic-write protocol: a destination is the old file or the complete new one, never a
//! partial one, and no temporary file survives a failure.

use conad_fs::{
    AtomicFile, AtomicPath, FsError, Operation, remove_file_if_exists, write_atomic,
    write_atomic_with,
};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conad-fs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn writes_and_replaces_leaving_only_the_destination() {
    let dir = scratch("replace");
    let path = dir.join("metrics.json");
    write_atomic(&path, b"old").unwrap();
    write_atomic(&path, b"new contents").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    assert_eq!(entries(&dir), ["metrics.json"]);
}

#[test]
fn a_failing_fill_keeps_the_old_file_and_removes_the_temporary() {
    let dir = scratch("fail");
    let path = dir.join("scores.csv");
    write_atomic(&path, b"a,b\n1,2\n").unwrap();
    let err = write_atomic_with(&path, |w| {
        w.write_all(b"a,b\n3,")?;
        Err(io::Error::from_raw_os_error(28)) // ENOSPC half-way through a row
    })
    .unwrap_err();
    assert_eq!(err.operation, Operation::Write);
    assert_eq!(err.path, path);
    let msg = err.to_string();
    assert!(
        msg.contains("scores.csv") && msg.contains("disk is full"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"a,b\n1,2\n");
    assert_eq!(entries(&dir), ["scores.csv"]);
}

#[test]
fn an_uncommitted_file_changes_nothing() {
    let dir = scratch("drop");
    let path = dir.join("embeddings.npy");
    {
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(&[0u8; 10_000]).unwrap();
        assert_eq!(
            entries(&dir).len(),
            1,
            "the temporary file exists while writing"
        );
        assert!(!path.exists());
    }
    assert!(entries(&dir).is_empty());
}

#[test]
fn the_temporary_path_keeps_the_extension_and_is_hidden() {
    let dir = scratch("path");
    let target = AtomicPath::new(dir.join("roc.png")).unwrap();
    let tmp = target.temp_path().to_path_buf();
    let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(".roc.tmp-") && name.ends_with(".png"),
        "{name}"
    );
    std::fs::write(&tmp, b"png bytes").unwrap();
    target.commit().unwrap();
    assert_eq!(entries(&dir), ["roc.png"]);
    // Never written: the commit fails and the destination is not created.
    let unwritten = AtomicPath::new(dir.join("hist.svg")).unwrap();
    let err = unwritten.commit().unwrap_err();
    assert_eq!(err.operation, Operation::Write);
    assert_eq!(entries(&dir), ["roc.png"]);
}

#[test]
fn devices_are_written_in_place_not_replaced() {
    write_atomic("/dev/null", b"discarded").unwrap();
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file(), "/dev/null must stay a device");
    let err: FsError = write_atomic("/dev/full", &[1u8; 100_000]).unwrap_err();
    assert_eq!(err.path, Path::new("/dev/full"));
    assert!(err.to_string().contains("disk is full"), "{err}");
}

#[test]
fn errors_name_the_destination() {
    let dir = scratch("missing");
    let path = dir.join("no-such-dir").join("report.json");
    let err = write_atomic(&path, b"{}").unwrap_err();
    assert_eq!(err.operation, Operation::Create);
    assert!(err.to_string().contains("no-such-dir/report.json"), "{err}");
    assert!(
        AtomicFile::create("/").is_err(),
        "a path without a file name"
    );
}

#[test]
fn removing_reports_whether_the_file_existed() {
    let dir = scratch("remove");
    let path = dir.join("task.toml");
    assert!(!remove_file_if_exists(&path).unwrap());
    std::fs::write(&path, b"x").unwrap();
    assert!(remove_file_if_exists(&path).unwrap());
    assert!(!path.exists());
}

#[test]
fn a_symlink_destination_replaces_its_target_not_the_link() {
    let dir = scratch("symlink");
    let target = dir.join("real.csv");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    write_atomic(&link, b"new").unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert_eq!(entries(&dir), ["link.csv", "real.csv"]);
}

#[test]
fn the_replaced_file_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("mode");
    let path = dir.join("secret.json");
    std::fs::write(&path, b"{}").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_atomic(&path, b"{\"a\": 1}").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn concurrent_writers_of_one_file_never_mix_their_bytes() {
    let dir = scratch("threads");
    let path = dir.join("shared.bin");
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let path = &path;
            s.spawn(move || {
                for _ in 0..20 {
                    write_atomic(path, &vec![t; 64 * 1024]).unwrap();
                }
            });
        }
    });
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 64 * 1024);
    assert!(
        bytes.iter().all(|&b| b == bytes[0]),
        "bytes of two writers mixed"
    );
    assert_eq!(entries(&dir), ["shared.bin"]);
}
