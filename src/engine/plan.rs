//! Memory plan: values whose lifetimes do not overlap share a buffer, so a
//! network needs a handful of activation buffers rather than one per layer.

/// A step reads `inputs` and writes `output` (value ids).
pub struct Usage<'a> {
    pub inputs: &'a [usize],
    pub output: usize,
}

/// Assigns each value a buffer. `sizes[v]` is value v's length (0 for values
/// never materialised); `pinned` values (graph input and output) get buffers of
/// their own. Returns the buffer of each value and each buffer's length.
pub fn assign(sizes: &[usize], steps: &[Usage<'_>], pinned: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let nv = sizes.len();
    let mut last_use = vec![0usize; nv];
    for (s, st) in steps.iter().enumerate() {
        for &i in st.inputs {
            last_use[i] = last_use[i].max(s);
        }
    }
    let mut buf_of = vec![usize::MAX; nv];
    let mut buf_len: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    for &v in pinned {
        if buf_of[v] == usize::MAX {
            buf_of[v] = buf_len.len();
            buf_len.push(sizes[v]);
        }
    }
    // Values whose buffers return to the free list after step s.
    let mut release: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (s, st) in steps.iter().enumerate() {
        // Inputs last read at step s are in `release[s]`, freed after the output is placed.
        let v = st.output;
        if buf_of[v] == usize::MAX {
            // Best fit among free buffers, else the largest free one grown, else new.
            let pick = free
                .iter()
                .enumerate()
                .filter(|(_, &b)| buf_len[b] >= sizes[v])
                .min_by_key(|(_, &b)| buf_len[b])
                .or_else(|| free.iter().enumerate().max_by_key(|(_, &b)| buf_len[b]))
                .map(|(i, _)| i);
            let b = match pick {
                Some(i) => free.swap_remove(i),
                None => {
                    buf_len.push(0);
                    buf_len.len() - 1
                }
            };
            buf_len[b] = buf_len[b].max(sizes[v]);
            buf_of[v] = b;
            if !pinned.contains(&v) {
                // Never read: free after this step; else after its last reader.
                let end = if last_use[v] > s { last_use[v] } else { s };
                release[end].push(v);
            }
        }
        for &v in &release[s] {
            free.push(buf_of[v]);
        }
    }
    (buf_of, buf_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_ping_pongs_between_two_buffers() {
        // 0 -> 1 -> 2 -> 3 -> 4, input 0 and output 4 pinned.
        let ins = [[0], [1], [2], [3]];
        let steps: Vec<Usage> = (0..4)
            .map(|s| Usage {
                inputs: &ins[s],
                output: s + 1,
            })
            .collect();
        let (buf, len) = assign(&[10, 20, 30, 40, 5], &steps, &[0, 4]);
        assert_eq!(len.len(), 4, "input, output and two intermediates");
        assert_ne!(buf[1], buf[2]);
        assert_eq!(buf[1], buf[3]);
        assert!(len[buf[1]] >= 40);
    }

    #[test]
    fn a_value_read_later_keeps_its_buffer() {
        // 1 = f(0); 2 = g(1); 3 = h(2); 4 = add(1, 3): value 1 lives until step 3.
        let i0 = [0];
        let i1 = [1];
        let i2 = [2];
        let i3 = [1, 3];
        let steps = [
            Usage {
                inputs: &i0,
                output: 1,
            },
            Usage {
                inputs: &i1,
                output: 2,
            },
            Usage {
                inputs: &i2,
                output: 3,
            },
            Usage {
                inputs: &i3,
                output: 4,
            },
        ];
        let (buf, _) = assign(&[8; 5], &steps, &[0, 4]);
        assert_ne!(buf[1], buf[2]);
        assert_ne!(buf[1], buf[3]);
        assert_ne!(buf[2], buf[3]);
        assert_ne!(buf[4], buf[1]);
    }
}
