//! [`DistributedDataParallel`]: PyTorch's `DistributedDataParallel` for a wengert-nn [`Module`].
//!
//! Each rank holds a full copy of the model. At construction the ranks check that their
//! models have the same parameters and buffers (names, kinds, shapes) and take rank 0's
//! values. Each step, every rank runs forward and backward on its shard of the global batch
//! ([`shard_batch`]), then [`DistributedDataParallel::all_reduce_gradients`] replaces each
//! gradient by its mean over the ranks, summed in flattened buckets. With equal shards and a
//! loss that is a mean over the shard, that mean is the gradient of the mean loss over the
//! global batch: `(1/n) Σ_r (n/B) Σ_{i in shard r} g_i = (1/B) Σ_i g_i`. So the optimizer step
//! is the single-process step on the global batch (up to the rounding of the sum's order), and
//! since every rank applies it to the same values with the same gradient, the parameters stay
//! equal on all ranks, bit for bit.
//!
//! **Overlap.** PyTorch starts a bucket's all-reduce from autograd hooks while backward is still
//! computing earlier layers' gradients; so does [`DistributedDataParallel::backward`], from
//! [`Var::backward_release_hooked`](wengert_core::Var::backward_release_hooked), which reports
//! each parameter's gradient as soon as the sweep has passed every op reading it (over MPI each
//! bucket's all-reduce is non-blocking and backward goes on). After a plain backward,
//! [`DistributedDataParallel::all_reduce_gradients`] reduces in buckets; with
//! [`BucketReduce::Pipelined`] over MPI it packs bucket `k + 1` while bucket `k` is in flight.

use std::ops::Range;
use std::time::Instant;

use wengert_core::{Element, Float, Gradients, Param, Tensor, Var};
use wengert_nn::data::Dataset;
use wengert_nn::{Buffer, BufferMut, Module};

use crate::comm::{BucketSet, CommElement, Communicator, ReduceOp};
use crate::error::{DistError, Result, TensorInfo, TensorKind};

/// A float type gradients are reduced in: `f32` or `f64`.
///
/// ```
/// use wengert_dist::DistFloat;
/// assert_eq!(1.0f32.to_bits_u64(), 0x3f80_0000);
/// assert_eq!(f64::from_bits_u64(2.5f64.to_bits_u64()), 2.5);
/// ```
pub trait DistFloat: Float + CommElement {
    /// The value's bit pattern, widened to `u64` (to compare values across ranks exactly).
    fn to_bits_u64(self) -> u64;
    /// The value of a bit pattern from [`DistFloat::to_bits_u64`].
    fn from_bits_u64(bits: u64) -> Self;
}

impl DistFloat for f32 {
    fn to_bits_u64(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn from_bits_u64(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
}

impl DistFloat for f64 {
    fn to_bits_u64(self) -> u64 {
        self.to_bits()
    }
    fn from_bits_u64(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}

/// The default [`DdpConfig::bucket_cap_bytes`]: 4 MiB. PyTorch's default is 25 MiB
/// (`bucket_cap_mb=25`), chosen there so that buckets become ready one after another during
/// backward, as [`DistributedDataParallel::backward`] starts them here.
/// Measured with examples/ddp_allreduce.rs (2 OpenMPI ranks on one 2-core VM, 67 MB of f32
/// gradients in 1 MiB weights, best of 10, a machine shared with other builds so ±30%): pipelined
/// 4 and 16 MiB buckets were the fastest settings (67-88 ms); 64 KiB and 1 MiB caps (128
/// buckets) took 120-140 ms pipelined, the per-request overhead of OpenMPI's non-blocking
/// collectives; one 64 MiB bucket 94-108 ms (nothing left to overlap).
///
/// ```
/// // a 128x256 f32 weight (128 KiB) fits 32 times in a default bucket
/// assert_eq!(wengert_dist::DEFAULT_BUCKET_CAP_BYTES / (128 * 256 * 4), 32);
/// ```
pub const DEFAULT_BUCKET_CAP_BYTES: usize = 4 << 20;

/// How [`DistributedDataParallel::all_reduce_gradients`] runs the buckets' all-reduces.
///
/// ```
/// use wengert_dist::{BucketReduce, DdpConfig};
/// assert_eq!(DdpConfig::default().reduce, BucketReduce::Pipelined);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketReduce {
    /// [`Communicator::all_reduce_sum_buckets`]: over MPI, a non-blocking all-reduce per
    /// bucket, the next bucket packed while the previous one is in flight (the default).
    Pipelined,
    /// One blocking all-reduce per bucket, one after another (for comparison and debugging).
    Blocking,
}

/// Options of [`DistributedDataParallel`], with PyTorch's names where there is one.
///
/// ```
/// use wengert_dist::{DdpConfig, DEFAULT_BUCKET_CAP_BYTES};
/// let cfg = DdpConfig { bucket_cap_bytes: 1 << 20, ..Default::default() };
/// assert_eq!(DdpConfig::default().bucket_cap_bytes, DEFAULT_BUCKET_CAP_BYTES);
/// assert!(cfg.broadcast_buffers);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DdpConfig {
    /// Largest flattened gradient bucket in bytes (PyTorch's `bucket_cap_mb`); a parameter
    /// larger than that gets a bucket of its own. Default [`DEFAULT_BUCKET_CAP_BYTES`] (4 MiB).
    pub bucket_cap_bytes: usize,
    /// Pipelined (default) or blocking bucket reductions.
    pub reduce: BucketReduce,
    /// Whether buffers (BatchNorm's running statistics) are set to rank 0's after each
    /// gradient reduction, as PyTorch's `broadcast_buffers=True` (the default) sets them to
    /// rank 0's before each forward. Default `true`.
    pub broadcast_buffers: bool,
}

impl Default for DdpConfig {
    fn default() -> Self {
        DdpConfig { bucket_cap_bytes: DEFAULT_BUCKET_CAP_BYTES, reduce: BucketReduce::Pipelined, broadcast_buffers: true }
    }
}

/// What one [`DistributedDataParallel::all_reduce_gradients`] did.
///
/// ```
/// use wengert_dist::ReduceStats;
/// let s = ReduceStats::default();
/// assert_eq!((s.buckets, s.elements), (0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReduceStats {
    /// buckets reduced
    pub buckets: usize,
    /// gradient elements reduced (without the one presence flag per parameter each bucket carries)
    pub elements: usize,
    /// wall time of the reduction on this rank, in seconds (packing, all-reduce, unpacking);
    /// from [`DistributedDataParallel::backward`], of backward and the reduction together,
    /// since they overlap
    pub seconds: f64,
}

