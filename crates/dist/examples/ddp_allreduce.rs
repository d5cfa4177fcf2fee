//! Gradient all-reduce throughput of `DistributedDataParallel` by bucket size and mode, under
//! MPI: a model of 64 x Linear(512, 512) (16.8M f32 parameters in 1 MiB weights, 67 MB of
//! gradients), its
//! gradients all-reduced (averaged) with bucket caps from 64 KiB to 64 MiB, pipelined
//! (non-blocking all-reduce of a bucket while the next is packed) and blocking. Rank 0 prints
//! the best of `--reps` (5) runs per setting. This is the measurement behind
//! `DEFAULT_BUCKET_CAP_BYTES`.
//!
//! With `--step`, it times whole training steps instead (forward, backward, reduction) of an
//! MLP of 16 x Linear(512, 512) with ReLU on 256 rows per rank, 1 MiB buckets (16 of them),
//! with the reduction after backward (`backward_release` + `all_reduce_gradients`) and
//! overlapping it (`DistributedDataParallel::backward`), best of `--reps` steps each.
//!
//! ```sh
//! cargo build --release -p wengert-dist --features mpi --example ddp_allreduce
//! mpirun -np 2 target/release/examples/ddp_allreduce
//! mpirun -np 2 target/release/examples/ddp_allreduce --step
//! ```

use wengert_dist::{BucketReduce, Communicator, DdpConfig, DistributedDataParallel, MpiComm};
use wengert_nn::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut reps, mut step) = (5, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            "--step" => step = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let comm = MpiComm::init()?;
    if step {
        return time_steps(&comm, reps.max(10));
    }
    let (rank, size) = (comm.rank(), comm.size());
    let model = || (0..64).fold(Sequential::<f32>::new(), |s, _| s.add(Linear::new(512, 512)));
    if rank == 0 {
        println!("{size} rank(s) on {}, {} parameters (f32)", comm.processor_name(), model().num_params());
        println!("{:>10} {:>10} {:>8} {:>10} {:>10}", "bucket", "mode", "buckets", "ms", "GB/s");
    }
    for cap in [64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20] {
        for reduce in [BucketReduce::Pipelined, BucketReduce::Blocking] {
            let cfg = DdpConfig { bucket_cap_bytes: cap, reduce, ..Default::default() };
            let mut ddp = DistributedDataParallel::with_config(model(), &comm, cfg)?;
            let mut best = f64::INFINITY;
            let mut stats = Default::default();
            for _ in 0..reps {
                let tape = Tape::new();
                let loss = ddp.named_params().iter().map(|(_, p)| tape.param(p).sum()).reduce(|a, b| a + b).ok_or("no parameters")?;
                let mut grads = loss.backward_release();
                comm.barrier()?;
                stats = ddp.all_reduce_gradients(&mut grads)?;
                best = best.min(stats.seconds);
            }
            if rank == 0 {
                let gb = (stats.elements * std::mem::size_of::<f32>()) as f64 / 1e9;
                println!("{:>7} KiB {:>10} {:>8} {:>10.2} {:>10.2}", cap >> 10, format!("{reduce:?}"), stats.buckets, 1e3 * best, gb / best);
            }
        }
    }
    Ok(())
}

/// Training steps with the reduction after backward and overlapping it (see the top).
fn time_steps(comm: &MpiComm, reps: usize) -> Result<(), Box<dyn std::error::Error>> {
    wengert_nn::init::manual_seed(0);
    let model = (0..16).fold(Sequential::<f32>::new(), |s, _| s.add(Linear::new(512, 512)).add(ReLU));
    let cfg = DdpConfig { bucket_cap_bytes: 1 << 20, ..Default::default() };
    let mut ddp = DistributedDataParallel::with_config(model, comm, cfg)?;
    let x = Tensor::<f32>::from_fn([256, 512], |i| ((i[0] * 7 + i[1] * 3 + comm.rank()) % 13) as f32 / 13.0 - 0.5);
    let mut best = [f64::INFINITY; 2];
    for rep in 0..2 * reps {
        let overlap = rep % 2 == 1; // interleaved, so both modes see the same host load
        comm.barrier()?;
        let start = std::time::Instant::now();
        let tape = Tape::new();
        let loss = ddp.forward(tape.constant(x.clone())).square().mean();
        if overlap {
            ddp.backward(loss)?;
        } else {
            let mut grads = loss.backward_release();
            ddp.all_reduce_gradients(&mut grads)?;
        }
        let t = start.elapsed().as_secs_f64();
        best[overlap as usize] = best[overlap as usize].min(t);
    }
    if comm.rank() == 0 {
        println!(
            "{} rank(s), 16 x Linear(512, 512) + ReLU, 256 rows per rank, {} buckets: step {:.2} ms with the reduction after backward, \
             {:.2} ms overlapped ({:.2}x), best of {reps}",
            comm.size(),
            ddp.num_buckets(),
            1e3 * best[0],
            1e3 * best[1],
            best[0] / best[1]
        );
    }
    Ok(())
}
