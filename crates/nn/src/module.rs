//! The `Module` trait: a forward pass on a tape plus named parameters, and `Sequential`.
//!
//! A model owns its [`Param`]s. Each step binds them into a fresh tape inside `forward`
//! (via [`Tape::param`](wengert_core::Tape::param)), so the training loop stays short:
//!
//! ```
//! use wengert_nn::prelude::*;
//!
//! wengert_nn::init::manual_seed(0);
//! let mut model = Sequential::new().add(Linear::new(4, 8)).add(ReLU).add(Linear::new(8, 3));
//! let mut opt = Adam::new(AdamConfig::default());
//! let x = Tensor::<f32>::ones([5, 4]);
//! let y = Tensor::from_slice(&[0usize, 1, 2, 1, 0]);
//! let tape = Tape::new();
//! let loss = cross_entropy(model.forward(tape.constant(x)), &y);
//! let grads = loss.backward();
//! opt.step(&mut model, &grads).unwrap();
//! assert_eq!(model.named_params()[0].0, "0.weight"); // PyTorch's nn.Sequential names
//! ```

use wengert_core::{Float, Param, Tensor, Var};

/// The value of a buffer: state a module saves and loads with its parameters but never trains
/// (PyTorch's `register_buffer`), such as BatchNorm's running statistics. Float buffers have
/// the model's element type; counters are `i64`, as in PyTorch (`num_batches_tracked`).
#[derive(Clone, Debug, PartialEq)]
pub enum Buffer<T: Float> {
    /// A float buffer (`running_mean`, `running_var`).
    Float(Tensor<T>),
    /// An integer buffer (`num_batches_tracked`), stored as `I64` in safetensors.
    Int(Tensor<i64>),
}

impl<T: Float> Buffer<T> {
    /// The buffer's shape.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let buffers = BatchNorm1d::<f32>::new(4).named_buffers();
    /// let dims: Vec<&[usize]> = buffers.iter().map(|(_, b)| b.dims()).collect();
    /// assert_eq!(dims, [&[4][..], &[4], &[]]); // running_mean, running_var, num_batches_tracked
    /// ```
    pub fn dims(&self) -> &[usize] {
        match self {
            Buffer::Float(t) => t.dims(),
            Buffer::Int(t) => t.dims(),
        }
    }
}

/// A copy of a model's state held in memory: its parameters' values and its buffers, by the
/// names [`Module::named_params`] and [`Module::named_buffers`] give (PyTorch's
/// `model.state_dict()`, deep-copied). What [`Module::load_state_dict`] restores, e.g. the
/// best weights of a run. Tensors share storage copy-on-write, so a snapshot costs little until
/// training changes the weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict<T: Float> {
    /// parameter values by name
    pub params: std::collections::BTreeMap<String, Tensor<T>>,
    /// buffers by name
    pub buffers: std::collections::BTreeMap<String, Buffer<T>>,
}