/// A model replicated on every rank of `comm`, whose gradients are averaged over the ranks
/// after each backward: PyTorch's `torch.nn.parallel.DistributedDataParallel`.
///
/// It is a [`Module`] itself: `forward`, the optimizers and save/load see the wrapped model's
/// parameters by their own names (PyTorch prefixes them with `module.`; here a checkpoint saved
/// from the wrapper loads into the plain model as it is).
///
/// ```
/// use wengert_dist::{Communicator, DistributedDataParallel, ThreadComm};
/// use wengert_nn::prelude::*;
///
/// // two ranks as threads; each builds its model with a different seed
/// let weights = ThreadComm::run(2, |comm| {
///     wengert_nn::init::manual_seed(comm.rank() as u64);
///     let model = Sequential::<f32>::new().add(Linear::new(4, 3));
///     let mut ddp = DistributedDataParallel::new(model, comm).unwrap(); // rank 0's weights everywhere
///     let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
///
///     let global_x = Tensor::<f32>::from_fn([8, 4], |i| (i[0] * 4 + i[1]) as f32 / 32.0);
///     let global_y = Tensor::from_slice(&[0usize, 1, 2, 0, 1, 2, 0, 1]);
///     let x = ddp.shard(&global_x).unwrap();                  // this rank's 4 rows
///     let y = ddp.shard(&global_y).unwrap();
///     let tape = Tape::new();
///     let loss = cross_entropy(ddp.forward(tape.constant(x)), &y);
///     let mut grads = loss.backward();
///     ddp.all_reduce_gradients(&mut grads).unwrap();         // mean over the ranks
///     opt.step(&mut ddp, &grads).unwrap();
///     ddp.check_params_in_sync().unwrap();                    // equal on every rank, bit for bit
///     ddp.named_params()[0].1.value().to_vec()
/// })
/// .unwrap();
/// assert_eq!(weights[0], weights[1]);
/// ```
pub struct DistributedDataParallel<M, C, T = f32> {
    module: M,
    comm: C,
    config: DdpConfig,
    /// positions (in `visit_params` order) of the trainable parameters
    trainable: Vec<usize>,
    /// buckets as ranges of `trainable`
    buckets: Vec<Range<usize>>,
    /// the flattened bucket of [`BucketReduce::Blocking`], kept from step to step
    scratch: Vec<T>,
}

