//! Every suite shipped in experiments/ is valid (on a machine with the cores
//! it was written for) and the smoke suite stays small.

use joulebench::harness::suite::Suite;
use std::path::Path;

#[test]
fn shipped_suites_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            if stem == "peers-resnet50" && !dir.join("models/resnet50.onnx").exists() {
                // Its model is made, not shipped (tests/peers.rs validates it
                // with one): the only problem may be the missing file.
                let e = Suite::parse_with_cores(&text, &p, 64).unwrap_err();
                let msg = e.to_string();
                assert!(
                    msg.contains("1 problem(s)") && msg.contains("resnet50.onnx` does not exist"),
                    "{msg}"
                );
                names.push(stem);
                continue;
            }
            let s = Suite::parse_with_cores(&text, &p, 64)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(
                p.file_stem().unwrap().to_str().unwrap(),
                s.name,
                "a suite's name matches its file"
            );
            assert!(!s.points().is_empty());
            names.push(s.name);
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "ci",
            "graviton",
            "jetson-orin",
            "jetson-xavier",
            "paper-resnet50",
            "peers-resnet50",
            "raspberry-pi4",
            "raspberry-pi5",
            "smoke"
        ]
    );
    let smoke = Suite::load(&dir.join("smoke.toml")).unwrap();
    let pts = smoke.points();
    assert!(pts.iter().all(|p| p.model == "tiny" && p.threads <= 2));
    // The quick start shows J/image on any machine.
    assert!(smoke
        .experiments
        .iter()
        .all(|e| e.measurement.power.source == joulebench::power::SourceKind::Auto));
    // The regression gate: few points, one thread, small models.
    let ci = Suite::load(&dir.join("ci.toml")).unwrap();
    let pts = ci.points();
    assert!(pts.len() <= 8, "{}", pts.len());
    assert!(pts.iter().all(
        |p| p.threads == 1 && ["tiny", "mobilenet_v1", "resnet18"].contains(&p.model.as_str())
    ));
    // 128 points: 4 threads x 4 batches x 2 conv x 2 fusion x 2 caches
    let paper = std::fs::read_to_string(dir.join("paper-resnet50.toml")).unwrap();
    let paper = Suite::parse_with_cores(&paper, &dir.join("paper-resnet50.toml"), 8).unwrap();
    assert_eq!(paper.points().len(), 128);
}

#[test]
fn the_readme_example_suite_is_valid() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = readme[start..].find("```").unwrap();
    let s = Suite::parse_with_cores(&readme[start..start + len], Path::new("README.md"), 8)
        .unwrap_or_else(|e| panic!("{e}"));
    // 3 threads x 2 batches x 2 caches x 3 loops x 2 conv x 2 fusion = 144,
    // minus threads=4,batch=1 (24) and im2col with jr (24, of which 4 overlap)
    assert_eq!(s.points().len(), 144 - 24 - 24 + 4);
}
