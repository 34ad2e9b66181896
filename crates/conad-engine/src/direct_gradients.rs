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
//! gradients. Parameters that are not variables, or blocks whose input does not track gradients,
//! take the graph path.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use candle_core::Tensor;
use candle_core::backprop::GradStore;

/// Gradients deposited by fused ops, in deposit order.
pub(crate) type Deposits = Arc<Mutex<Vec<(Tensor, Tensor)>>>;

thread_local! {
    static CURRENT: RefCell<Option<Deposits>> = const { RefCell::new(None) };
}

/// While alive, fused residual blocks built on this thread deliver their parameter gradients
/// here; call [`DirectGradients::merge_into`] with the backward pass's [`GradStore`].
#[derive(Debug)]
#[must_use = "the parameter gradients reach the GradStore only through merge_into"]
pub struct DirectGradients {
    deposits: Deposits,
    previous: Option<Deposits>,
}

impl DirectGradients {
    /// Starts a scope on this thread (scopes nest; dropping restores the enclosing one).
    pub fn scope() -> Self {
        let deposits = Deposits::default();
        let previous = CURRENT.with(|c| c.borrow_mut().replace(deposits.clone()));
        Self { deposits, previous }
    }

    /// Adds every deposited gradient to `grads` (inserting where `grads` has none for that
    /// tensor), in deposit order, and ends the scope. Call it after `backward()`.
    ///
    /// # Errors
    /// A candle error if two gradients of one tensor cannot be added (shape mismatch).
    pub fn merge_into(self, grads: &mut GradStore) -> candle_core::Result<()> {
        let deposits = std::mem::take(
            &mut *self
                .deposits
                .lock()
                .map_err(|_| candle_core::Error::Msg("direct gradients poisoned".into()))?,
        );
        for (tensor, grad) in deposits {
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
        let previous = self.previous.take();
        // A thread being torn down has no slot left; nothing to restore then.
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
    }
}

/// The active scope's deposit list on this thread, if any.
pub(crate) fn current() -> Option<Deposits> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    /// Deposits add to existing gradients, insert missing ones, nest, and stop at scope end.
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
        {
            let inner = DirectGradients::scope();
            let d = current().unwrap();
            d.lock()
                .unwrap()
                .push((b.as_tensor().clone(), Tensor::new(&[5.0f32], &dev).unwrap()));
            drop(d);
            let mut other = GradStore::default();
            inner.merge_into(&mut other).unwrap();
            assert_eq!(
                other.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
                [5.0]
            );
        }
        let d = current().unwrap();
        assert!(
            Arc::ptr_eq(&d, &outer.deposits),
            "the outer scope is current again"
        );
        for _ in 0..2 {
            d.lock().unwrap().push((
                a.as_tensor().clone(),
                Tensor::new(&[0.5f32, -1.0], &dev).unwrap(),
            ));
        }
        drop(d);
        outer.merge_into(&mut grads).unwrap();
        assert_eq!(
            grads.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            [3.0, 0.0]
        );
        assert!(grads.get(b.as_tensor()).is_none());
        assert!(current().is_none());
    }
}
