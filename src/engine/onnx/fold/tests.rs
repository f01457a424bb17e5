use super::dims::slice_range;
use super::*;

fn node(op: &str, outputs: usize) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        output: (0..outputs).map(|i| format!("y{i}")).collect(),
        ..Default::default()
    }
}

fn run(op: &str, ins: Vec<Tensor>) -> R<Vec<Tensor>> {
    let n = node(op, 1);
    let ins: Vec<Option<Rc<Tensor>>> = ins.into_iter().map(|t| Some(Rc::new(t))).collect();
    fold(&n, &Attrs::of(&n), &ins, 17).map(|o| o.expect("folds"))
}

#[test]
fn shape_arithmetic_of_an_exporter_folds() {
    // Shape -> Gather(0) -> Unsqueeze -> Concat with [-1] -> Reshape.
    let x = Tensor::f32s(vec![2, 3, 4], (0..24).map(|v| v as f32).collect());
    let s = run("Shape", vec![x.clone()]).unwrap().remove(0);
    assert_eq!(s.ints().unwrap(), &[2, 3, 4]);
    let g = run("Gather", vec![s, Tensor::i64s(vec![], vec![0])])
        .unwrap()
        .remove(0);
    assert_eq!(
        (g.dims.clone(), g.ints().unwrap().to_vec()),
        (vec![], vec![2])
    );
    let u = run("Unsqueeze", vec![g, Tensor::i64s(vec![1], vec![0])])
        .unwrap()
        .remove(0);
    let c = run("Concat", vec![u, Tensor::i64s(vec![1], vec![-1])]);
    // Concat needs its axis attribute: default 0 here.
    let c = c.unwrap().remove(0);
    assert_eq!(c.ints().unwrap(), &[2, -1]);
    let r = run("Reshape", vec![x, c]).unwrap().remove(0);
    assert_eq!(r.dims, vec![2, 12]);
}

#[test]
fn absurd_shapes_are_refused_before_allocating() {
    let e = run(
        "ConstantOfShape",
        vec![Tensor::i64s(vec![1], vec![1 << 40])],
    )
    .unwrap_err();
    assert!(e.contains("exceed") || e.contains("more than"), "{e}");
    let e = run(
        "ConstantOfShape",
        vec![Tensor::i64s(vec![2], vec![1 << 20, 1 << 20])],
    )
    .unwrap_err();
    assert!(e.contains("exceed") || e.contains("more than"), "{e}");
    let e = run(
        "Range",
        vec![
            Tensor::i64s(vec![], vec![0]),
            Tensor::i64s(vec![], vec![i64::MAX]),
            Tensor::i64s(vec![], vec![1]),
        ],
    )
    .unwrap_err();
    assert!(e.contains("exceed") || e.contains("more than"), "{e}");
    let e = run(
        "Expand",
        vec![
            Tensor::f32s(vec![1], vec![1.0]),
            Tensor::i64s(vec![3], vec![1 << 15, 1 << 15, 4]),
        ],
    )
    .unwrap_err();
    assert!(e.contains("exceed") || e.contains("more than"), "{e}");
}

#[test]
fn arithmetic_broadcasts_like_numpy_and_slices_clamp() {
    let p = Tensor::i64s(vec![2, 1], vec![1, 2]);
    let q = Tensor::i64s(vec![3], vec![10, 20, 30]);
    let s = run("Add", vec![p.clone(), q.clone()]).unwrap().remove(0);
    assert_eq!(s.dims, vec![2, 3]);
    assert_eq!(s.ints().unwrap(), &[11, 21, 31, 12, 22, 32]);
    assert!(run("Add", vec![Tensor::i64s(vec![2], vec![1, 2]), q]).is_err());
    assert_eq!(slice_range(1, i64::MAX, 1, 5).unwrap(), (1, 4));
    assert_eq!(slice_range(-1, i64::MIN, -1, 5).unwrap(), (4, 5));
    assert_eq!(slice_range(0, 10, 3, 5).unwrap(), (0, 2));
    assert_eq!(
        resolve_shape(&[2, 3, 4], &[0, -1], false).unwrap(),
        vec![2, 12]
    );
    assert!(resolve_shape(&[2, 3, 4], &[5, -1], false).is_err());
    let t = Tensor::f32s(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let tt = transpose(&t, &[1, 0]);
    assert_eq!(tt.floats(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(squeeze_dims(&[1, 3, 1], None, false).unwrap(), vec![3]);
    assert_eq!(
        squeeze_dims(&[3], Some(&[0, -1]), true).unwrap(),
        vec![1, 3, 1]
    );
}