impl<M, C: Communicator, T> std::fmt::Debug for DistributedDataParallel<M, C, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedDataParallel")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .field("config", &self.config)
            .field("trainable_params", &self.trainable.len())
            .field("buckets", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

impl<T: DistFloat, M: Module<T>, C: Communicator> DistributedDataParallel<M, C, T> {
    /// Wraps `module` with [`DdpConfig::default`]; see [`DistributedDataParallel::with_config`].
    ///
    /// ```
    /// use wengert_dist::{DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 2), Local).unwrap();
    /// assert_eq!(ddp.num_buckets(), 1);
    /// ```
    pub fn new(module: M, comm: C) -> Result<Self> {
        Self::with_config(module, comm, DdpConfig::default())
    }

    /// Wraps `module`: checks that every rank's model has the same parameters and buffers
    /// (names, kinds and shapes, in the same order), then sets them all to rank 0's values.
    /// Every rank of `comm` must call it.
    ///
    /// `Err` on every rank, naming rank 0's side and the first differing rank's side:
    /// [`DistError::CountMismatch`] when the numbers of parameters or buffers differ,
    /// [`DistError::TensorMismatch`] for the first entry whose name, kind or shape differs;
    /// [`DistError::InvalidConfig`] for a bucket cap of 0 bytes.
    ///
    /// ```
    /// use wengert_dist::{Communicator, DistError, DistributedDataParallel, ThreadComm};
    /// use wengert_nn::prelude::*;
    /// // rank 1 built a wider layer than rank 0
    /// let errs = ThreadComm::run(2, |comm| {
    ///     let model = Linear::<f32>::new(4, 3 + comm.rank());
    ///     DistributedDataParallel::new(model, comm).unwrap_err()
    /// })
    /// .unwrap();
    /// assert_eq!(errs[0], errs[1]); // the same error on both ranks
    /// let DistError::TensorMismatch { rank, root, found, .. } = &errs[0] else { panic!() };
    /// assert_eq!((*rank, root.dims.clone(), found.dims.clone()), (1, vec![3, 4], vec![4, 4]));
    /// ```
    pub fn with_config(mut module: M, comm: C, config: DdpConfig) -> Result<Self> {
        if config.bucket_cap_bytes == 0 {
            return Err(DistError::InvalidConfig { field: "DdpConfig::bucket_cap_bytes", reason: "a bucket cap of 0 bytes holds nothing".into() });
        }
        let infos = state_infos(&module);
        check_same_model(&comm, &infos)?;
        broadcast_state(&mut module, &comm)?;

        let mut numels = Vec::new();
        let mut trainable = Vec::new();
        let mut position = 0;
        module.visit_params("", &mut |_, p| {
            if p.is_trainable() {
                trainable.push(position);
                numels.push(p.value().numel());
            }
            position += 1;
        });
        let buckets = plan_buckets(&numels, (config.bucket_cap_bytes / std::mem::size_of::<T>()).max(1));
        Ok(DistributedDataParallel { module, comm, config, trainable, buckets, scratch: Vec::new() })
    }

    /// The wrapped model.
    ///
    /// ```
    /// use wengert_dist::{DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 5), Local).unwrap();
    /// assert_eq!(ddp.module().num_params(), 15);
    /// ```
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The wrapped model, mutably. Changing parameters on some ranks only makes the replicas
    /// diverge ([`DistributedDataParallel::check_params_in_sync`] finds it).
    ///
    /// ```
    /// use wengert_dist::{DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let mut ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 2), Local).unwrap();
    /// ddp.module_mut().eval();
    /// ```
    pub fn module_mut(&mut self) -> &mut M {
        &mut self.module
    }

    /// The wrapped model, unwrapped (PyTorch's `ddp.module`).
    ///
    /// ```
    /// use wengert_dist::{DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 2), Local).unwrap();
    /// let model: Linear<f32> = ddp.into_inner();
    /// # let _ = model;
    /// ```
    pub fn into_inner(self) -> M {
        self.module
    }

    /// The communicator.
    ///
    /// ```
    /// use wengert_dist::{Communicator, DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 2), Local).unwrap();
    /// assert_eq!(ddp.comm().size(), 1);
    /// ```
    pub fn comm(&self) -> &C {
        &self.comm
    }

    /// The configuration it was built with.
    ///
    /// ```
    /// use wengert_dist::{DdpConfig, DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 2), Local).unwrap();
    /// assert_eq!(*ddp.config(), DdpConfig::default());
    /// ```
    pub fn config(&self) -> &DdpConfig {
        &self.config
    }

    /// Number of gradient buckets (trainable parameters grouped in `visit_params` order up to
    /// [`DdpConfig::bucket_cap_bytes`]).
    ///
    /// ```
    /// use wengert_dist::{DdpConfig, DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let model = Sequential::<f32>::new().add(Linear::new(256, 256)).add(Linear::new(256, 256));
    /// // 256 KiB weights, 1 KiB biases: with a 300 KiB cap, [w0 b0] [w1 b1]
    /// let cfg = DdpConfig { bucket_cap_bytes: 300 << 10, ..Default::default() };
    /// assert_eq!(DistributedDataParallel::with_config(model, Local, cfg).unwrap().num_buckets(), 2);
    /// ```
    pub fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// This rank's shard of a global batch of inputs or targets (rows along axis 0), as
    /// [`shard_rows`] with this rank and size.
    ///
    /// ```
    /// use wengert_dist::{DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 2), Local).unwrap();
    /// assert_eq!(ddp.shard(&Tensor::<f32>::zeros([6, 2])).unwrap().dims(), &[6, 2]); // one rank: all
    /// ```
    pub fn shard<E: Element>(&self, global: &Tensor<E>) -> Result<Tensor<E>> {
        shard_rows(global, self.comm.rank(), self.comm.size())
    }

    /// Replaces every trainable parameter's gradient in `grads` by its mean over the ranks,
    /// reduced in buckets, and (with [`DdpConfig::broadcast_buffers`]) sets the buffers to
    /// rank 0's. Call it on every rank after backward and before the optimizer step.
    ///
    /// A parameter that got no gradient on any rank keeps none (the optimizer reports it).
    /// One that got a gradient on some ranks only is [`DistError::GradientMismatch`] on every
    /// rank (its mean could not be stored where it is missing); the other gradients are then
    /// already averaged, but the step should not be taken.
    ///
    /// ```
    /// use wengert_dist::{Communicator, DistributedDataParallel, ThreadComm};
    /// use wengert_nn::prelude::*;
    /// // rank r's loss is (r + 1) * sum(w): the mean gradient is 1.5 on both ranks
    /// let grads = ThreadComm::run(2, |comm| {
    ///     let scale = comm.rank() as f64 + 1.0;
    ///     let mut ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 1), comm).unwrap();
    ///     let tape = Tape::new();
    ///     let w = tape.param(&ddp.module().weight);
    ///     let mut g = (w.sum() * scale).backward();
    ///     ddp.all_reduce_gradients(&mut g).unwrap();
    ///     g.param(&ddp.module().weight).unwrap().to_vec()
    /// })
    /// .unwrap();
    /// assert_eq!(grads, vec![vec![1.5, 1.5], vec![1.5, 1.5]]);
    /// ```
    pub fn all_reduce_gradients(&mut self, grads: &mut Gradients<T>) -> Result<ReduceStats> {
        let start = Instant::now();
        let (params, names) = trainable_params(&self.module, &self.trainable);
        let mut set = GradBuckets { buckets: &self.buckets, params: &params, names: &names, grads, size: self.comm.size(), mismatch: None };
        match self.config.reduce {
            BucketReduce::Pipelined => self.comm.all_reduce_sum_buckets(&mut set)?,
            BucketReduce::Blocking => {
                let buf = &mut self.scratch;
                for k in 0..set.count() {
                    buf.clear();
                    set.pack(k, buf);
                    self.comm.all_reduce_sum(buf)?;
                    set.unpack(k, buf);
                }
            }
        }
        let (mismatch, elements) = (set.mismatch, params.iter().map(|p| p.value().numel()).sum());
        self.finish_reduction(mismatch, elements, start)
    }

    /// Backward of `loss` (this rank's shard's loss) with the gradient all-reduce overlapping
    /// it, then the averaged gradients, as `loss.backward_release()` followed by
    /// [`DistributedDataParallel::all_reduce_gradients`] gives them (the same values, bit
    /// for bit). Buckets start in one fixed order on every rank, the last first (the sweep
    /// finishes the last-bound parameters first, [`Var::backward_release_hooked`]), each as
    /// soon as it and the buckets started before it are complete, while backward goes on
    /// through the earlier layers, as PyTorch's DDP does with autograd hooks. Over MPI the reduction runs non-blocking ([`Communicator::all_reduce_sum_streamed`]).
    /// The errors are those of `all_reduce_gradients`.
    ///
    /// ```
    /// use wengert_dist::{Communicator, DistributedDataParallel, ThreadComm};
    /// use wengert_nn::prelude::*;
    /// let grads = ThreadComm::run(2, |comm| {
    ///     let scale = comm.rank() as f64 + 1.0;
    ///     let mut ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 1), comm).unwrap();
    ///     let tape = Tape::new();
    ///     let w = tape.param(&ddp.module().weight);
    ///     let (g, _) = ddp.backward((w.sum() * scale).sum()).unwrap(); // rank r: (r + 1)·Σw
    ///     g.param(&ddp.module().weight).unwrap().to_vec()
    /// })
    /// .unwrap();
    /// assert_eq!(grads, vec![vec![1.5, 1.5], vec![1.5, 1.5]]); // the mean on both ranks
    /// ```
    ///
    /// [`Var::backward_release_hooked`]: wengert_core::Var::backward_release_hooked
    pub fn backward(&mut self, loss: Var<'_, T>) -> Result<(Gradients<T>, ReduceStats)> {
        let start = Instant::now();
        let (params, names) = trainable_params(&self.module, &self.trainable);
        // each trainable parameter's bucket and place in it (the layout GradBuckets packs)
        let mut place: Vec<(wengert_core::ParamId, usize, usize, usize)> = Vec::with_capacity(params.len()); // (id, bucket, offset, flag)
        let mut staging: Vec<Vec<T>> = Vec::with_capacity(self.buckets.len());
        let mut missing: Vec<usize> = Vec::with_capacity(self.buckets.len());
        for (k, range) in self.buckets.iter().enumerate() {
            let mut offset = 0;
            for (j, p) in params[range.clone()].iter().enumerate() {
                place.push((p.id(), k, offset, j));
                offset += p.value().numel();
            }
            staging.push(vec![T::ZERO; offset + range.len()]); // gradients, then presence flags
            missing.push(range.len());
        }
        let mut grads = None;
        let mut next = self.buckets.len(); // buckets next..len have been started
        let sums = self.comm.all_reduce_sum_streamed::<T>(self.buckets.len(), &mut |ready| {
            let g = loss.backward_release_hooked(|id, g| {
                let Some(&(_, k, offset, flag)) = place.iter().find(|&&(pid, ..)| pid == id) else { return }; // frozen or not ours
                let bucket = &mut staging[k];
                bucket[offset..offset + g.numel()].copy_from_slice(g.as_slice());
                let flags = bucket.len() - self.buckets[k].len();
                bucket[flags + flag] = T::ONE;
                missing[k] -= 1;
                // buckets start in one fixed order on every rank (the last first, as the sweep
                // finishes them), each once it and those before it in that order are complete
                while next > 0 && missing[next - 1] == 0 {
                    next -= 1;
                    ready(next, std::mem::take(&mut staging[next]));
                }
            });
            // then the rest in the same order: those with a parameter that got no gradient
            // here carry zeros and a 0 flag for it, as all_reduce_gradients packs them
            while next > 0 {
                next -= 1;
                ready(next, std::mem::take(&mut staging[next]));
            }
            grads = Some(g);
        })?;
        let mut grads = grads.expect("produce ran");
        let mut set = GradBuckets { buckets: &self.buckets, params: &params, names: &names, grads: &mut grads, size: self.comm.size(), mismatch: None };
        for (k, sum) in sums.iter().enumerate() {
            set.unpack(k, sum);
        }
        let (mismatch, elements) = (set.mismatch, params.iter().map(|p| p.value().numel()).sum());
        Ok((grads, self.finish_reduction(mismatch, elements, start)?))
    }

    /// The end of a reduction: a gradient mismatch is the error, else the buffers are synced
    /// (with [`DdpConfig::broadcast_buffers`]) and the statistics given.
    fn finish_reduction(&mut self, mismatch: Option<DistError>, elements: usize, start: Instant) -> Result<ReduceStats> {
        if let Some(e) = mismatch {
            return Err(e);
        }
        if self.config.broadcast_buffers {
            self.sync_buffers()?;
        }
        Ok(ReduceStats { buckets: self.buckets.len(), elements, seconds: start.elapsed().as_secs_f64() })
    }

    /// Sets every buffer to rank 0's value (what [`DdpConfig::broadcast_buffers`] does after
    /// each reduction); every rank must call it.
    ///
    /// ```
    /// use wengert_dist::{DistributedDataParallel, Local};
    /// use wengert_nn::prelude::*;
    /// let mut ddp = DistributedDataParallel::new(BatchNorm1d::<f32>::new(3), Local).unwrap();
    /// ddp.sync_buffers().unwrap();
    /// ```
    pub fn sync_buffers(&mut self) -> Result<()> {
        broadcast_buffers(&mut self.module, &self.comm)
    }

    /// The mean of `value` over the ranks (for logging the global batch's loss: with equal
    /// shards, the mean of the shards' mean losses).
    ///
    /// ```
    /// use wengert_dist::{Communicator, DistributedDataParallel, ThreadComm};
    /// use wengert_nn::prelude::*;
    /// let means = ThreadComm::run(2, |comm| {
    ///     let local = comm.rank() as f64 * 2.0;                 // 0 and 2
    ///     let ddp = DistributedDataParallel::new(Linear::<f64>::new(1, 1), comm).unwrap();
    ///     ddp.average_scalar(local).unwrap()
    /// })
    /// .unwrap();
    /// assert_eq!(means, vec![1.0, 1.0]);
    /// ```
    pub fn average_scalar(&self, value: T) -> Result<T> {
        let mut buf = [value];
        self.comm.all_reduce_sum(&mut buf)?;
        Ok(buf[0] / T::from_usize(self.comm.size()))
    }

    /// Checks that every parameter (trainable or frozen) is equal on all ranks, bit for bit:
    /// the elementwise minimum and maximum of the values' bit patterns over the ranks must
    /// agree (two all-reduces of the whole model, for tests and debugging).
    /// [`DistError::ParamsDiverged`] on every rank otherwise, naming the first differing
    /// parameter and element.
    ///
    /// ```
    /// use wengert_dist::{Communicator, DistError, DistributedDataParallel, ThreadComm};
    /// use wengert_nn::prelude::*;
    /// let checks = ThreadComm::run(2, |comm| {
    ///     let rank = comm.rank();
    ///     let mut ddp = DistributedDataParallel::new(Linear::<f32>::new(2, 2), comm).unwrap();
    ///     let before = ddp.check_params_in_sync();
    ///     if rank == 1 {
    ///         ddp.module_mut().weight.value_mut().data_mut()[3] += 1.0; // only on rank 1
    ///     }
    ///     (before, ddp.check_params_in_sync())
    /// })
    /// .unwrap();
    /// assert_eq!(checks[0].0, Ok(()));
    /// assert!(matches!(&checks[0].1, Err(DistError::ParamsDiverged { name, element: 3, .. }) if name == "weight"));
    /// ```
    pub fn check_params_in_sync(&self) -> Result<()> {
        let mut spans = Vec::new();
        let mut lo: Vec<u64> = Vec::new();
        self.module.visit_params("", &mut |name, p| {
            spans.push((name, lo.len()..lo.len() + p.value().numel()));
            lo.extend(p.value().as_slice().iter().map(|v| v.to_bits_u64()));
        });
        let mut hi = lo.clone();
        self.comm.all_reduce(&mut lo, ReduceOp::Min)?;
        self.comm.all_reduce(&mut hi, ReduceOp::Max)?;
        let Some(at) = lo.iter().zip(&hi).position(|(a, b)| a != b) else {
            return Ok(());
        };
        let (name, span) = spans.into_iter().find(|(_, s)| s.contains(&at)).expect("every element is in a span");
        Err(DistError::ParamsDiverged {
            name,
            element: at - span.start,
            low: T::from_bits_u64(lo[at]).to_f64(),
            high: T::from_bits_u64(hi[at]).to_f64(),
        })
    }
}

impl<T: DistFloat, M: Module<T>, C: Communicator> Module<T> for DistributedDataParallel<M, C, T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.module.forward(x)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        self.module.visit_params(prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        self.module.visit_params_mut(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        self.module.visit_buffers(prefix, f)
    }
    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        self.module.visit_buffers_mut(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.module.set_training(training)
    }
}

/// The rows `[rank * len / size, (rank + 1) * len / size)` of a global batch of `len` rows:
/// rank `rank`'s contiguous shard. `Err` unless `len` is a non-zero multiple of `size`
/// ([`DistError::BatchNotDivisible`], [`DistError::EmptyBatch`]): with unequal shards the mean
/// of the ranks' mean gradients would weight rows unequally. [`DistError::InvalidRoot`] if
/// `rank >= size`.
///
/// ```
/// use wengert_dist::shard_range;
/// assert_eq!(shard_range(32, 1, 2).unwrap(), 16..32);
/// assert_eq!(shard_range(12, 2, 4).unwrap(), 6..9);
/// assert!(shard_range(33, 0, 2).is_err());
/// ```
pub fn shard_range(len: usize, rank: usize, size: usize) -> Result<Range<usize>> {
    crate::comm::check_root(rank, size)?;
    if len == 0 {
        return Err(DistError::EmptyBatch);
    }
    if !len.is_multiple_of(size) {
        return Err(DistError::BatchNotDivisible { len, size });
    }
    let per = len / size;
    Ok(rank * per..(rank + 1) * per)
}

/// Rank `rank`'s shard of a global batch of rows along axis 0 (`[B, ...]` to `[B / size, ...]`),
/// the rows of [`shard_range`].
///
/// ```
/// use wengert_dist::shard_rows;
/// use wengert_core::Tensor;
/// let y = Tensor::from_slice(&[0usize, 1, 2, 3]);
/// assert_eq!(shard_rows(&y, 1, 2).unwrap().to_vec(), vec![2, 3]);
/// assert!(shard_rows(&Tensor::<f32>::scalar(1.0), 0, 1).is_err()); // no rows
/// ```
pub fn shard_rows<E: Element>(global: &Tensor<E>, rank: usize, size: usize) -> Result<Tensor<E>> {
    let len = global.dims().first().copied().unwrap_or(0);
    let rows: Vec<usize> = shard_range(len, rank, size)?.collect();
    Ok(global.index_select(0, &rows))
}

/// Rank `rank`'s shard of a global batch: the same rows of `x` and `y` ([`shard_rows`]).
///
/// ```
/// use wengert_dist::shard_batch;
/// use wengert_core::Tensor;
/// use wengert_nn::data::Dataset;
/// let batch = Dataset::new(Tensor::<f32>::zeros([8, 3]), Tensor::from_slice(&[0usize; 8])).unwrap();
/// let mine = shard_batch(&batch, 3, 4).unwrap();
/// assert_eq!(mine.x.dims(), &[2, 3]);
/// ```
pub fn shard_batch<T: Float, Y: Element>(batch: &Dataset<T, Y>, rank: usize, size: usize) -> Result<Dataset<T, Y>> {
    Ok(Dataset { x: shard_rows(&batch.x, rank, size)?, y: shard_rows(&batch.y, rank, size)? })
}

/// Groups consecutive parameters of `numels` elements into buckets of at most `cap`
/// elements; a parameter larger than `cap` gets its own bucket.
fn plan_buckets(numels: &[usize], cap: usize) -> Vec<Range<usize>> {
    let mut buckets = Vec::new();
    let (mut start, mut filled) = (0, 0);
    for (i, &n) in numels.iter().enumerate() {
        if i > start && filled + n > cap {
            buckets.push(start..i);
            (start, filled) = (i, 0);
        }
        filled += n;
    }
    if start < numels.len() {
        buckets.push(start..numels.len());
    }
    buckets
}

/// The trainable parameters (at positions `trainable` of `visit_params` order) and their names.
fn trainable_params<'a, T: Float, M: Module<T>>(module: &'a M, trainable: &[usize]) -> (Vec<&'a Param<T>>, Vec<String>) {
    let mut all = Vec::new();
    module.visit_params("", &mut |n, p| all.push((n, p)));
    trainable.iter().map(|&i| (all[i].1, all[i].0.clone())).unzip()
}

