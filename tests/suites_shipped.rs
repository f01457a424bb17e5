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
            "graviton",
            "jetson-orin",
            "jetson-xavier",
            "paper-resnet50",
            "raspberry-pi4",
            "raspberry-pi5",
            "smoke"
        ]
    );
    let smoke = Suite::load(&dir.join("smoke.toml")).unwrap();
    let pts = smoke.points();
    assert!(pts.iter().all(|p| p.model == "tiny" && p.threads <= 2));
    // 128 points: 4 threads x 4 batches x 2 conv x 2 fusion x 2 caches
    let paper = std::fs::read_to_string(dir.join("paper-resnet50.toml")).unwrap();
    let paper = Suite::parse_with_cores(&paper, &dir.join("paper-resnet50.toml"), 8).unwrap();
    assert_eq!(paper.points().len(), 128);
}
