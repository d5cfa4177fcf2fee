//! Data-parallel training of the 64-128-10 digits MLP (examples/mlp_digits.rs's model and
//! data) over MPI: every rank trains on its half (third, ...) of each global batch of 32 and
//! the gradients are averaged, so the run follows the single-process run on the same global
//! batches. Rank 0 prints the loss per epoch and the test accuracy.
//!
//! ```sh
//! cargo build --release -p wengert-dist --features mpi --example ddp_digits
//! mpirun -np 2 target/release/examples/ddp_digits            # 2 ranks (add --oversubscribe
//!                                                            # on a 1-core machine)
//! target/release/examples/ddp_digits --single                # 1 process, same global batch
//! ```
//!
//! Options: `--epochs N` (30), `--batch B` (global batch, 32), `--seed S` (0), `--lr X`
//! (1e-3), `--single`, `--f64` (train in f64), `--check-sync` (check after every step that the parameters are equal
//! on all ranks, bit for bit), `--report FILE` (write each rank's per-step losses and
//! parameter fingerprints to `FILE.rank<r>`), `--limits` (first print this machine's FMA peak,
//! as benches/README.md gives it beside every figure), `--quiet`.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use wengert_dist::{shard_batch, Communicator, DistFloat, DistributedDataParallel};
use wengert_nn::data::{load_digits, repo_data_path, Dataset};
use wengert_nn::metrics::argmax_rows;
use wengert_nn::prelude::*;
use wengert_nn::train::predict;

/// How to train.
#[derive(Clone, Debug)]
pub struct Options {
    /// passes over the training set
    pub epochs: usize,
    /// rows per global batch (split over the ranks; the last partial batch is dropped)
    pub batch: usize,
    /// seeds the split, the shuffling and rank 0's initial weights
    pub seed: u64,
    /// Adam's learning rate
    pub lr: f64,
    /// check after every step that the parameters agree across ranks bit for bit
    pub check_sync: bool,
    /// record a fingerprint of the parameters after every step ([`Report::fingerprints`])
    pub fingerprints: bool,
    /// print the loss per epoch (rank 0)
    pub verbose: bool,
    /// reduce the gradients while backward runs ([`DistributedDataParallel::backward`]);
    /// `false`: backward, then [`DistributedDataParallel::all_reduce_gradients`]
    pub overlap: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { epochs: 30, batch: 32, seed: 0, lr: 1e-3, check_sync: false, fingerprints: false, verbose: true, overlap: true }
    }
}

/// What a run produced on one rank.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// this rank and the number of ranks
    pub rank: usize,
    /// number of ranks (1 for the single-process run)
    pub size: usize,
    /// the global batch's mean loss at every step
    pub step_losses: Vec<f64>,
    /// FNV-1a hash of every parameter's bits after every step (with [`Options::fingerprints`])
    pub fingerprints: Vec<u64>,
    /// mean loss per epoch
    pub epoch_losses: Vec<f64>,
    /// accuracy on the held-out 20%
    pub test_accuracy: f64,
    /// training wall time (all steps), seconds
    pub seconds: f64,
    /// of which in the gradient all-reduce (with `overlap`: in backward and the all-reduce
    /// together), seconds
    pub reduce_seconds: f64,
}

fn mlp<T: Float>() -> Sequential<T> {
    Sequential::new().add(Linear::new(64, 128)).add(ReLU).add(Linear::new(128, 10))
}

/// The digits scaled to 0..1 and split 80/20 (stratified) as mlp_digits does, in `T`.
fn data<T: Float>(seed: u64) -> wengert_nn::Result<(Dataset<T>, Dataset<T>)> {
    let digits = load_digits(repo_data_path("digits.csv.gz"))?;
    let data = Dataset::new(digits.x.cast(|p| T::from_f64(f64::from(p) / 16.0)), digits.y)?;
    data.stratified_split(0.2, &mut rand::rngs::StdRng::seed_from_u64(seed))
}

/// FNV-1a over the bits of every parameter, in order.
fn fingerprint<T: DistFloat, M: Module<T>>(model: &M) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    model.visit_params("", &mut |_, p| {
        for v in p.value().as_slice() {
            for b in v.to_bits_u64().to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    });
    h
}

fn accuracy<T: Float, M: Module<T>>(model: &mut M, test: &Dataset<T>) -> wengert_nn::Result<f64> {
    model.eval();
    let pred = argmax_rows(&predict(model, &test.x, 512)?);
    model.train();
    Ok(pred.iter().zip(test.y.as_slice()).filter(|(p, y)| p == y).count() as f64 / test.len() as f64)
}

