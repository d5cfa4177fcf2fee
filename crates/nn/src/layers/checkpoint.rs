//! `Checkpoint`: a module whose inner activations are recomputed in backward, not kept.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use wengert_core::checkpoint::{checkpoint_block, Block};
use wengert_core::{Float, Param, Var};

use crate::module::{Buffer, BufferMut, Module};

/// Wraps a module so its forward runs under [`wengert_core::checkpoint()`]: only its output is
/// kept, and backward recomputes the rest (PyTorch's `torch.utils.checkpoint` around a
/// submodule). Parameters and buffers keep the inner module's names, so a checkpointed model
/// saves and loads exactly as the plain one, and its gradients are the same bit for bit.
///
/// The tapes that recorded it keep a link to the module for the recompute, which stays valid
/// until the module is changed (any `&mut` access: an optimizer step, `set_training`,
/// loading), dropped, or used from another thread; backward through an older forward then
/// panics and says so, rather than recomputing with other weights. Run backward before
/// changing the model, as every training loop does.
///
/// ```
/// use wengert_nn::prelude::*;
/// let block = |seed| {
///     wengert_nn::init::manual_seed(seed);
///     Sequential::<f64>::new().add(Linear::new(4, 16)).add(ReLU).add(Linear::new(16, 4))
/// };
/// let plain = Sequential::new().add(block(0)).add(block(1));
/// let ckpt = Sequential::new().add(Checkpoint::new(block(0))).add(Checkpoint::new(block(1)));
/// assert_eq!(ckpt.named_params()[0].0, "0.0.weight"); // the plain model's names
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::ones([3, 4]));
/// let (a, b) = (ckpt.forward(x).sum(), plain.forward(x).sum());
/// assert_eq!(a.item(), b.item());
/// let (ga, gb) = (a.backward(), b.backward());
/// for ((_, pa), (_, pb)) in ckpt.named_params().into_iter().zip(plain.named_params()) {
///     assert_eq!(ga.param(pa), gb.param(pb)); // bit for bit
/// }
/// ```
pub struct Checkpoint<M> {
    /// The module, owned (freed on drop); reached through a raw pointer so that tapes can
    /// read it while this handle moves.
    inner: NonNull<M>,
    link: Arc<Link>,
    _owns: PhantomData<M>,
}

/// What a tape's recompute checks before it reads the module: the link is valid while its
/// generation is the one recorded at the forward.
struct Link {
    state: Mutex<LinkState>,
}

struct LinkState {
    generation: u64,
    /// The thread that last used the module through its handle.
    thread: ThreadId,
}

// SAFETY: the module is only read through the handle on the thread that holds it, and by a
// tape's recompute (on the tape's thread) only while the link's generation is unchanged, under
// the link's lock. Every use of the handle from another thread than the last one, and every
// `&mut` use, first bumps the generation under that lock, so the two never overlap: the module
// moves between threads (M: Send) but is never shared by two at once.
unsafe impl<M: Send> Send for Checkpoint<M> {}

impl<M> Checkpoint<M> {
    /// Checkpoints `inner`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let layer = Checkpoint::new(Linear::<f32>::new(2, 3));
    /// assert_eq!(layer.named_params()[0].0, "weight"); // the inner module's names
    /// ```
    pub fn new(inner: M) -> Self {
        let state = LinkState { generation: 0, thread: thread::current().id() };
        Checkpoint { inner: NonNull::from(Box::leak(Box::new(inner))), link: Arc::new(Link { state: Mutex::new(state) }), _owns: PhantomData }
    }

    /// The wrapped module.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let layer = Checkpoint::new(Linear::<f32>::new(2, 3));
    /// assert_eq!(layer.inner().weight.value().dims(), &[3, 2]);
    /// ```
    pub fn inner(&self) -> &M {
        self.claim(false);
        // SAFETY: owned by this handle, and no tape reads it now (`claim`).
        unsafe { self.inner.as_ref() }
    }

    /// The wrapped module, mutably. Backward through a forward recorded before this call
    /// panics (the module it would recompute has changed).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut layer = Checkpoint::new(Linear::<f32>::new(2, 3));
    /// layer.inner_mut().weight.set(Tensor::zeros([3, 2])).unwrap();
    /// assert_eq!(layer.inner().weight.value().sum().item(), 0.0);
    /// ```
    pub fn inner_mut(&mut self) -> &mut M {
        self.claim(true);
        // SAFETY: owned by this handle, unique through `&mut self`; no tape reads it from
        // now on (`claim` bumped the generation).
        unsafe { self.inner.as_mut() }
    }