/// Mutable access to a buffer, given by [`Module::visit_buffers_mut`] to restore it.
#[derive(Debug)]
pub enum BufferMut<'a, T: Float> {
    /// A float buffer.
    Float(&'a mut Tensor<T>),
    /// An integer buffer.
    Int(&'a mut Tensor<i64>),
}

/// Something with a forward pass and parameters.
///
/// Implementors provide `forward` and the two parameter visitors; names are the field path
/// joined with dots (`"encoder.0.weight"`), the same names PyTorch's `state_dict` uses for the
/// same structure, so weights saved here load there. Modules with non-trainable state (BatchNorm)
/// also implement the buffer visitors, which save and load carry beside the parameters.
pub trait Module<T: Float = f32> {
    /// The forward pass: records on `x`'s tape and returns the output. A shape error panics
    /// at the caller's line (the attribute carries through every implementation).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T>;

    /// Calls `f(name, param)` for each parameter, names prefixed with `prefix`.
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>));

    /// Calls `f(name, param)` with mutable access, in the same order as `visit_params`.
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>));

    /// Calls `f(name, value)` for each buffer (non-trainable state such as BatchNorm's running
    /// statistics), names prefixed with `prefix` as in [`Module::visit_params`]. Containers
    /// forward it to their children. Default: no buffers.
    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(String, Buffer<T>)) {}

    /// Calls `f(name, buffer)` with mutable access, in the same order as `visit_buffers`
    /// (for loading). Default: no buffers.
    fn visit_buffers_mut(&mut self, _prefix: &str, _f: &mut dyn FnMut(String, BufferMut<'_, T>)) {}

    /// Switches training behaviour (dropout, batch statistics) on or off. Default: nothing.
    fn set_training(&mut self, _training: bool) {}

    /// All buffers with their names, in a stable order (`"0.running_mean"`, ...).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let model = Sequential::<f32>::new().add(Linear::new(2, 3)).add(BatchNorm1d::new(3));
    /// let names: Vec<String> = model.named_buffers().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["1.running_mean", "1.running_var", "1.num_batches_tracked"]);
    /// ```
    fn named_buffers(&self) -> Vec<(String, Buffer<T>)>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.visit_buffers("", &mut |n, b| out.push((n, b)));
        out
    }

    /// All parameters with their names, in a stable order.
    fn named_params(&self) -> Vec<(String, &Param<T>)>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.visit_params("", &mut |n, p| out.push((n, p)));
        out
    }

    /// All parameters with their names, mutably (for optimizers and loading weights).
    fn named_params_mut(&mut self) -> Vec<(String, &mut Param<T>)>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.visit_params_mut("", &mut |n, p| out.push((n, p)));
        out
    }

    /// A copy of the parameters and buffers ([`StateDict`]), to restore later with
    /// [`Module::load_state_dict`].
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut model = Sequential::<f32>::new().add(Linear::new(2, 2)).add(BatchNorm1d::new(2));
    /// let best = model.state_dict();
    /// model.named_params_mut()[0].1.set(Tensor::zeros([2, 2])).unwrap(); // training moves on
    /// model.load_state_dict(&best).unwrap();                             // back to the snapshot
    /// assert_eq!(model.state_dict(), best);
    /// ```
    fn state_dict(&self) -> StateDict<T>
    where
        Self: Sized,
    {
        let mut state = StateDict { params: Default::default(), buffers: Default::default() };
        self.visit_params("", &mut |n, p| {
            state.params.insert(n, p.value().clone());
        });
        self.visit_buffers("", &mut |n, b| {
            state.buffers.insert(n, b);
        });
        state
    }

    /// Restores parameters and buffers from a [`StateDict`] of the same model structure (strict,
    /// as PyTorch's `load_state_dict(strict=True)`): every name must be there with its shape
    /// (and a buffer with its kind), and nothing else. On an error naming the tensor
    /// ([`crate::Error::MissingTensor`], [`crate::Error::UnexpectedTensor`],
    /// [`crate::Error::TensorMismatch`]) nothing has changed.
    fn load_state_dict(&mut self, state: &StateDict<T>) -> crate::Result<()>
    where
        Self: Sized,
    {
        use crate::Error;
        let mismatch = |name: &str, expected: &[usize], found: &[usize], reason: &str| Error::TensorMismatch {
            name: name.to_string(),
            expected: Box::new(wengert_core::Shape::new(expected)),
            found: Box::new(wengert_core::Shape::new(found)),
            reason: reason.to_string(),
        };
        let mut seen = 0usize;
        let mut problem: Option<Error> = None;
        self.visit_params("", &mut |name, p| {
            if problem.is_some() {
                return;
            }
            match state.params.get(&name) {
                None => problem = Some(Error::MissingTensor { name }),
                Some(t) if t.dims() != p.value().dims() => problem = Some(mismatch(&name, p.value().dims(), t.dims(), "shape")),
                Some(_) => seen += 1,
            }
        });
        let mut seen_buffers = 0usize;
        self.visit_buffers("", &mut |name, b| {
            if problem.is_some() {
                return;
            }
            match state.buffers.get(&name) {
                None => problem = Some(Error::MissingTensor { name }),
                Some(t) if t.dims() != b.dims() => problem = Some(mismatch(&name, b.dims(), t.dims(), "shape")),
                Some(t) if std::mem::discriminant(t) != std::mem::discriminant(&b) => {
                    let kind = |b: &Buffer<T>| if matches!(b, Buffer::Int(_)) { "an integer" } else { "a float" };
                    problem = Some(mismatch(&name, b.dims(), t.dims(), &format!("{} buffer given for {} one", kind(t), kind(&b))))
                }
                Some(_) => seen_buffers += 1,
            }
        });
        if let Some(e) = problem {
            return Err(e);
        }
        if seen != state.params.len() || seen_buffers != state.buffers.len() {
            let mut known = std::collections::BTreeSet::new();
            self.visit_params("", &mut |n, _| {
                known.insert(n);
            });
            self.visit_buffers("", &mut |n, _| {
                known.insert(n);
            });
            let extra = state.params.keys().chain(state.buffers.keys()).find(|n| !known.contains(*n)).cloned().unwrap_or_default();
            return Err(Error::UnexpectedTensor { name: extra });
        }
        self.visit_params_mut("", &mut |name, p| {
            p.set(state.params[&name].clone()).expect("shape checked above");
        });
        self.visit_buffers_mut("", &mut |name, b| match (b, &state.buffers[&name]) {
            (BufferMut::Float(t), Buffer::Float(v)) => *t = v.clone(),
            (BufferMut::Int(t), Buffer::Int(v)) => *t = v.clone(),
            _ => unreachable!("kinds checked above"),
        });
        Ok(())
    }

    /// Number of scalar parameters.
    fn num_params(&self) -> usize {
        let mut n = 0;
        self.visit_params("", &mut |_, p| n += p.value().numel());
        n
    }

    /// Training mode on (`model.train()` in PyTorch).
    fn train(&mut self) {
        self.set_training(true)
    }

    /// Training mode off (`model.eval()`).
    fn eval(&mut self) {
        self.set_training(false)
    }
}