fn print_epoch(opts: &Options, epoch: usize, losses: &[f64]) {
    if opts.verbose {
        println!("epoch {:>2}  loss {:.5}", epoch + 1, losses.last().copied().unwrap_or(f64::NAN));
    }
}

/// The reference: one process, plain training loop, no wengert-dist.
pub fn run_single<T: DistFloat>(opts: &Options) -> Result<Report, Box<dyn Error>> {
    let (train, test) = data::<T>(opts.seed)?;
    wengert_nn::init::manual_seed(opts.seed);
    let mut model = mlp::<T>();
    let mut opt = Adam::new(AdamConfig { lr: opts.lr, ..Default::default() });
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let (mut step_losses, mut fingerprints, mut epoch_losses) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    for epoch in 0..opts.epochs {
        let first = step_losses.len();
        for batch in train.batches(opts.batch, Some(&mut rng), true)? {
            let tape = Tape::new();
            let loss = cross_entropy(model.forward(tape.constant(batch.x)), &batch.y);
            step_losses.push(loss.value().item().to_f64());
            let grads = loss.backward_release();
            opt.step(&mut model, &grads)?;
            if opts.fingerprints {
                fingerprints.push(fingerprint(&model));
            }
        }
        epoch_losses.push(step_losses[first..].iter().sum::<f64>() / (step_losses.len() - first) as f64);
        print_epoch(opts, epoch, &epoch_losses);
    }
    let seconds = start.elapsed().as_secs_f64();
    let test_accuracy = accuracy(&mut model, &test)?;
    Ok(Report { rank: 0, size: 1, step_losses, fingerprints, epoch_losses, test_accuracy, seconds, reduce_seconds: 0.0 })
}

/// The same training, data-parallel over `comm`: each rank takes its shard of every global
/// batch (the same shuffled batches on every rank: same seed), its own initial weights
/// (seed + rank) are replaced by rank 0's, and gradients are averaged before every step.
pub fn run_ddp<T: DistFloat, C: Communicator>(comm: C, opts: &Options) -> Result<Report, Box<dyn Error>> {
    let (rank, size) = (comm.rank(), comm.size());
    let (train, test) = data::<T>(opts.seed)?;
    wengert_nn::init::manual_seed(opts.seed + rank as u64);
    let mut ddp = DistributedDataParallel::new(mlp::<T>(), comm)?;
    let mut opt = Adam::new(AdamConfig { lr: opts.lr, ..Default::default() });
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let (mut step_losses, mut fingerprints, mut epoch_losses) = (Vec::new(), Vec::new(), Vec::new());
    let mut reduce_seconds = 0.0;
    let verbose = Options { verbose: opts.verbose && rank == 0, ..opts.clone() };
    let start = Instant::now();
    for epoch in 0..opts.epochs {
        let first = step_losses.len();
        for batch in train.batches(opts.batch, Some(&mut rng), true)? {
            let mine = shard_batch(&batch, rank, size)?;
            let tape = Tape::new();
            let loss = cross_entropy(ddp.forward(tape.constant(mine.x)), &mine.y);
            step_losses.push(ddp.average_scalar(loss.value().item())?.to_f64());
            let grads = if opts.overlap {
                let (grads, stats) = ddp.backward(loss)?;
                reduce_seconds += stats.seconds;
                grads
            } else {
                let mut grads = loss.backward_release();
                reduce_seconds += ddp.all_reduce_gradients(&mut grads)?.seconds;
                grads
            };
            opt.step(&mut ddp, &grads)?;
            if opts.check_sync {
                ddp.check_params_in_sync()?;
            }
            if opts.fingerprints {
                fingerprints.push(fingerprint(&ddp));
            }
        }
        epoch_losses.push(step_losses[first..].iter().sum::<f64>() / (step_losses.len() - first) as f64);
        print_epoch(&verbose, epoch, &epoch_losses);
    }
    let seconds = start.elapsed().as_secs_f64();
    let test_accuracy = accuracy(&mut ddp, &test)?;
    Ok(Report { rank, size, step_losses, fingerprints, epoch_losses, test_accuracy, seconds, reduce_seconds })
}

