//! Parameter gradients handed straight from fused ops to the caller's gradient store, bypassing
//! candle's graph for the parameters.
//!
//! A fused op that takes its parameters as a graph input needs them concatenated into one tensor
//! (candle's custom ops have at most three inputs), and candle's backward then stores the
//! gradient of that tensor, of every concatenated piece and of every reshaped weight, each as a
//! `zeros_like` plus an `add`. With a [`DirectGradients`] scope active on the thread that builds
//! the graph, [`crate::ResidualBlock`] instead reads its weights in place and, in its backward,
//! hands each weight's gradient to the scope; [`DirectGradients::merge_into`] adds them to the
//! [`GradStore`] returned by `backward()`. The values are the graph's, bit for bit (the same
//! kernels compute them; the graph only adds them to zero).
//!
//! Without an active scope nothing changes, so code that calls `backward()` itself keeps complete
//! gradients. The direct path reads the weights again in the backward pass: a variable changed
//! between the forward and the backward (the trainer never does that) would give gradients at
//! the new value, where the graph path uses the forward's copy. Parameters that are not variables, or blocks whose input does not track gradients,
//! take the graph path.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use candle_core::Tensor;
use candle_core::backprop::GradStore;

/// Gradients deposited by fused ops, in deposit order; `None` once the scope has ended (merged
/// or dropped), so a late deposit is an error instead of a lost gradient.
pub(crate) type Deposits = Arc<Mutex<Option<Vec<(Tensor, Tensor)>>>>;

thread_local! {
    static CURRENT: RefCell<Option<Deposits>> = const { RefCell::new(None) };
}

/// While alive, fused residual blocks built on this thread deliver their parameter gradients
/// here; call [`DirectGradients::merge_into`] with the backward pass's [`GradStore`]. Ops built
/// inside the scope must run their backward before `merge_into` (a backward after it, or after
/// the scope is dropped, fails with an error). The guard stays on its thread.
#[derive(Debug)]
#[must_use = "the parameter gradients reach the GradStore only through merge_into"]
pub struct DirectGradients {
    deposits: Deposits,
    previous: Option<Deposits>,
    /// Not `Send`: the scope is a property of the thread that builds the graph.
    _thread: PhantomData<*const ()>,
}

impl DirectGradients {
    /// Starts a scope on this thread (scopes nest; dropping restores the enclosing one).
    pub fn scope() -> Self {
        let deposits: Deposits = Arc::new(Mutex::new(Some(Vec::new())));
        let previous = CURRENT.with(|c| c.borrow_mut().replace(deposits.clone()));
        Self {
            deposits,
            previous,
            _thread: PhantomData,
        }
    }

    /// Adds every deposited gradient to `grads` (inserting where `grads` has none for that
    /// tensor), in deposit order, and ends the scope. Call it after `backward()`.
    ///
    /// # Errors
    /// A candle error if two gradients of one tensor cannot be added (shape mismatch).
    pub fn merge_into(self, grads: &mut GradStore) -> candle_core::Result<()> {
        let deposits = self.deposits.lock().map_err(|_| poisoned())?.take();
        for (tensor, grad) in deposits.unwrap_or_default() {
            let sum = match grads.get(&tensor) {
                Some(g) => g.add(&grad)?,
                None => grad,
            };
            grads.insert(&tensor, sum);
        }
        Ok(())
    }
}

impl Drop for DirectGradients {
    fn drop(&mut self) {
        // Closed: a backward of an op built in this scope can no longer deposit silently.
        if let Ok(mut d) = self.deposits.lock() {
            d.take();
        }
        let previous = self.previous.take();
        // Restore the enclosing scope only if this one is current (a scope dropped out of order
        // leaves the inner one current; closed lists are skipped by `current`). A thread being
        // torn down has no slot left.
        let _ = CURRENT.try_with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().is_some_and(|d| Arc::ptr_eq(d, &self.deposits)) {
                *c = previous;
            }
        });
    }
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("direct gradients poisoned".into())
}

/// The active, open scope's deposit list on this thread, if any.
pub(crate) fn current() -> Option<Deposits> {
    CURRENT.with(|c| {
        c.borrow()
            .clone()
            .filter(|d| d.lock().is_ok_and(|d| d.is_some()))
    })
}

/// Appends a parameter's gradient to `deposits`.
///
/// # Errors
/// When the scope has ended: its `merge_into` ran, or it was dropped, before this backward.
pub(crate) fn deposit(
    deposits: &Deposits,
    param: &Tensor,
    grad: Tensor,
) -> candle_core::Result<()> {
    match deposits.lock().map_err(|_| poisoned())?.as_mut() {
        Some(list) => {
            list.push((param.clone(), grad));
            Ok(())
        }
        None => candle_core::bail!(
            "a fused residual block's backward ran after its DirectGradients scope ended: call \
             merge_into after backward(), and keep the scope alive until then"
        ),
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    /// Deposits add to existing gradients, insert missing ones, nest, and stop at scope end;
    /// a late deposit is an error; a scope dropped out of order leaves no open scope behind.
    #[test]
    fn deposits_merge_by_adding_and_scopes_nest() {
        let dev = Device::Cpu;
        let a = Var::new(&[1.0f32, 2.0], &dev).unwrap();
        let b = Var::new(&[3.0f32], &dev).unwrap();
        let mut grads = (a.as_tensor() * 2.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(current().is_none());
        let outer = DirectGradients::scope();
        let late = {
            let inner = DirectGradients::scope();
            let d = current().unwrap();
            deposit(&d, b.as_tensor(), Tensor::new(&[5.0f32], &dev).unwrap()).unwrap();
            let mut other = GradStore::default();
            inner.merge_into(&mut other).unwrap();
            assert_eq!(
                other.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
                [5.0]
            );
            d
        };
        let err = deposit(&late, b.as_tensor(), Tensor::new(&[1.0f32], &dev).unwrap());
        assert!(err.unwrap_err().to_string().contains("merge_into"));
        let d = current().unwrap();
        assert!(
            Arc::ptr_eq(&d, &outer.deposits),
            "the outer scope is current again"
        );
        for _ in 0..2 {
            deposit(
                &d,
                a.as_tensor(),
                Tensor::new(&[0.5f32, -1.0], &dev).unwrap(),
            )
            .unwrap();
        }
        outer.merge_into(&mut grads).unwrap();
        assert_eq!(
            grads.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            [3.0, 0.0]
        );
        assert!(grads.get(b.as_tensor()).is_none());
        assert!(current().is_none());

        // Out of order: the outer guard dropped first, then the inner one.
        let outer = DirectGradients::scope();
        let inner = DirectGradients::scope();
        drop(outer);
        assert!(current().is_some(), "the inner scope stays current");
        drop(inner);
        assert!(current().is_none(), "no ended scope is current");
    }
}
