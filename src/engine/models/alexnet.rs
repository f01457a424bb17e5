//! AlexNet as in torchvision (the single-tower "one weird trick" variant):
//! convolutions with bias and ReLU, no BatchNorm, node names `features.N` and
//! `classifier.N`; the 6x6 adaptive average pool, an identity at 224x224, is
//! left out.

use super::{Builder, Init};
use crate::engine::graph::{Graph, Window};

pub(super) fn build(name: &str, init: Init) -> Graph {
    let mut b = Builder::new(name, (224, 224, 3), init);
    let x = b.input();
    let x = b.conv("features.0", x, 64, Window::square(11, 4, 2), 1, true);
    let x = b.relu("features.1", x);
    let x = b.max_pool("features.2", x, Window::square(3, 2, 0));
    let x = b.conv("features.3", x, 192, Window::square(5, 1, 2), 1, true);
    let x = b.relu("features.4", x);
    let x = b.max_pool("features.5", x, Window::square(3, 2, 0));
    let x = b.conv("features.6", x, 384, Window::square(3, 1, 1), 1, true);
    let x = b.relu("features.7", x);
    let x = b.conv("features.8", x, 256, Window::square(3, 1, 1), 1, true);
    let x = b.relu("features.9", x);
    let x = b.conv("features.10", x, 256, Window::square(3, 1, 1), 1, true);
    let x = b.relu("features.11", x);
    let x = b.max_pool("features.12", x, Window::square(3, 2, 0));
    let x = b.flatten("flatten", x);
    let x = b.dense("classifier.1", x, 4096);
    let x = b.relu("classifier.2", x);
    let x = b.dense("classifier.4", x, 4096);
    let x = b.relu("classifier.5", x);
    b.dense("classifier.6", x, 1000);
    b.finish()
}