impl Report {
    /// Writes the report as text: a header line, then `step loss-bits fingerprint` per step.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut s = format!(
            "rank {} size {} accuracy {} seconds {} reduce_seconds {}\n",
            self.rank, self.size, self.test_accuracy, self.seconds, self.reduce_seconds
        );
        for (i, (l, f)) in self.step_losses.iter().zip(&self.fingerprints).enumerate() {
            s.push_str(&format!("{i} {:016x} {f:016x}\n", l.to_bits()));
        }
        std::fs::write(path, s)
    }

    /// Reads what [`Report::write`] wrote (epoch losses are not kept).
    pub fn read(path: &Path) -> Result<Report, Box<dyn Error>> {
        let text = std::fs::read_to_string(path)?;
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().ok_or("empty report")?.split(' ').collect();
        let field = |name: &str| -> Result<&str, Box<dyn Error>> {
            let i = head.iter().position(|w| *w == name).ok_or_else(|| format!("no {name} in {}", path.display()))?;
            Ok(head.get(i + 1).copied().unwrap_or(""))
        };
        let mut r = Report {
            rank: field("rank")?.parse()?,
            size: field("size")?.parse()?,
            step_losses: Vec::new(),
            fingerprints: Vec::new(),
            epoch_losses: Vec::new(),
            test_accuracy: field("accuracy")?.parse()?,
            seconds: field("seconds")?.parse()?,
            reduce_seconds: field("reduce_seconds")?.parse()?,
        };
        for line in lines {
            let w: Vec<&str> = line.split(' ').collect();
            let [_, loss, fp] = w[..] else { return Err(format!("bad line in {}: {line}", path.display()).into()) };
            r.step_losses.push(f64::from_bits(u64::from_str_radix(loss, 16)?));
            r.fingerprints.push(u64::from_str_radix(fp, 16)?);
        }
        Ok(r)
    }
}

/// One kernel thread per core this rank gets: the cores divided among the ranks on this host
/// (OpenMPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's `MPI_LOCALNRANKS`), unless
/// `WENGERT_NUM_THREADS` says otherwise; two ranks each running two threads on two cores
/// would fight over them.
pub fn share_cores_among_local_ranks() {
    if std::env::var_os("WENGERT_NUM_THREADS").is_some() {
        return;
    }
    let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    wengert_core::runtime::set_num_threads((cores / local).max(1));
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let mut opts = Options::default();
    let (mut single, mut f64_run, mut report) = (false, false, None::<String>);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--epochs" => opts.epochs = value("--epochs")?.parse()?,
            "--batch" => opts.batch = value("--batch")?.parse()?,
            "--seed" => opts.seed = value("--seed")?.parse()?,
            "--lr" => opts.lr = value("--lr")?.parse()?,
            "--report" => {
                report = Some(value("--report")?);
                opts.fingerprints = true;
            }
            "--f64" => f64_run = true,
            "--limits" => {
                // before MPI starts, so a rank's measurement is not shared with another's
                let l = wengert_core::roofline::Limits::measure();
                println!("FMA peak {:.0} GFLOP/s ({:.0} on one thread)", l.peak_flops / 1e9, l.peak_flops_1t / 1e9);
            }
            "--single" => single = true,
            "--check-sync" => opts.check_sync = true,
            "--no-overlap" => opts.overlap = false,
            "--quiet" => opts.verbose = false,
            other => return Err(format!("unknown argument {other} (see the top of examples/ddp_digits.rs)").into()),
        }
    }
    let r = if single {
        if f64_run {
            run_single::<f64>(&opts)?
        } else {
            run_single::<f32>(&opts)?
        }
    } else {
        share_cores_among_local_ranks();
        let comm = wengert_dist::MpiComm::init()?;
        if opts.verbose && comm.rank() == 0 {
            println!("{} rank(s), global batch {}, {} row(s) per rank", comm.size(), opts.batch, opts.batch / comm.size().max(1));
        }
        if f64_run {
            run_ddp::<f64, _>(comm, &opts)?
        } else {
            run_ddp::<f32, _>(comm, &opts)?
        }
    };
    if let Some(path) = report {
        r.write(Path::new(&format!("{path}.rank{}", r.rank)))?;
    }
    if opts.verbose && r.rank == 0 {
        let steps = r.step_losses.len().max(1);
        println!("test accuracy {:.2}%", 100.0 * r.test_accuracy);
        println!(
            "{} steps in {:.3} s: {:.1} µs per step, of which {:.1} µs {} ({} rank(s){})",
            steps,
            r.seconds,
            1e6 * r.seconds / steps as f64,
            1e6 * r.reduce_seconds / steps as f64,
            if opts.overlap && !single { "backward + all-reduce, overlapped" } else { "all-reduce" },
            r.size,
            if opts.check_sync { ", parameters checked equal on every rank after every step" } else { "" }
        );
    }
    Ok(())
}
