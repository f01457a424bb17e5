//! VGG-16 (configuration D) with a BatchNorm after every convolution (the
//! convolutions have no bias), torchvision's node numbering of `vgg16_bn`
//! (`features.N`, `classifier.N`); the 7x7 adaptive average pool, an identity
//! at 224x224, is left out.

use super::{Builder, Init};
use crate::engine::graph::Window;

const CFG: &[Option<usize>] = &[
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];

pub(super) fn build(name: &str, init: Init) -> crate::engine::graph::Graph {
    let mut b = Builder::new(name, (224, 224, 3), init);
    let mut x = b.input();
    let mut i = 0;
    for layer in CFG {
        match *layer {
            Some(c) => {
                x = b.conv_bn(
                    &format!("features.{i}"),
                    &format!("features.{}", i + 1),
                    x,
                    c,
                    Window::square(3, 1, 1),
                    1,
                );
                x = b.relu(&format!("features.{}", i + 2), x);
                i += 3;
            }
            None => {
                x = b.max_pool(&format!("features.{i}"), x, Window::square(2, 2, 0));
                i += 1;
            }
        }
    }
    let x = b.flatten("flatten", x);
    let x = b.dense("classifier.0", x, 4096);
    let x = b.relu("classifier.1", x);
    let x = b.dense("classifier.3", x, 4096);
    let x = b.relu("classifier.4", x);
    b.dense("classifier.6", x, 1000);
    b.finish()
}