/// The gradients of the trainable parameters as a [`BucketSet`]: a bucket is its parameters'
/// gradients (zeros where missing) followed by one presence flag (1 or 0) per parameter, so
/// the sum tells how many ranks had each gradient.
struct GradBuckets<'a, T: Float> {
    buckets: &'a [Range<usize>],
    params: &'a [&'a Param<T>],
    names: &'a [String],
    grads: &'a mut Gradients<T>,
    size: usize,
    mismatch: Option<DistError>,
}

impl<T: DistFloat> BucketSet<T> for GradBuckets<'_, T> {
    fn count(&self) -> usize {
        self.buckets.len()
    }

    fn pack(&mut self, k: usize, out: &mut Vec<T>) {
        let members = &self.params[self.buckets[k].clone()];
        for p in members {
            match self.grads.param(p) {
                Some(g) => out.extend_from_slice(g.as_slice()),
                None => out.resize(out.len() + p.value().numel(), T::ZERO),
            }
        }
        out.extend(members.iter().map(|p| if self.grads.param(p).is_some() { T::ONE } else { T::ZERO }));
    }

    fn unpack(&mut self, k: usize, sum: &[T]) {
        let range = self.buckets[k].clone();
        let flags = &sum[sum.len() - range.len()..];
        let size = T::from_usize(self.size);
        let mut offset = 0;
        for (j, i) in range.enumerate() {
            let p = self.params[i];
            let n = p.value().numel();
            let with_grad = flags[j].to_f64().round() as usize;
            if with_grad == self.size {
                let g = self.grads.param_mut(p).expect("present on every rank, so here").data_mut();
                for (d, &s) in g.iter_mut().zip(&sum[offset..offset + n]) {
                    *d = s / size;
                }
            } else if with_grad != 0 && self.mismatch.is_none() {
                let here = self.grads.param(p).is_some();
                self.mismatch = Some(DistError::GradientMismatch { name: self.names[i].to_string(), with_grad, size: self.size, here });
            }
            offset += n;
        }
    }
}

