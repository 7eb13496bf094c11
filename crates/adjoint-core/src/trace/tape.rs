//! The reverse-mode tape: nodes in execution order; each output of a node is a numbered
//! *value*, and a node's parents are the values of its inputs (`None`: a constant).

use smallvec::SmallVec;

use crate::debug;
use crate::primitive::{Grads, Pullback};
use crate::tensor::Tensor;

struct Node {
    parents: SmallVec<[Option<usize>; 3]>,
    first_out: usize,
    n_out: usize,
    pullback: Option<Pullback>,
    /// The forward op and its call site, recorded in anomaly mode only.
    origin: Option<debug::Origin>,
}

/// A reverse-mode tape (one per `grad`/`vjp` call).
#[derive(Default)]
pub(crate) struct Tape {
    nodes: Vec<Node>,
    n_values: usize,
}

impl Tape {
    /// Append a node with `n_out` outputs; returns the value id of its first output.
    pub(crate) fn push(
        &mut self,
        parents: SmallVec<[Option<usize>; 3]>,
        n_out: usize,
        pullback: Option<Pullback>,
        origin: Option<debug::Origin>,
    ) -> usize {
        let first_out = self.n_values;
        self.n_values += n_out;
        self.nodes.push(Node { parents, first_out, n_out, pullback, origin });
        first_out
    }

    /// The reverse sweep: seed cotangents of some values, run pullbacks in reverse order with
    /// ordinary (differentiable) ops, and return the cotangent of every value (leaves keep
    /// theirs). With `consume`, each node's pullback — and so its residuals — is dropped as
    /// soon as it has run.
    pub(crate) fn backward(&mut self, seeds: Vec<(usize, Tensor)>, consume: bool) -> Vec<Option<Tensor>> {
        let mut cts: Vec<Option<Tensor>> = vec![None; self.n_values];
        for (v, c) in seeds {
            accumulate(&mut cts[v], c);
        }
        for i in (0..self.nodes.len()).rev() {
            let node = &mut self.nodes[i];
            let Some(pb) = node.pullback.as_ref() else { continue };
            let range = node.first_out..node.first_out + node.n_out;
            if cts[range.clone()].iter().all(|c| c.is_none()) {
                if consume {
                    node.pullback = None;
                }
                continue;
            }
            let out_cts: SmallVec<[Option<Tensor>; 2]> = if consume {
                cts[range].iter_mut().map(|c| c.take()).collect()
            } else {
                cts[range].iter().cloned().collect()
            };
            let rule = node.origin.map(|o| debug::RuleGuard::enter(debug::RuleKind::Vjp, o));
            let grads: Grads = (pb.f)(&out_cts);
            drop(rule);
            drop(out_cts);
            if consume {
                node.pullback = None;
            }
            for (parent, g) in node.parents.iter().zip(grads) {
                if let (Some(p), Some(g)) = (parent, g) {
                    accumulate(&mut cts[*p], g);
                }
            }
        }
        cts
    }
}

fn accumulate(slot: &mut Option<Tensor>, g: Tensor) {
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) => &prev + &g,
    });
}
