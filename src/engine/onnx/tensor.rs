//! Constant tensors from ONNX `TensorProto`s: initializers, `Constant` nodes
//! and node-test data, with their payload from `float_data`/`int64_data`,
//! little-endian `raw_data` (any alignment) or an external data file.

use super::proto::{tensor_proto::DataLocation, tensor_proto::DataType, TensorProto};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

/// A constant's values; integers are kept for shapes and axes.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant tensor (row-major, ONNX's dims).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub data: Data,
}

/// Elements a tensor may hold at most (4 GiB of f32): a guard against corrupt dims.
const MAX_ELEMENTS: usize = 1 << 30;

/// Elements a tensor computed at import time may hold (1 GiB of f32): folding
/// absurd shapes is refused before anything is allocated.
pub const MAX_FOLDED: usize = 1 << 28;

impl Tensor {
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// The values as f32 (integers converted), for weights.
    pub fn floats(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as integers, for shapes and axes; `None` for float tensors.
    pub fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            Data::F32(_) => None,
        }
    }

    /// A single value as f32 (a scalar or a one-element tensor).
    pub fn scalar(&self) -> Option<f32> {
        (self.numel() == 1).then(|| self.floats()[0])
    }

    /// The values as integers (floats truncated), for indices.
    pub fn int_values(&self) -> Vec<i64> {
        match &self.data {
            Data::I64(v) => v.clone(),
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    pub fn f32s(dims: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor {
            dims,
            data: Data::F32(v),
        }
    }

    pub fn i64s(dims: Vec<usize>, v: Vec<i64>) -> Tensor {
        Tensor {
            dims,
            data: Data::I64(v),
        }
    }

    pub fn is_int(&self) -> bool {
        matches!(self.data, Data::I64(_))
    }
}

/// Element count of `dims`, refusing negative dims and overflow.
pub fn checked_numel(dims: &[i64]) -> Result<(Vec<usize>, usize), String> {
    let mut n: usize = 1;
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = usize::try_from(d).map_err(|_| format!("negative dimension {d}"))?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| format!("dimensions {dims:?} exceed {MAX_ELEMENTS} elements"))?;
        out.push(d);
    }
    Ok((out, n))
}

/// Decodes `t`; `base` is the model file's directory, for external data
/// (`None` when the model came from memory, which then may not use it).
pub fn decode(t: &TensorProto, base: Option<&Path>) -> Result<Tensor, String> {
    let (dims, n) = checked_numel(&t.dims)?;
    let dtype = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
    let width = match dtype {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Int64 | DataType::Double | DataType::Uint64 => 8,
        DataType::Bool | DataType::Int8 | DataType::Uint8 => 1,
        DataType::Int16 | DataType::Uint16 => 2,
        other => {
            return Err(format!(
                "data type {} is not supported (only FLOAT, DOUBLE, BOOL and integer tensors)",
                other.as_str_name()
            ))
        }
    };
    let external = t.data_location == DataLocation::External as i32;
    let raw: Option<Vec<u8>> = if external {
        Some(read_external(t, base, n * width)?)
    } else if !t.raw_data.is_empty() {
        Some(t.raw_data.clone())
    } else {
        None
    };
    let data = match raw {
        Some(bytes) => {
            if bytes.len() != n * width {
                return Err(format!(
                    "holds {} bytes of data, its dims {dims:?} need {}",
                    bytes.len(),
                    n * width
                ));
            }
            // Chunks copy the bytes out, so unaligned data is read safely.
            let ints = |f: fn(&[u8]) -> i64| Data::I64(bytes.chunks_exact(width).map(f).collect());
            match dtype {
                DataType::Float => Data::F32(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                DataType::Double => Data::F32(
                    bytes
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(le8(c)) as f32)
                        .collect(),
                ),
                DataType::Int32 => ints(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64),
                DataType::Uint32 => ints(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64),
                DataType::Bool | DataType::Uint8 => ints(|c| i64::from(c[0])),
                DataType::Int8 => ints(|c| i64::from(c[0] as i8)),
                DataType::Int16 => ints(|c| i64::from(i16::from_le_bytes([c[0], c[1]]))),
                DataType::Uint16 => ints(|c| i64::from(u16::from_le_bytes([c[0], c[1]]))),
                DataType::Uint64 => ints(|c| u64::from_le_bytes(le8(c)) as i64),
                _ => ints(|c| i64::from_le_bytes(le8(c))),
            }
        }
        None => {
            let (data, len) = match dtype {
                DataType::Float => (Data::F32(t.float_data.clone()), t.float_data.len()),
                DataType::Double => (
                    Data::F32(t.double_data.iter().map(|&v| v as f32).collect()),
                    t.double_data.len(),
                ),
                DataType::Int32
                | DataType::Int16
                | DataType::Int8
                | DataType::Uint16
                | DataType::Uint8
                | DataType::Bool => (
                    Data::I64(t.int32_data.iter().map(|&v| v as i64).collect()),
                    t.int32_data.len(),
                ),
                DataType::Uint32 | DataType::Uint64 => (
                    Data::I64(t.uint64_data.iter().map(|&v| v as i64).collect()),
                    t.uint64_data.len(),
                ),
                _ => (Data::I64(t.int64_data.clone()), t.int64_data.len()),
            };
            if len != n {
                return Err(format!("holds {len} values, its dims {dims:?} need {n}"));
            }
            data
        }
    };
    Ok(Tensor { dims, data })
}

