//! Borrowed strided matrix views. Strides are in elements; a row-major matrix with
//! leading dimension `ld` has `rs = ld, cs = 1`.

use crate::engine::EngineError;

/// Read-only strided view of an f32 matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// Mutable strided view of an f32 matrix whose elements do not overlap.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// Largest index a `rows x cols` view with strides `rs, cs` touches, plus one.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    let r = (rows - 1).checked_mul(rs)?;
    let c = (cols - 1).checked_mul(cs)?;
    r.checked_add(c)?.checked_add(1)
}

fn check_view(
    what: &'static str,
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<(), EngineError> {
    if rows == 0 || cols == 0 {
        return Err(EngineError::param(
            what,
            format!("matrix must be at least 1x1, got {rows}x{cols}"),
        ));
    }
    match extent(rows, cols, rs, cs) {
        Some(e) if e <= len => Ok(()),
        _ => Err(EngineError::Shape(format!(
            "{what}: a {rows}x{cols} view with strides ({rs}, {cs}) needs more than the {len} elements given"
        ))),
    }
}

impl<'a> MatRef<'a> {
    /// A strided view; fails if the view would read past `data`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Result<Self, EngineError> {
        check_view("matrix", data.len(), rows, cols, rs, cs)?;
        Ok(Self {
            data,
            rows,
            cols,
            rs,
            cs,
        })
    }

    /// A dense row-major view (`rs = cols`, `cs = 1`).
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, EngineError> {
        Self::new(data, rows, cols, cols, 1)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Element (i, j); panics when out of range, like slice indexing.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols, "index out of range");
        self.data[i * self.rs + j * self.cs]
    }

    /// The transposed view (no copy).
    pub fn t(&self) -> MatRef<'a> {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

impl<'a> MatMut<'a> {
    /// A strided mutable view; fails if it would write past `data` or if two
    /// (i, j) pairs would share one element (parallel stores would race).
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Result<Self, EngineError> {
        check_view("output matrix", data.len(), rows, cols, rs, cs)?;
        let disjoint = (rows == 1 || rs > 0)
            && (cols == 1 || cs > 0)
            && (rows == 1 || cols == 1 || rs >= cs * cols || cs >= rs * rows);
        if !disjoint {
            return Err(EngineError::Shape(format!(
                "output matrix strides ({rs}, {cs}) make elements of a {rows}x{cols} view overlap"
            )));
        }
        Ok(Self {
            data,
            rows,
            cols,
            rs,
            cs,
        })
    }

    /// A dense row-major view.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self, EngineError> {
        Self::new(data, rows, cols, cols, 1)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    pub fn as_ref(&self) -> MatRef<'_> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }
    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.data.as_mut_ptr()
    }
}