impl<T: Float, M: Module<T> + ?Sized> Module<T> for Box<M> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        (**self).forward(x)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        (**self).visit_params(prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        (**self).visit_params_mut(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        (**self).visit_buffers(prefix, f)
    }
    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        (**self).visit_buffers_mut(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
}

/// Layers applied one after another (Keras/PyTorch `Sequential`); parameters and buffers are
/// named `{i}.{name}` as in PyTorch's `nn.Sequential` (`"0.weight"`, `"1.running_mean"`), so a
/// torch `state_dict` of the same stack loads by its own names.
pub struct Sequential<T: Float = f32> {
    layers: Vec<Box<dyn Module<T> + Send>>,
}

impl<T: Float> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Sequential<T> {
    /// An empty stack.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let model = Sequential::<f32>::new();
    /// assert!(model.is_empty());
    /// ```
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer (builder style).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let model = Sequential::<f32>::new().add(Linear::new(4, 8)).add(ReLU).add(Linear::new(8, 2));
    /// let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]); // as torch's nn.Sequential
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module<T> + Send + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a layer in place.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut model = Sequential::<f32>::new();
    /// for _ in 0..3 {
    ///     model.push(Linear::new(4, 4));
    /// }
    /// assert_eq!(model.len(), 3);
    /// ```
    pub fn push(&mut self, layer: impl Module<T> + Send + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// Number of layers.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(Sequential::<f32>::new().add(ReLU).add(ReLU).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert!(!Sequential::<f32>::new().add(ReLU).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<T: Float> Module<T> for Sequential<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        // A loop, not a fold: a closure would end the caller-location chain.
        let mut h = x;
        for layer in &self.layers {
            h = layer.forward(h);
        }
        h
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit_params(&format!("{prefix}{i}."), f);
        }
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.visit_params_mut(&format!("{prefix}{i}."), f);
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit_buffers(&format!("{prefix}{i}."), f);
        }
    }
    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.visit_buffers_mut(&format!("{prefix}{i}."), f);
        }
    }
    fn set_training(&mut self, training: bool) {
        self.layers.iter_mut().for_each(|l| l.set_training(training));
    }
}

/// A function of one `Var` as a parameter-free module (`Lambda` in Keras).
pub struct Lambda<F>(pub F);

impl<T: Float, F> Module<T> for Lambda<F>
where
    F: for<'t> Fn(Var<'t, T>) -> Var<'t, T>,
{
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        (self.0)(x)
    }
    fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
}

