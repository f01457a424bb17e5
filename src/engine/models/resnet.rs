//! ResNet v1.5 as in torchvision: BasicBlock for 18/34 layers, Bottleneck with
//! the stride on its 3x3 convolution for 50/101/152, a 1x1 strided
//! convolution and BatchNorm as the projection shortcut.

use super::{Builder, Init, GAMMA_RESIDUAL};
use crate::engine::graph::{Graph, ValueId, Window};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Basic,
    Bottleneck,
}

impl Block {
    fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

pub(super) fn build(name: &str, depth: usize, init: Init) -> Graph {
    let (block, layers) = match depth {
        18 => (Block::Basic, [2, 2, 2, 2]),
        34 => (Block::Basic, [3, 4, 6, 3]),
        50 => (Block::Bottleneck, [3, 4, 6, 3]),
        101 => (Block::Bottleneck, [3, 4, 23, 3]),
        152 => (Block::Bottleneck, [3, 8, 36, 3]),
        _ => unreachable!("no ResNet-{depth}"),
    };
    let mut b = Builder::new(name, (224, 224, 3), init);
    let x = b.input();
    let x = b.conv_bn("conv1", "bn1", x, 64, Window::square(7, 2, 3), 1);
    let x = b.relu("relu", x);
    let mut x = b.max_pool("maxpool", x, Window::square(3, 2, 1));
    let mut inplanes = 64;
    for (li, (&blocks, planes)) in layers.iter().zip([64, 128, 256, 512]).enumerate() {
        for bi in 0..blocks {
            let stride = if li > 0 && bi == 0 { 2 } else { 1 };
            let p = format!("layer{}.{bi}", li + 1);
            x = match block {
                Block::Basic => basic(&mut b, &p, x, planes, stride),
                Block::Bottleneck => bottleneck(&mut b, &p, x, planes, stride),
            };
            inplanes = planes * block.expansion();
        }
    }
    let x = b.global_avg_pool("avgpool", x);
    let x = b.flatten("flatten", x);
    debug_assert_eq!(b.shape(x).c, inplanes);
    b.dense("fc", x, 1000);
    b.finish()
}

/// The identity, or a strided 1x1 convolution and BatchNorm when the block
/// changes the resolution or the channel count.
fn shortcut(b: &mut Builder, p: &str, x: ValueId, cout: usize, stride: usize) -> ValueId {
    if stride == 1 && b.shape(x).c == cout {
        return x;
    }
    b.conv_bn(
        &format!("{p}.downsample.0"),
        &format!("{p}.downsample.1"),
        x,
        cout,
        Window::square(1, stride, 0),
        1,
    )
}

/// Residual tail: BatchNorm with a small gamma, add the shortcut, ReLU.
fn tail(b: &mut Builder, p: &str, y: ValueId, bn: &str, short: ValueId, relu: &str) -> ValueId {
    let y = b.batch_norm(&format!("{p}.{bn}"), y, GAMMA_RESIDUAL);
    let y = b.add(&format!("{p}.add"), y, short);
    b.relu(&format!("{p}.{relu}"), y)
}

fn basic(b: &mut Builder, p: &str, x: ValueId, planes: usize, stride: usize) -> ValueId {
    let short = shortcut(b, p, x, planes, stride);
    let y = b.conv_bn(
        &format!("{p}.conv1"),
        &format!("{p}.bn1"),
        x,
        planes,
        Window::square(3, stride, 1),
        1,
    );
    let y = b.relu(&format!("{p}.relu1"), y);
    let y = b.conv(
        &format!("{p}.conv2"),
        y,
        planes,
        Window::square(3, 1, 1),
        1,
        false,
    );
    tail(b, p, y, "bn2", short, "relu2")
}

fn bottleneck(b: &mut Builder, p: &str, x: ValueId, planes: usize, stride: usize) -> ValueId {
    let out = planes * Block::Bottleneck.expansion();
    let short = shortcut(b, p, x, out, stride);
    let y = b.conv_bn(
        &format!("{p}.conv1"),
        &format!("{p}.bn1"),
        x,
        planes,
        Window::square(1, 1, 0),
        1,
    );
    let y = b.relu(&format!("{p}.relu1"), y);
    let y = b.conv_bn(
        &format!("{p}.conv2"),
        &format!("{p}.bn2"),
        y,
        planes,
        Window::square(3, stride, 1),
        1,
    );
    let y = b.relu(&format!("{p}.relu2"), y);
    let y = b.conv(
        &format!("{p}.conv3"),
        y,
        out,
        Window::square(1, 1, 0),
        1,
        false,
    );
    tail(b, p, y, "bn3", short, "relu3")
}
