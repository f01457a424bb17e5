//! MobileNet v1 (Howard et al. 2017, width 1.0, 224x224): a strided 3x3
//! convolution to 32 channels, then 13 depthwise-separable blocks (3x3
//! depthwise, 1x1 pointwise), each convolution followed by BatchNorm and
//! ReLU6, global average pooling and a 1024 -> 1000 classifier. Node names
//! follow Keras (`conv_dw_1`, `conv_pw_1_bn`, ...); padding is symmetric.

use super::{Builder, Init};
use crate::engine::gemm::Activation;
use crate::engine::graph::{Graph, Window};

/// `(output channels, stride)` of each depthwise-separable block.
const BLOCKS: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

pub(super) fn build(name: &str, init: Init) -> Graph {
    let mut b = Builder::new(name, (224, 224, 3), init);
    let x = b.input();
    let x = b.conv_bn("conv1", "conv1_bn", x, 32, Window::square(3, 2, 1), 1);
    let mut x = b.activation("conv1_relu", x, Activation::Relu6);
    for (i, &(cout, stride)) in BLOCKS.iter().enumerate() {
        let i = i + 1;
        let cin = b.shape(x).c;
        x = b.conv_bn(
            &format!("conv_dw_{i}"),
            &format!("conv_dw_{i}_bn"),
            x,
            cin,
            Window::square(3, stride, 1),
            cin,
        );
        x = b.activation(&format!("conv_dw_{i}_relu"), x, Activation::Relu6);
        x = b.conv_bn(
            &format!("conv_pw_{i}"),
            &format!("conv_pw_{i}_bn"),
            x,
            cout,
            Window::square(1, 1, 0),
            1,
        );
        x = b.activation(&format!("conv_pw_{i}_relu"), x, Activation::Relu6);
    }
    let x = b.global_avg_pool("global_average_pooling", x);
    let x = b.flatten("flatten", x);
    b.dense("fc", x, 1000);
    b.finish()
}