/// A skip connection around a module: `x + inner(x)` (the residual block of ResNets and
/// transformers). Parameters and buffers keep the inner module's names.
///
/// ```
/// use wengert_nn::prelude::*;
/// let block = Residual::new(Linear::<f64>::new(3, 3));
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::ones([2, 3]));
/// let want = (x + block.inner.forward(x)).value();
/// assert_eq!(block.forward(x).value(), want);
/// assert_eq!(block.named_params()[0].0, "weight");
/// ```
#[derive(Clone, Debug)]
pub struct Residual<M> {
    /// The module the skip connection goes around; its output has its input's shape.
    pub inner: M,
}

impl<M> Residual<M> {
    /// `x + inner(x)`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let block = Residual::new(Sequential::<f32>::new().add(Linear::new(4, 16)).add(ReLU).add(Linear::new(16, 4)));
    /// assert_eq!(block.named_params().len(), 4);
    /// ```
    pub fn new(inner: M) -> Self {
        Residual { inner }
    }
}

impl<T: Float, M: Module<T>> Module<T> for Residual<M> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x + self.inner.forward(x)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        self.inner.visit_params(prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        self.inner.visit_params_mut(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        self.inner.visit_buffers(prefix, f)
    }
    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        self.inner.visit_buffers_mut(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.inner.set_training(training)
    }
}

/// The two parameter visitors of a layer with a `weight` and an optional `bias` field.
macro_rules! visit_weight_bias {
    () => {
        fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
            f(format!("{prefix}weight"), &self.weight);
            if let Some(b) = &self.bias {
                f(format!("{prefix}bias"), b);
            }
        }
        fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
            f(format!("{prefix}weight"), &mut self.weight);
            if let Some(b) = &mut self.bias {
                f(format!("{prefix}bias"), b);
            }
        }
    };
}
pub(crate) use visit_weight_bias;

/// The two parameter visitors of a normalisation layer whose `weight` and `bias` are both
/// present (affine) or both absent.
macro_rules! visit_affine {
    () => {
        fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
            if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
                f(format!("{prefix}weight"), w);
                f(format!("{prefix}bias"), b);
            }
        }
        fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
            if let (Some(w), Some(b)) = (&mut self.weight, &mut self.bias) {
                f(format!("{prefix}weight"), w);
                f(format!("{prefix}bias"), b);
            }
        }
    };
}
pub(crate) use visit_affine;

/// All visitors and `set_training` of a container whose children are fields, each under a
/// name: `visit_children!("LayerNorm" => layer_norm, "dense" => dense)` names the first
/// child's parameters `LayerNorm.weight`, ... (as PyTorch names submodules by attribute).
/// `"pooler" => pooler [optional]` marks an `Option` field (visited when `Some`).
macro_rules! visit_children {
    ($($name:literal => $field:ident $([$opt:ident])?),* $(,)?) => {
        fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
            $( for c in $crate::module::visit_children!(@iter self.$field $(, $opt)?) { Module::<T>::visit_params(c, &format!("{prefix}{}.", $name), f); } )*
        }
        fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
            $( for c in $crate::module::visit_children!(@iter_mut self.$field $(, $opt)?) { Module::<T>::visit_params_mut(c, &format!("{prefix}{}.", $name), f); } )*
        }
        fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, $crate::module::Buffer<T>)) {
            $( for c in $crate::module::visit_children!(@iter self.$field $(, $opt)?) { Module::<T>::visit_buffers(c, &format!("{prefix}{}.", $name), f); } )*
        }
        fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, $crate::module::BufferMut<'_, T>)) {
            $( for c in $crate::module::visit_children!(@iter_mut self.$field $(, $opt)?) { Module::<T>::visit_buffers_mut(c, &format!("{prefix}{}.", $name), f); } )*
        }
        fn set_training(&mut self, training: bool) {
            $( for c in $crate::module::visit_children!(@iter_mut self.$field $(, $opt)?) { Module::<T>::set_training(c, training); } )*
        }
    };
    (@iter $e:expr) => { std::iter::once(&$e) };
    (@iter $e:expr, $opt:tt) => { $e.iter() };
    (@iter_mut $e:expr) => { std::iter::once(&mut $e) };
    (@iter_mut $e:expr, $opt:tt) => { $e.iter_mut() };
}
pub(crate) use visit_children;