/// Name, kind and shape of every parameter (in `visit_params` order), then every buffer.
fn state_infos<T: Float, M: Module<T>>(module: &M) -> Vec<TensorInfo> {
    let mut infos = Vec::new();
    module.visit_params("", &mut |name, p| {
        infos.push(TensorInfo { name, kind: TensorKind::Param { trainable: p.is_trainable() }, dims: p.value().dims().to_vec() })
    });
    module.visit_buffers("", &mut |name, b| {
        let kind = if matches!(b, Buffer::Int(_)) { TensorKind::IntBuffer } else { TensorKind::FloatBuffer };
        infos.push(TensorInfo { name, kind, dims: b.dims().to_vec() })
    });
    infos
}

const STATE_MAGIC: &[u8; 4] = b"WDS1";

fn encode_infos(infos: &[TensorInfo]) -> Vec<u8> {
    let mut out = STATE_MAGIC.to_vec();
    let put = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u64).to_le_bytes());
    put(&mut out, infos.len());
    for info in infos {
        out.push(match info.kind {
            TensorKind::Param { trainable: false } => 0,
            TensorKind::Param { trainable: true } => 1,
            TensorKind::FloatBuffer => 2,
            TensorKind::IntBuffer => 3,
        });
        put(&mut out, info.name.len());
        out.extend_from_slice(info.name.as_bytes());
        put(&mut out, info.dims.len());
        for &d in &info.dims {
            put(&mut out, d);
        }
    }
    out
}

