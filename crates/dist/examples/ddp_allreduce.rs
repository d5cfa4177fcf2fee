//! Gradient all-reduce throughput of `DistributedDataParallel` by bucket size and mode, under
//! MPI: a model of 64 x Linear(512, 512) (16.8M f32 parameters in 1 MiB weights, 67 MB of
//! gradients), its
//! gradients all-reduced (averaged) with bucket caps from 64 KiB to 64 MiB, pipelined
//! (non-blocking all-reduce of a bucket while the next is packed) and blocking. Rank 0 prints
//! the best of `--reps` (5) runs per setting. This is the measurement behind
//! `DEFAULT_BUCKET_CAP_BYTES`.
//!
//! ```sh
//! cargo build --release -p wengert-dist --features mpi --example ddp_allreduce
//! mpirun -np 2 target/release/examples/ddp_allreduce
//! ```

use wengert_dist::{BucketReduce, Communicator, DdpConfig, DistributedDataParallel, MpiComm};
use wengert_nn::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut reps = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let comm = MpiComm::init()?;
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