    /// The module back, unwrapped.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let layer: Linear<f32> = Checkpoint::new(Linear::new(2, 3)).into_inner();
    /// assert_eq!(layer.weight.value().dims(), &[3, 2]);
    /// ```
    pub fn into_inner(self) -> M {
        self.claim(true);
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the allocation came from `Box::leak` in `new`, and `this` is never dropped,
        // so it is taken back exactly once; no tape reads it any more (`claim`).
        let inner = unsafe { *Box::from_raw(this.inner.as_ptr()) };
        // SAFETY: `this` is never used again, and its link is dropped once, here.
        drop(unsafe { std::ptr::read(&this.link) });
        inner
    }

    /// Makes the handle's use safe against tapes: from another thread than the last use, or
    /// for a `&mut` use, every link recorded so far goes stale. Waits for a running recompute.
    /// Returns the generation a link recorded now is valid for.
    fn claim(&self, exclusive: bool) -> u64 {
        let me = thread::current().id();
        let mut state = self.link.lock();
        if exclusive || state.thread != me {
            state.generation += 1;
            state.thread = me;
        }
        state.generation
    }
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        // a recompute that panicked leaves the state consistent: only the counter is in it
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<M> Drop for Checkpoint<M> {
    fn drop(&mut self) {
        self.claim(true);
        // SAFETY: from `Box::leak` in `new`, freed once; no tape reads it any more (`claim`).
        drop(unsafe { Box::from_raw(self.inner.as_ptr()) });
    }
}

impl<M: Clone> Clone for Checkpoint<M> {
    /// A checkpoint of a copy of the module (a copy's parameters are new parameters).
    fn clone(&self) -> Self {
        Checkpoint::new(self.inner().clone())
    }
}

impl<M: fmt::Debug> fmt::Debug for Checkpoint<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Checkpoint").field(self.inner()).finish()
    }
}

/// The recompute a tape keeps: the module and the link generation of its forward.
struct Recompute<M> {
    inner: NonNull<M>,
    link: Arc<Link>,
    generation: u64,
}

impl<T: Float, M: Module<T> + 'static> Block<T> for Recompute<M> {
    #[track_caller]
    fn run<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let state = self.link.lock();
        if state.generation != self.generation {
            drop(state);
            panic!(
                "wengert: Checkpoint: the module was changed, dropped or moved to another thread after this forward \
                 (an optimizer step, set_training, loading...), so backward cannot recompute it; run backward first"
            );
        }
        // SAFETY: the generation is unchanged, so the module is alive and unchanged and its
        // handle is not in use on another thread; the lock held until the end of the recompute
        // keeps it so.
        let y = unsafe { self.inner.as_ref() }.forward(x);
        drop(state);
        y
    }
}

impl<T: Float, M: Module<T> + 'static> Module<T> for Checkpoint<M> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let generation = self.claim(false);
        checkpoint_block(Recompute { inner: self.inner, link: self.link.clone(), generation }, x)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        self.inner().visit_params(prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        self.inner_mut().visit_params_mut(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        self.inner().visit_buffers(prefix, f)
    }
    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        self.inner_mut().visit_buffers_mut(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.inner_mut().set_training(training)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn model() -> Sequential<f64> {
        crate::init::manual_seed(3);
        Sequential::new().add(Checkpoint::new(Sequential::new().add(Linear::new(3, 5)).add(Tanh).add(Linear::new(5, 3))))
    }

    #[test]
    fn backward_after_the_module_changed_panics_and_says_why() {
        let mut m = model();
        let tape = Tape::new();
        let y = m.forward(tape.constant(Tensor::ones([2, 3]))).sum();
        m.set_training(false);
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward())).err().expect("stale link");
        let msg = err.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| err.downcast_ref::<String>().cloned()).unwrap_or_default();
        assert!(msg.contains("Checkpoint: the module was changed"), "{msg}");
        // a new forward records a new link
        let y = m.forward(tape.constant(Tensor::ones([2, 3]))).sum();
        assert!(y.backward().param(m.named_params()[0].1).is_some());
    }

    #[test]
    fn a_module_moved_to_another_thread_stales_old_links() {
        let m = model();
        let tape = Tape::new();
        let y = m.forward(tape.constant(Tensor::ones([2, 3]))).sum();
        let m = std::thread::spawn(move || {
            let _ = m.named_params(); // used over there
            m
        })
        .join()
        .unwrap();
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward())).is_err());
        let y = m.forward(tape.constant(Tensor::ones([2, 3]))).sum();
        assert_eq!(y.backward().param(m.named_params()[2].1).unwrap().dims(), &[3, 5]);
        let inner: Sequential<f64> = Checkpoint::new(Sequential::new().add(Linear::new(2, 2))).into_inner();
        assert_eq!(inner.named_params().len(), 2);
    }
}
