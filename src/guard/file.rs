//! Opening a file a user or the system names: only regular files are read,
//! never more than the format can hold, and paths that must stay under a
//! root (ONNX external data under the model's folder) are resolved first.
//!
//! The file is opened with `O_NONBLOCK` and checked with `fstat` on the open
//! descriptor, so a FIFO neither blocks the open nor slips in between a check
//! and the open; `O_NONBLOCK` has no effect on regular files.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a named file was not read. Every variant is the user's input at fault.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FileError {
    /// Nothing at the path (a dangling symlink says where it points).
    #[error("{what} {}: {reason}", path.display())]
    Missing {
        what: String,
        path: PathBuf,
        reason: String,
    },
    /// A FIFO, device, socket or directory where a file is expected.
    #[error(
        "{what} {}: is {kind}, not a regular file; name a regular file (reading it could block \
         or never end)",
        path.display()
    )]
    NotRegular {
        what: String,
        path: PathBuf,
        kind: &'static str,
    },
    /// Larger than the format can hold.
    #[error(
        "{what} {}: {size} bytes, more than the {cap} bytes {hint}",
        path.display()
    )]
    TooLarge {
        what: String,
        path: PathBuf,
        size: u64,
        cap: u64,
        hint: String,
    },
    /// A path that resolves outside the folder it must stay in.
    #[error(
        "{what} {}: resolves to {}, outside {}; keep it inside that folder (symlinks out of it \
         are refused)",
        path.display(),
        resolved.display(),
        root.display()
    )]
    Outside {
        what: String,
        path: PathBuf,
        resolved: PathBuf,
        root: PathBuf,
    },
    /// Opening or reading failed (permission, a symlink loop, an I/O error).
    #[error("{what} {}: {reason}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        reason: String,
        kind: std::io::ErrorKind,
    },
}

impl FileError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Missing { path, .. }
            | FileError::NotRegular { path, .. }
            | FileError::TooLarge { path, .. }
            | FileError::Outside { path, .. }
            | FileError::Io { path, .. } => path,
        }
    }

    /// The message without the leading "WHAT PATH: ", for callers whose own
    /// error already names the file.
    pub fn detail(&self) -> String {
        let full = self.to_string();
        let (what, path) = match self {
            FileError::Missing { what, path, .. }
            | FileError::NotRegular { what, path, .. }
            | FileError::TooLarge { what, path, .. }
            | FileError::Outside { what, path, .. }
            | FileError::Io { what, path, .. } => (what, path),
        };
        let prefix = format!("{what} {}: ", path.display());
        full.strip_prefix(&prefix)
            .map_or(full.clone(), str::to_string)
    }

    /// Whether the file was absent (callers that treat a missing optional
    /// file as "not present" test this).
    pub fn is_missing(&self) -> bool {
        matches!(self, FileError::Missing { .. })
    }

    /// Whether the process lacked permission.
    pub fn is_permission(&self) -> bool {
        matches!(self, FileError::Io { kind, .. } if *kind == std::io::ErrorKind::PermissionDenied)
    }
}

impl From<FileError> for std::io::Error {
    fn from(e: FileError) -> Self {
        let kind = match &e {
            FileError::Missing { .. } => std::io::ErrorKind::NotFound,
            FileError::Io { kind, .. } => *kind,
            _ => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, e)
    }
}