fn decode_infos(bytes: &[u8], rank: usize) -> Result<Vec<TensorInfo>> {
    let bad = |reason: &str| DistError::Protocol { rank, reason: reason.to_string() };
    let mut rest = bytes.strip_prefix(STATE_MAGIC.as_slice()).ok_or_else(|| bad("not a wengert-dist model description"))?;
    let mut take = |n: usize| -> Result<&[u8]> {
        if rest.len() < n {
            return Err(bad("truncated model description"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    fn word(b: &[u8]) -> usize {
        u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize
    }
    let count = word(take(8)?);
    let mut infos = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        let kind = match take(1)?[0] {
            0 => TensorKind::Param { trainable: false },
            1 => TensorKind::Param { trainable: true },
            2 => TensorKind::FloatBuffer,
            3 => TensorKind::IntBuffer,
            k => return Err(bad(&format!("unknown tensor kind {k}"))),
        };
        let len = word(take(8)?);
        let name = String::from_utf8(take(len)?.to_vec()).map_err(|_| bad("a name is not UTF-8"))?;
        let ndim = word(take(8)?);
        let dims = (0..ndim).map(|_| take(8).map(word)).collect::<Result<Vec<usize>>>()?;
        infos.push(TensorInfo { name, kind, dims });
    }
    Ok(infos)
}

/// The first difference between rank 0's model description and rank `rank`'s.
fn compare_infos(root: &[TensorInfo], found: &[TensorInfo], rank: usize) -> Option<DistError> {
    let is_param = |i: &&TensorInfo| matches!(i.kind, TensorKind::Param { .. });
    let params = |v: &[TensorInfo]| v.iter().filter(is_param).count();
    let (root_params, found_params) = (params(root), params(found));
    if root_params != found_params {
        return Some(DistError::CountMismatch { what: "parameters", rank, root_count: root_params, count: found_params });
    }
    let (root_buffers, found_buffers) = (root.len() - root_params, found.len() - found_params);
    if root_buffers != found_buffers {
        return Some(DistError::CountMismatch { what: "buffers", rank, root_count: root_buffers, count: found_buffers });
    }
    let index = root.iter().zip(found).position(|(a, b)| a != b)?;
    Some(DistError::TensorMismatch { index, rank, root: Box::new(root[index].clone()), found: Box::new(found[index].clone()) })
}

/// `bytes` of rank `root` on every rank (its length first).
fn broadcast_bytes<C: Communicator>(comm: &C, mut bytes: Vec<u8>, root: usize) -> Result<Vec<u8>> {
    let mut len = [bytes.len() as u64];
    comm.broadcast(&mut len, root)?;
    bytes.resize(len[0] as usize, 0);
    comm.broadcast(&mut bytes, root)?;
    Ok(bytes)
}

/// Rank 0 sends its model description; each rank compares it with its own; the lowest rank
/// that differs sends its description, so every rank builds the same error naming both sides.
fn check_same_model<C: Communicator>(comm: &C, mine: &[TensorInfo]) -> Result<()> {
    let rank = comm.rank();
    let own = encode_infos(mine);
    let root_bytes = broadcast_bytes(comm, if rank == 0 { own.clone() } else { Vec::new() }, 0)?;
    let differs = match decode_infos(&root_bytes, 0) {
        Ok(root) => compare_infos(&root, mine, rank).is_some(),
        Err(_) => true,
    };
    let mut first = [if differs { rank as u64 } else { u64::MAX }];
    comm.all_reduce(&mut first, ReduceOp::Min)?;
    if first[0] == u64::MAX {
        return Ok(());
    }
    let culprit = first[0] as usize;
    let theirs = broadcast_bytes(comm, if rank == culprit { own } else { Vec::new() }, culprit)?;
    let root = decode_infos(&root_bytes, 0)?;
    let theirs = decode_infos(&theirs, culprit)?;
    Err(compare_infos(&root, &theirs, culprit).unwrap_or_else(|| DistError::Protocol {
        rank: culprit,
        reason: "it reported a different model but sent the same description".into(),
    }))
}

/// Every parameter and buffer set to rank 0's value.
fn broadcast_state<T: DistFloat, M: Module<T>, C: Communicator>(module: &mut M, comm: &C) -> Result<()> {
    let mut result = Ok(());
    module.visit_params_mut("", &mut |_, p| {
        if result.is_ok() {
            result = comm.broadcast(p.value_mut().data_mut(), 0);
        }
    });
    result?;
    broadcast_buffers(module, comm)
}

fn broadcast_buffers<T: DistFloat, M: Module<T>, C: Communicator>(module: &mut M, comm: &C) -> Result<()> {
    let mut result = Ok(());
    module.visit_buffers_mut("", &mut |_, b| {
        if result.is_ok() {
            result = match b {
                BufferMut::Float(t) => comm.broadcast(t.data_mut(), 0),
                BufferMut::Int(t) => comm.broadcast(t.data_mut(), 0),
            };
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Local, ThreadComm};
    use wengert_nn::prelude::*;

    fn mlp(seed: u64) -> Sequential<f64> {
        wengert_nn::init::manual_seed(seed);
        Sequential::new().add(Linear::new(5, 7)).add(Tanh).add(Linear::new(7, 3))
    }

    fn data() -> (Tensor<f64>, Tensor<usize>) {
        let x = Tensor::from_fn([12, 5], |i| ((i[0] * 5 + i[1]) as f64 * 0.37).sin());
        let y = Tensor::from_vec((0..12).map(|i| i % 3).collect(), [12]).unwrap();
        (x, y)
    }

    #[test]
    fn buckets_respect_the_cap_and_give_large_params_their_own() {
        assert_eq!(plan_buckets(&[3, 3, 3], 6), vec![0..2, 2..3]);
        assert_eq!(plan_buckets(&[10, 1, 1], 4), vec![0..1, 1..3]);
        assert_eq!(plan_buckets(&[1, 10, 1], 4), vec![0..1, 1..2, 2..3]);
        assert_eq!(plan_buckets(&[], 4), Vec::<Range<usize>>::new());
    }

    #[test]
    fn model_descriptions_round_trip_and_reject_garbage() {
        let infos = state_infos(&Sequential::<f32>::new().add(Linear::new(2, 3)).add(BatchNorm1d::new(3)));
        assert_eq!(infos.len(), 7); // 2 + 2 parameters, 3 buffers
        assert_eq!(decode_infos(&encode_infos(&infos), 0).unwrap(), infos);
        let bytes = encode_infos(&infos);
        assert!(matches!(decode_infos(&bytes[..bytes.len() - 3], 2), Err(DistError::Protocol { rank: 2, .. })));
        assert!(matches!(decode_infos(b"nope", 1), Err(DistError::Protocol { rank: 1, .. })));
    }

    /// One SGD step of the 3-rank run on 4-row shards equals the 1-rank step on all 12 rows.
    #[test]
    fn averaged_shard_gradients_equal_the_global_batch_gradient() {
        let (x, y) = data();
        fn step<C: Communicator>(ddp: &mut DistributedDataParallel<Sequential<f64>, C, f64>, x: &Tensor<f64>, y: &Tensor<usize>) -> (f64, ReduceStats) {
            let tape = Tape::new();
            let loss = cross_entropy(ddp.forward(tape.constant(x.clone())), y);
            let l = loss.value().item();
            let mut g = loss.backward();
            let stats = ddp.all_reduce_gradients(&mut g).unwrap();
            let mut opt = Sgd::new(SgdConfig { lr: 0.5, ..Default::default() });
            opt.step(ddp, &g).unwrap();
            (ddp.average_scalar(l).unwrap(), stats)
        }
        let mut single = DistributedDataParallel::new(mlp(0), Local).unwrap();
        let (loss1, _) = step(&mut single, &x, &y);
        let want: Vec<Vec<f64>> = single.named_params().iter().map(|(_, p)| p.value().to_vec()).collect();

        let runs = ThreadComm::run(3, |comm| {
            let rank = comm.rank();
            let mut ddp = DistributedDataParallel::new(mlp(rank as u64), comm).unwrap(); // rank 0's init wins
            let (xs, ys) = (ddp.shard(&x).unwrap(), ddp.shard(&y).unwrap());
            assert_eq!(xs.dims(), &[4, 5]);
            let (loss, stats) = step(&mut ddp, &xs, &ys);
            ddp.check_params_in_sync().unwrap();
            (loss, stats, ddp.named_params().iter().map(|(_, p)| p.value().to_vec()).collect::<Vec<_>>())
        })
        .unwrap();
        for (loss, stats, params) in runs {
            assert!((loss - loss1).abs() <= 1e-14 * loss1.abs(), "{loss} vs {loss1}");
            assert_eq!((stats.buckets, stats.elements), (1, 5 * 7 + 7 + 7 * 3 + 3));
            for (got, want) in params.iter().zip(&want) {
                for (a, b) in got.iter().zip(want) {
                    assert!((a - b).abs() <= 1e-14, "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn blocking_and_pipelined_reductions_agree_bit_for_bit_with_many_buckets() {
        let (x, y) = data();
        let (x, y) = (&x, &y);
        let run = |reduce| {
            ThreadComm::run(2, move |comm| {
                let cfg = DdpConfig { bucket_cap_bytes: 8 * 8, reduce, ..Default::default() }; // 8 f64 per bucket
                let ddp = DistributedDataParallel::with_config(mlp(1), comm, cfg).unwrap();
                assert_eq!(ddp.num_buckets(), 4); // [w0] [b0] [w1] [b1]: each weight alone, biases alone
                let tape = Tape::new();
                let xs = ddp.shard(x).unwrap();
                let mut g = cross_entropy(ddp.forward(tape.constant(xs)), &ddp.shard(y).unwrap()).backward();
                let mut ddp = ddp;
                ddp.all_reduce_gradients(&mut g).unwrap();
                ddp.named_params().iter().flat_map(|(_, p)| g.param(p).unwrap().to_vec()).map(f64::to_bits).collect::<Vec<u64>>()
            })
            .unwrap()
        };
        let (a, b) = (run(BucketReduce::Pipelined), run(BucketReduce::Blocking));
        assert_eq!(a[0], a[1]);
        assert_eq!(a, b);
    }

    /// The overlapped backward gives what backward then all_reduce_gradients gives, bit for
    /// bit, with many buckets finishing in the sweep's order (last layer first).
    #[test]
    fn overlapped_backward_equals_backward_then_all_reduce() {
        let (x, y) = data();
        let (x, y) = (&x, &y);
        let run = |overlap: bool| {
            ThreadComm::run(2, move |comm| {
                let cfg = DdpConfig { bucket_cap_bytes: 8 * 8, ..Default::default() };
                let mut ddp = DistributedDataParallel::with_config(mlp(1), comm, cfg).unwrap();
                let tape = Tape::new();
                let loss = cross_entropy(ddp.forward(tape.constant(ddp.shard(x).unwrap())), &ddp.shard(y).unwrap());
                let g = if overlap {
                    let (g, stats) = ddp.backward(loss).unwrap();
                    assert_eq!(stats.buckets, 4);
                    g
                } else {
                    let mut g = loss.backward_release();
                    ddp.all_reduce_gradients(&mut g).unwrap();
                    g
                };
                ddp.named_params().iter().flat_map(|(_, p)| g.param(p).unwrap().to_vec()).map(f64::to_bits).collect::<Vec<u64>>()
            })
            .unwrap()
        };
        let (a, b) = (run(true), run(false));
        assert_eq!(a[0], a[1]);
        assert_eq!(a, b);
    }

    #[test]
    fn overlapped_backward_reports_a_parameter_used_on_some_ranks_only() {
        let errs = ThreadComm::run(2, |comm| {
            let rank = comm.rank();
            let model = Sequential::<f64>::new().add(Linear::new(2, 2)).add(Linear::new(2, 2));
            let mut ddp = DistributedDataParallel::with_config(model, comm, DdpConfig { bucket_cap_bytes: 8 * 4, ..Default::default() }).unwrap();
            let tape = Tape::new();
            let params: Vec<Var<'_, f64>> = ddp.module().named_params().iter().map(|(_, p)| tape.param(p)).collect();
            // every rank uses the first layer; only rank 0 the second
            let mut loss = params[0].sum() + params[1].sum();
            if rank == 0 {
                loss = loss + params[2].sum() + params[3].sum();
            }
            ddp.backward(loss).map(|_| ()).unwrap_err()
        })
        .unwrap();
        for (rank, e) in errs.iter().enumerate() {
            let DistError::GradientMismatch { name, with_grad, size, here } = e else { panic!("rank {rank}: {e}") };
            assert_eq!((name.as_str(), *with_grad, *size, *here), ("1.weight", 1, 2, rank == 0), "rank {rank}");
        }
    }

    #[test]
    fn mismatched_models_fail_on_every_rank_naming_both_sides() {
        let errs = ThreadComm::run(3, |comm| {
            let model = if comm.rank() == 2 { Sequential::<f64>::new().add(Linear::new(5, 7)) } else { mlp(0) };
            DistributedDataParallel::new(model, comm).unwrap_err()
        })
        .unwrap();
        let want = DistError::CountMismatch { what: "parameters", rank: 2, root_count: 4, count: 2 };
        assert!(errs.iter().all(|e| *e == want), "{errs:?}");
        assert_eq!(want.to_string(), "wengert-dist: the ranks' models differ: rank 0 has 4 parameters, rank 2 has 2");

        let errs = ThreadComm::run(2, |comm| {
            let mut model = mlp(0);
            if comm.rank() == 1 {
                model.named_params_mut()[1].1.set_trainable(false);
            }
            DistributedDataParallel::new(model, comm).unwrap_err()
        })
        .unwrap();
        assert_eq!(errs[0], errs[1]);
        assert_eq!(
            errs[0].to_string(),
            "wengert-dist: the ranks' models differ at state entry #1: rank 0 has '0.bias' [7] (trainable parameter), \
             rank 1 has '0.bias' [7] (frozen parameter)"
        );

        let errs = ThreadComm::run(2, |comm| {
            let model = Sequential::<f32>::new().add(BatchNorm1d::new(3 + comm.rank()));
            DistributedDataParallel::new(model, comm).unwrap_err()
        })
        .unwrap();
        assert!(matches!(&errs[1], DistError::TensorMismatch { index: 0, rank: 1, root, found } if root.dims == [3] && found.dims == [4]));
    }

    #[test]
    fn parameters_and_buffers_start_from_rank_0() {
        let out = ThreadComm::run(2, |comm| {
            wengert_nn::init::manual_seed(comm.rank() as u64 + 10);
            let mut model = Sequential::<f32>::new().add(Linear::new(3, 3)).add(BatchNorm1d::new(3));
            if comm.rank() == 1 {
                // rank 1's running statistics differ before the wrap
                model.train();
                let tape = Tape::new();
                model.forward(tape.constant(Tensor::from_fn([4, 3], |i| i[0] as f32)));
            }
            let ddp = DistributedDataParallel::new(model, comm).unwrap();
            (ddp.state_dict(), ddp.check_params_in_sync())
        })
        .unwrap();
        assert_eq!(out[0].0, out[1].0);
        assert_eq!(out[1].1, Ok(()));
    }

    #[test]
    fn a_gradient_on_some_ranks_only_is_an_error_on_all() {
        let errs = ThreadComm::run(2, |comm| {
            let rank = comm.rank();
            let mut ddp = DistributedDataParallel::new(mlp(0), comm).unwrap();
            let tape = Tape::new();
            // rank 1's loss leaves out the last parameter, '2.bias'
            let used = if rank == 0 { 4 } else { 3 };
            let out = ddp.named_params()[..used].iter().map(|(_, p)| tape.param(p).sum()).reduce(|a, b| a + b).unwrap();
            let mut g = out.backward();
            ddp.all_reduce_gradients(&mut g).unwrap_err()
        })
        .unwrap();
        assert_eq!(errs[0], DistError::GradientMismatch { name: "2.bias".into(), with_grad: 1, size: 2, here: true });
        assert_eq!(errs[1], DistError::GradientMismatch { name: "2.bias".into(), with_grad: 1, size: 2, here: false });
    }

    #[test]
    fn bad_batches_and_configs_are_errors() {
        assert_eq!(shard_range(0, 0, 2), Err(DistError::EmptyBatch));
        assert_eq!(shard_range(7, 0, 2), Err(DistError::BatchNotDivisible { len: 7, size: 2 }));
        assert_eq!(shard_range(8, 2, 2), Err(DistError::InvalidRoot { root: 2, size: 2 }));
        let batch = Dataset::new(Tensor::<f32>::zeros([5, 2]), Tensor::from_slice(&[0usize; 5])).unwrap();
        assert_eq!(shard_batch(&batch, 0, 2).unwrap_err(), DistError::BatchNotDivisible { len: 5, size: 2 });
        let cfg = DdpConfig { bucket_cap_bytes: 0, ..Default::default() };
        assert!(matches!(
            DistributedDataParallel::with_config(Linear::<f32>::new(1, 1), Local, cfg),
            Err(DistError::InvalidConfig { field: "DdpConfig::bucket_cap_bytes", .. })
        ));
    }
}