fn le8(c: &[u8]) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    b
}

/// Reads `len` bytes of an external tensor: `location` relative to the model's
/// directory (no absolute paths, no `..`), at `offset`, `length` bytes.
fn read_external(t: &TensorProto, base: Option<&Path>, len: usize) -> Result<Vec<u8>, String> {
    let base = base.ok_or("uses external data, which needs the model loaded from a file")?;
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for kv in &t.external_data {
        match kv.key.as_str() {
            "location" => location = Some(kv.value.clone()),
            "offset" => {
                offset = kv
                    .value
                    .parse()
                    .map_err(|_| format!("external data offset `{}` is not a number", kv.value))?
            }
            "length" => {
                length =
                    Some(kv.value.parse::<usize>().map_err(|_| {
                        format!("external data length `{}` is not a number", kv.value)
                    })?)
            }
            _ => {}
        }
    }
    let location = location.ok_or("uses external data but names no `location`")?;
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "external data location `{location}` must be a path inside the model's directory \
             (absolute paths and `..` are refused)"
        ));
    }
    if let Some(l) = length {
        if l != len {
            return Err(format!(
                "external data length {l} differs from the {len} bytes its dims need"
            ));
        }
    }
    // Symlinks are resolved: a location that is a link out of the model's
    // folder would otherwise read any file the user can read as weights.
    let path = crate::guard::resolve_inside(base, rel, "external data")
        .map_err(|e| format!("{e} (location `{location}`)"))?;
    let (mut f, size) =
        crate::guard::open_regular(&path, "external data").map_err(|e| e.to_string())?;
    if offset.checked_add(len as u64).is_none_or(|end| end > size) {
        return Err(format!(
            "external data {} has {size} bytes, needs {len} at offset {offset}; \
             is the model's data file complete?",
            path.display()
        ));
    }
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("cannot seek in {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() != len {
        return Err(format!(
            "external data {} has {} bytes at offset {offset}, needs {len}",
            path.display(),
            buf.len()
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::onnx::proto::StringStringEntryProto;

    fn float_tensor(dims: &[i64]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            ..Default::default()
        }
    }

    #[test]
    fn raw_data_is_read_little_endian_at_any_alignment() {
        let vals = [1.5f32, -2.25, 3.0e-8, f32::MAX];
        // One leading byte so the payload sits at an odd address in the buffer.
        let mut bytes = vec![0xAAu8];
        for v in vals {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let mut t = float_tensor(&[2, 2]);
        t.raw_data = bytes[1..].to_vec();
        let d = decode(&t, None).unwrap();
        assert_eq!(d.dims, vec![2, 2]);
        assert_eq!(d.data, Data::F32(vals.to_vec()));
    }

    #[test]
    fn float_data_and_int64_data_are_read_and_counts_checked() {
        let mut t = float_tensor(&[3]);
        t.float_data = vec![1.0, 2.0, 3.0];
        assert_eq!(decode(&t, None).unwrap().floats(), vec![1.0, 2.0, 3.0]);
        t.float_data.pop();
        assert!(decode(&t, None).unwrap_err().contains("holds 2 values"));
        let t = TensorProto {
            dims: vec![2],
            data_type: DataType::Int64 as i32,
            raw_data: [7i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        };
        assert_eq!(decode(&t, None).unwrap().ints(), Some(&[7i64, -1][..]));
    }

    #[test]
    fn corrupt_dims_and_types_are_errors() {
        let t = float_tensor(&[-1, 4]);
        assert!(decode(&t, None).unwrap_err().contains("negative"));
        let t = float_tensor(&[1 << 40, 1 << 40]);
        assert!(decode(&t, None).unwrap_err().contains("exceed"));
        let mut t = float_tensor(&[1]);
        t.data_type = DataType::Float16 as i32;
        assert!(decode(&t, None).unwrap_err().contains("FLOAT16"));
        let t = TensorProto {
            dims: vec![3],
            data_type: DataType::Int8 as i32,
            raw_data: vec![1, 0xff, 7],
            ..Default::default()
        };
        assert_eq!(decode(&t, None).unwrap().ints(), Some(&[1i64, -1, 7][..]));
    }

    fn external(location: &str, offset: usize) -> TensorProto {
        let mut t = float_tensor(&[2]);
        t.data_location = DataLocation::External as i32;
        t.external_data = vec![
            StringStringEntryProto {
                key: "location".into(),
                value: location.into(),
            },
            StringStringEntryProto {
                key: "offset".into(),
                value: offset.to_string(),
            },
        ];
        t
    }

    #[test]
    fn external_data_is_read_relative_to_the_model_and_escapes_are_refused() {
        let dir = std::env::temp_dir().join(format!("jb-ext-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("w")).unwrap();
        let mut bytes = vec![0u8; 3];
        bytes.extend_from_slice(&4.0f32.to_le_bytes());
        bytes.extend_from_slice(&(-8.5f32).to_le_bytes());
        std::fs::write(dir.join("w/data.bin"), &bytes).unwrap();
        let d = decode(&external("w/data.bin", 3), Some(&dir)).unwrap();
        assert_eq!(d.floats(), vec![4.0, -8.5]);
        // Past the end of the file.
        let e = decode(&external("w/data.bin", 4), Some(&dir)).unwrap_err();
        assert!(e.contains("needs 8"), "{e}");
        for bad in ["../secret.bin", "/etc/passwd", "w/../../x"] {
            let e = decode(&external(bad, 0), Some(&dir)).unwrap_err();
            assert!(e.contains("refused"), "{bad}: {e}");
        }
        let e = decode(&external("w/data.bin", 3), None).unwrap_err();
        assert!(e.contains("from a file"), "{e}");
        // A symlink out of the model's folder is refused, one inside is followed.
        std::fs::write(dir.join("../jb-ext-secret"), &bytes).unwrap();
        let _ = std::fs::remove_file(dir.join("link_out"));
        let _ = std::fs::remove_file(dir.join("link_in"));
        std::os::unix::fs::symlink(dir.join("../jb-ext-secret"), dir.join("link_out")).unwrap();
        std::os::unix::fs::symlink("w/data.bin", dir.join("link_in")).unwrap();
        let e = decode(&external("link_out", 3), Some(&dir)).unwrap_err();
        assert!(e.contains("outside") && e.contains("link_out"), "{e}");
        assert_eq!(
            decode(&external("link_in", 3), Some(&dir))
                .unwrap()
                .floats(),
            vec![4.0, -8.5]
        );
        // A FIFO is refused without blocking.
        let _ = std::fs::remove_file(dir.join("w/pipe"));
        nix::unistd::mkfifo(&dir.join("w/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = decode(&external("w/pipe", 0), Some(&dir)).unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