fn kind_name(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn open_error(what: &str, path: &Path, e: std::io::Error) -> FileError {
    if e.kind() == std::io::ErrorKind::NotFound {
        let reason = match std::fs::read_link(path) {
            Ok(target) => format!(
                "is a symlink to {}, which does not exist; fix the link or name the file itself",
                target.display()
            ),
            Err(_) => "does not exist; check the path".to_string(),
        };
        return FileError::Missing {
            what: what.into(),
            path: path.into(),
            reason,
        };
    }
    let reason = if e.raw_os_error() == Some(libc::ELOOP) {
        "is a symlink loop (too many levels of symbolic links); fix the link".to_string()
    } else if e.kind() == std::io::ErrorKind::PermissionDenied {
        "permission denied; make it readable by this user".to_string()
    } else {
        format!("cannot open: {e}")
    };
    FileError::Io {
        what: what.into(),
        path: path.into(),
        reason,
        kind: e.kind(),
    }
}

/// Checks, before any work, that writing `path` (a new file renamed into
/// place) replaces nothing but a regular file: a FIFO, device, directory or
/// symlink there is the user's, and renaming over it would destroy it.
pub fn check_output(path: &Path, what: &str) -> Result<(), FileError> {
    let refuse = |kind: &'static str| {
        Err(FileError::Io {
            what: what.into(),
            path: path.into(),
            reason: format!(
                "is {kind}; joulebench writes a new regular file and never replaces anything                  else: name a regular file or a new path"
            ),
            kind: std::io::ErrorKind::AlreadyExists,
        })
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => refuse("a symlink"),
        Ok(m) if !m.file_type().is_file() => refuse(kind_name(&m.file_type())),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if parent.is_dir() {
                Ok(())
            } else {
                Err(FileError::Missing {
                    what: what.into(),
                    path: path.into(),
                    reason: format!(
                        "its folder {} does not exist; create it first",
                        parent.display()
                    ),
                })
            }
        }
        Err(e) => Err(open_error(what, path, e)),
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed), with
/// its size. `what` names the file in messages ("ONNX model", "meter log").
pub fn open_regular(path: &Path, what: &str) -> Result<(File, u64), FileError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| open_error(what, path, e))?;
    let meta = f.metadata().map_err(|e| FileError::Io {
        what: what.into(),
        path: path.into(),
        reason: format!("cannot stat: {e}"),
        kind: e.kind(),
    })?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular {
            what: what.into(),
            path: path.into(),
            kind: kind_name(&meta.file_type()),
        });
    }
    Ok((f, meta.len()))
}

/// Reads the regular file `path` whole, refusing it when it holds more than
/// `cap` bytes. `hint` completes "more than the CAP bytes ..." with what the
/// format can hold and the fix.
pub fn read_capped(path: &Path, what: &str, cap: u64, hint: &str) -> Result<Vec<u8>, FileError> {
    let (f, size) = open_regular(path, what)?;
    let too_large = |size| FileError::TooLarge {
        what: what.into(),
        path: path.into(),
        size,
        cap,
        hint: hint.into(),
    };
    if size > cap {
        return Err(too_large(size));
    }
    // sysfs and procfs report sizes that are not their content's: read at most
    // one byte past the cap, whatever the size said.
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
    f.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| FileError::Io {
            what: what.into(),
            path: path.into(),
            reason: format!("cannot read: {e}"),
            kind: e.kind(),
        })?;
    if buf.len() as u64 > cap {
        return Err(too_large(buf.len() as u64));
    }
    Ok(buf)
}

/// [`read_capped`] for text; invalid UTF-8 is an error naming the file.
pub fn read_capped_string(
    path: &Path,
    what: &str,
    cap: u64,
    hint: &str,
) -> Result<String, FileError> {
    let bytes = read_capped(path, what, cap, hint)?;
    String::from_utf8(bytes).map_err(|e| FileError::Io {
        what: what.into(),
        path: path.into(),
        reason: format!(
            "is not UTF-8 text (byte {}); is this the right file?",
            e.utf8_error().valid_up_to()
        ),
        kind: std::io::ErrorKind::InvalidData,
    })
}

