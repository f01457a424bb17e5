//! `.npy` tensors for `infer --input/--output`, through the npyz crate.

use super::HarnessError;
use npyz::WriterBuilder;
use std::io::Write;
use std::path::Path;

fn bad(path: &Path, reason: impl Into<String>) -> HarnessError {
    HarnessError::Records {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a C-order float32 (or float64, converted) array: `(dims, values)`.
pub fn read(path: &Path) -> Result<(Vec<usize>, Vec<f32>), HarnessError> {
    let bytes = std::fs::read(path).map_err(|e| HarnessError::Io {
        path: path.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| {
        bad(
            path,
            format!("not a .npy file ({e}); save it with numpy.save"),
        )
    })?;
    if npy.order() != npyz::Order::C {
        return Err(bad(
            path,
            "is in Fortran order; save a C-order array (numpy.ascontiguousarray)",
        ));
    }
    let dims: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => other.descr(),
    };
    let data: Vec<f32> = match dtype.as_str() {
        "<f4" => npy.into_vec::<f32>(),
        "<f8" => npy
            .into_vec::<f64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        other => {
            return Err(bad(
                path,
                format!("holds dtype `{other}`; joulebench reads float32 (`<f4`) arrays"),
            ))
        }
    }
    .map_err(|e| bad(path, format!("truncated or corrupt data: {e}")))?;
    Ok((dims, data))
}

/// Writes a C-order float32 array; the file appears complete or not at all.
pub fn write(path: &Path, dims: &[usize], data: &[f32]) -> Result<(), HarnessError> {
    let io = |e: std::io::Error| HarnessError::Io {
        path: path.to_path_buf(),
        reason: format!("cannot write: {e}"),
    };
    let mut buf = Vec::new();
    {
        let shape: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut buf)
            .begin_nd()
            .map_err(io)?;
        w.extend(data.iter().copied()).map_err(io)?;
        w.finish().map_err(io)?;
    }
    let tmp = path.with_extension("npy.partial");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&buf).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_dims_and_values() {
        let dir = std::env::temp_dir().join(format!("jb-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        let v: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        write(&p, &[2, 3, 4], &v).unwrap();
        assert_eq!(read(&p).unwrap(), (vec![2, 3, 4], v));
        std::fs::write(&p, b"\x93NUMPY garbage").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("a.npy"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
