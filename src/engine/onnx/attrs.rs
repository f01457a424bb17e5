//! Typed access to a node's attributes, with errors that name the attribute.

use super::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use super::tensor::{self, Tensor};
use std::path::Path;

pub struct Attrs<'a> {
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    pub fn of(node: &'a NodeProto) -> Attrs<'a> {
        Attrs {
            list: &node.attribute,
        }
    }

    fn get(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>, String> {
        match self.list.iter().find(|a| a.name == name) {
            None => Ok(None),
            Some(a) => {
                // Old exporters leave `type` unset; trust the field then.
                if a.r#type != AttributeType::Undefined as i32 && a.r#type != want as i32 {
                    let got = AttributeType::try_from(a.r#type)
                        .map(|t| t.as_str_name())
                        .unwrap_or("unknown");
                    return Err(format!(
                        "attribute `{name}` is {got}, expected {}",
                        want.as_str_name()
                    ));
                }
                Ok(Some(a))
            }
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.list.iter().any(|a| a.name == name)
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self.get(name, AttributeType::Int)?.map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self
            .get(name, AttributeType::Float)?
            .map_or(default, |a| a.f))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self.get(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        Ok(self
            .get(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String, String> {
        Ok(self
            .get(name, AttributeType::String)?
            .map_or(default.to_string(), |a| {
                String::from_utf8_lossy(&a.s).into_owned()
            }))
    }

    pub fn tensor(&self, name: &str, base: Option<&Path>) -> Result<Option<Tensor>, String> {
        match self.get(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| format!("attribute `{name}` holds no tensor"))?;
                tensor::decode(t, base)
                    .map(Some)
                    .map_err(|e| format!("attribute `{name}`: {e}"))
            }
        }
    }

    /// A list of exactly `n` non-negative values (kernel, strides, pads, ...).
    pub fn usizes(&self, name: &str, n: usize) -> Result<Option<Vec<usize>>, String> {
        match self.ints(name)? {
            None => Ok(None),
            Some(v) if v.len() == n && v.iter().all(|&x| (0..=1 << 20).contains(&x)) => {
                Ok(Some(v.iter().map(|&x| x as usize).collect()))
            }
            Some(v) => Err(format!(
                "attribute `{name}` is {v:?}; expected {n} values between 0 and 2^20"
            )),
        }
    }
}