/// Resolves `root.join(rel)` through every symlink and returns it if it stays
/// inside `root` (itself resolved). `rel` must be relative.
pub fn resolve_inside(root: &Path, rel: &Path, what: &str) -> Result<PathBuf, FileError> {
    let joined = root.join(rel);
    if rel.is_absolute() {
        return Err(FileError::Outside {
            what: what.into(),
            path: joined,
            resolved: rel.into(),
            root: root.into(),
        });
    }
    let canon = |p: &Path| p.canonicalize().map_err(|e| open_error(what, p, e));
    let root_c = canon(root)?;
    let resolved = canon(&joined)?;
    if !resolved.starts_with(&root_c) {
        return Err(FileError::Outside {
            what: what.into(),
            path: joined,
            resolved,
            root: root_c,
        });
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jb-guard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn regular_files_are_read_and_capped() {
        let d = dir("cap");
        let p = d.join("f.txt");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(
            read_capped_string(&p, "test file", 5, "x").unwrap(),
            "hello"
        );
        let e = read_capped(&p, "test file", 4, "a test holds; shorten it").unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                FileError::TooLarge {
                    size: 5,
                    cap: 4,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("f.txt") && msg.contains("shorten it"), "{msg}");
        assert!(
            e.detail().starts_with("5 bytes, more than"),
            "{}",
            e.detail()
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = dir("fifo");
        let p = d.join("pipe");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Without O_NONBLOCK this open would wait for a writer forever.
        let e = read_capped(&p, "suite", 1 << 20, "x").unwrap_err();
        assert!(
            matches!(
                e,
                FileError::NotRegular {
                    kind: "a FIFO (named pipe)",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn devices_directories_and_links_to_devices_are_refused() {
        let d = dir("dev");
        for (p, kind) in [
            (PathBuf::from("/dev/zero"), "a character device"),
            (d.clone(), "a directory"),
        ] {
            let e = read_capped(&p, "model", 1 << 20, "x").unwrap_err();
            assert!(
                matches!(e, FileError::NotRegular { kind: k, .. } if k == kind),
                "{e}"
            );
        }
        let link = d.join("zero");
        symlink("/dev/zero", &link).unwrap();
        let e = read_capped(&link, "model", 1 << 20, "x").unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }

    #[test]
    fn dangling_links_and_loops_say_what_they_are() {
        let d = dir("dangle");
        let dangling = d.join("dangling");
        symlink(d.join("nowhere"), &dangling).unwrap();
        let e = read_capped(&dangling, "meter log", 10, "x").unwrap_err();
        assert!(
            e.is_missing() && e.to_string().contains("symlink to"),
            "{e}"
        );
        let a = d.join("a");
        let b = d.join("b");
        symlink(&b, &a).unwrap();
        symlink(&a, &b).unwrap();
        let e = read_capped(&a, "meter log", 10, "x").unwrap_err();
        assert!(e.to_string().contains("symlink loop"), "{e}");
    }

    #[test]
    fn paths_leaving_the_root_through_symlinks_are_refused() {
        let d = dir("root");
        let model = d.join("model");
        std::fs::create_dir_all(model.join("w")).unwrap();
        std::fs::write(model.join("w/data.bin"), [1u8, 2]).unwrap();
        std::fs::write(d.join("secret"), "x").unwrap();
        symlink(d.join("secret"), model.join("link_out")).unwrap();
        symlink("w/data.bin", model.join("link_in")).unwrap();
        let ok = resolve_inside(&model, Path::new("w/data.bin"), "external data").unwrap();
        assert!(ok.ends_with("model/w/data.bin"));
        let ok = resolve_inside(&model, Path::new("link_in"), "external data").unwrap();
        assert!(ok.ends_with("model/w/data.bin"));
        let e = resolve_inside(&model, Path::new("link_out"), "external data").unwrap_err();
        assert!(matches!(e, FileError::Outside { .. }), "{e}");
        assert!(e.to_string().contains("link_out"), "{e}");
        let e = resolve_inside(&model, Path::new("/etc/passwd"), "external data").unwrap_err();
        assert!(matches!(e, FileError::Outside { .. }), "{e}");
        let e = resolve_inside(&model, Path::new("../secret"), "external data").unwrap_err();
        assert!(matches!(e, FileError::Outside { .. }), "{e}");
    }
}
