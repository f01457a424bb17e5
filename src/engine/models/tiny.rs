//! A tiny CNN for tests (32x24x3 in, 10 classes out, about 1.5 MFLOP): small
//! enough for a naive reference, and it exercises every op kind and every
//! convolution feature the engine supports.
//!
//! ```text
//! input 32x24x3
//! stem.conv (3x3, bias, no BN) -> stem.relu                       32x24x8
//! block: conv1+bn1+relu1 -> conv2+bn2 -> add(stem) -> relu2        32x24x8
//! pool: MaxPool 3x3 s2 p1                                          16x12x8
//!   a: dw.conv (depthwise 3x3) bn relu6 -> pw.conv (1x1) bn relu6  16x12x8
//!   b: grouped.conv (3x3, groups 2) bn relu
//!      -> dilated.conv (3x3, dilation 2) bn relu                   16x12x8
//!   c: avgpool 3x3 s1 p1, count_include_pad false                  16x12x8
//! concat(a, b, c)                                                  16x12x24
//! down.conv (3x2, stride 2, pads t0 l1 b1 r0) bn relu              8x6x16
//!   head.avgpool 3x3 s2 p1, count_include_pad true                 4x3x16
//!   -> head.flatten -> head.fc1 (192 -> 16) -> head.relu           1x1x16
//!   head.gap (global average pool)                                 1x1x16
//! head.concat -> fc (32 -> 10) -> softmax                          1x1x10
//! ```

use super::{Builder, Init, GAMMA_RESIDUAL};
use crate::engine::gemm::Activation;
use crate::engine::graph::{Graph, PoolKind, Window};

pub(super) fn build(name: &str, init: Init) -> Graph {
    let mut b = Builder::new(name, (32, 24, 3), init);
    let k3 = Window::square(3, 1, 1);
    let x = b.input();

    let x = b.conv("stem.conv", x, 8, k3, 1, true);
    let stem = b.relu("stem.relu", x);

    let y = b.conv_bn("block.conv1", "block.bn1", stem, 8, k3, 1);
    let y = b.relu("block.relu1", y);
    let y = b.conv("block.conv2", y, 8, k3, 1, false);
    let y = b.batch_norm("block.bn2", y, GAMMA_RESIDUAL);
    let y = b.add("block.add", y, stem);
    let y = b.relu("block.relu2", y);

    let pooled = b.max_pool("pool", y, Window::square(3, 2, 1));

    let a = b.conv_bn("dw.conv", "dw.bn", pooled, 8, k3, 8);
    let a = b.activation("dw.relu6", a, Activation::Relu6);
    let a = b.conv_bn("pw.conv", "pw.bn", a, 8, Window::square(1, 1, 0), 1);
    let a = b.activation("pw.relu6", a, Activation::Relu6);

    let c = b.conv_bn("grouped.conv", "grouped.bn", pooled, 12, k3, 2);
    let c = b.relu("grouped.relu", c);
    let dilated = Window {
        dilation_h: 2,
        dilation_w: 2,
        ..Window::square(3, 1, 2)
    };
    let c = b.conv_bn("dilated.conv", "dilated.bn", c, 8, dilated, 1);
    let c = b.relu("dilated.relu", c);

    let avg = PoolKind::Avg {
        count_include_pad: false,
    };
    let p = b.pool("avgpool", pooled, avg, k3);

    let x = b.concat("concat", &[a, c, p]);

    let down = Window {
        kh: 3,
        kw: 2,
        stride_h: 2,
        stride_w: 2,
        pad_top: 0,
        pad_left: 1,
        pad_bottom: 1,
        pad_right: 0,
        dilation_h: 1,
        dilation_w: 1,
    };
    let x = b.conv_bn("down.conv", "down.bn", x, 16, down, 1);
    let x = b.relu("down.relu", x);

    let avg_pad = PoolKind::Avg {
        count_include_pad: true,
    };
    let h = b.pool("head.avgpool", x, avg_pad, Window::square(3, 2, 1));
    let h = b.flatten("head.flatten", h);
    let h = b.dense("head.fc1", h, 16);
    let h = b.relu("head.relu", h);
    let g = b.global_avg_pool("head.gap", x);
    let x = b.concat("head.concat", &[g, h]);
    let x = b.dense("fc", x, 10);
    b.softmax("softmax", x);
    b.finish()
}
