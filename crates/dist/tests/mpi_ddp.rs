//! The ddp_digits example under `mpirun -np 2` against its single-process run (feature `mpi`).
//!
//! The test starts `mpirun -np 2` on its own binary; in the two children (marked by
//! `CHILD_DIR_ENV`) the same test function trains as ranks 0 and 1 and writes a report per
//! rank. The parent then runs the single-process training with the same global batches and
//! checks (a) that the 2-rank global-batch loss equals the single-process loss to 1e-5
//! relative at every step and (b) that the parameters are equal on both ranks bit for bit after
//! every step (the children also run `check_params_in_sync`, an exact elementwise all-reduce
//! comparison, after every step; the parent compares the two ranks' per-step fingerprints).
//! Without `mpirun` on PATH the test prints why and passes without checking anything else.

#[path = "../examples/ddp_digits.rs"]
mod ddp_digits;

use std::path::{Path, PathBuf};
use std::process::Command;

use ddp_digits::{run_ddp, run_single, Options, Report};

const CHILD_DIR_ENV: &str = "WENGERT_DIST_TEST_CHILD_DIR";
const TEST_NAME: &str = "two_ranks_follow_the_single_process_run_and_stay_bitwise_equal";

/// f32: 10 epochs (440 steps); measured max relative difference 3.3e-7 (f32 rounding of the
/// reduction order grows over the run: 8.8e-7 after 20 epochs, 1.7e-4 after 30).
fn f32_options() -> Options {
    Options { epochs: 10, check_sync: true, fingerprints: true, verbose: false, ..Default::default() }
}

/// f64: all 30 epochs of the example (1320 steps); measured max relative difference 1.8e-15.
fn f64_options() -> Options {
    Options { epochs: 30, ..f32_options() }
}

fn report_path(dir: &Path, dtype: &str, rank: usize) -> PathBuf {
    dir.join(format!("{dtype}.rank{rank}"))
}

/// In an mpirun child: train as this rank, in f32 then f64, and write the reports.
fn child(dir: &Path) {
    let comm = wengert_dist::MpiComm::init().expect("MPI init");
    let rank = wengert_dist::Communicator::rank(&comm);
    let r32 = run_ddp::<f32, _>(&comm, &f32_options()).expect("2-rank f32 run");
    r32.write(&report_path(dir, "f32", rank)).expect("write report");
    let r64 = run_ddp::<f64, _>(&comm, &f64_options()).expect("2-rank f64 run");
    r64.write(&report_path(dir, "f64", rank)).expect("write report");
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn compare(dtype: &str, single: &Report, ranks: &[Report]) -> f64 {
    assert!(single.step_losses.len() >= 40 * single.epoch_losses.len(), "{dtype}: {} steps in the single run", single.step_losses.len());
    for r in ranks {
        assert_eq!(r.size, 2, "{dtype}: rank {} ran in a group of {}", r.rank, r.size);
        assert_eq!(r.step_losses.len(), single.step_losses.len(), "{dtype}: rank {} steps", r.rank);
        assert_eq!(r.fingerprints.len(), r.step_losses.len(), "{dtype}: rank {} fingerprints", r.rank);
        assert_eq!(r.test_accuracy, ranks[0].test_accuracy, "{dtype}: accuracy differs across ranks");
    }
    // (b) bit-for-bit equal parameters on both ranks after every step, and the same global loss
    for step in 0..ranks[0].fingerprints.len() {
        assert_eq!(ranks[0].fingerprints[step], ranks[1].fingerprints[step], "{dtype}: parameters differ across ranks after step {step}");
        assert_eq!(ranks[0].step_losses[step].to_bits(), ranks[1].step_losses[step].to_bits(), "{dtype}: loss differs at step {step}");
    }
    // (a) the loss curve of the single-process run, to 1e-5 relative at every step
    let mut worst = 0.0f64;
    for (step, (&d, &s)) in ranks[0].step_losses.iter().zip(&single.step_losses).enumerate() {
        let rel = (d - s).abs() / s.abs();
        assert!(rel <= 1e-5, "{dtype}: step {step}: 2-rank loss {d} vs single-process {s} (relative difference {rel:e})");
        worst = worst.max(rel);
    }
    // Different weights after the run would mean the curves matched by accident.
    assert_ne!(ranks[0].fingerprints.first(), ranks[0].fingerprints.last());
    // and it learned: the held-out accuracy of a digits MLP, as the single-process run's
    assert!(ranks[0].test_accuracy >= 0.9, "{dtype}: test accuracy {} after the 2-rank run", ranks[0].test_accuracy);
    assert!((ranks[0].test_accuracy - single.test_accuracy).abs() <= 0.01, "{dtype}: 2-rank accuracy {} vs single {}", ranks[0].test_accuracy, single.test_accuracy);
    println!(
        "{dtype}: {} steps, max relative loss difference 2 ranks vs 1: {worst:.2e}; parameters equal on both ranks after every step; \
         test accuracy {:.2}% (single {:.2}%)",
        single.step_losses.len(),
        100.0 * ranks[0].test_accuracy,
        100.0 * single.test_accuracy
    );
    worst
}

#[test]
fn two_ranks_follow_the_single_process_run_and_stay_bitwise_equal() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        child(Path::new(&dir));
        return;
    }
    if !on_path("mpirun") {
        println!("skipped: mpirun is not on PATH (install openmpi-bin and libopenmpi-dev); the 2-rank run was not checked");
        return;
    }
    let dir = std::env::temp_dir().join(format!("wengert-dist-mpi-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let version = Command::new("mpirun").arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let mut cmd = Command::new("mpirun");
    cmd.args(["-np", "2"]);
    if version.contains("Open MPI") {
        // 2 ranks even on a 1-core machine; root is allowed as in CI containers
        cmd.arg("--oversubscribe").env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    cmd.arg(std::env::current_exe().unwrap()).args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"]);
    cmd.env(CHILD_DIR_ENV, &dir).env("WENGERT_NUM_THREADS", "1");
    let out = cmd.output().expect("run mpirun");
    assert!(
        out.status.success(),
        "mpirun -np 2 failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |dtype: &str| -> Vec<Report> { (0..2).map(|r| Report::read(&report_path(&dir, dtype, r)).unwrap()).collect() };
    let (ranks32, ranks64) = (read("f32"), read("f64"));
    std::fs::remove_dir_all(&dir).ok();

    let single32 = run_single::<f32>(&f32_options()).unwrap();
    let single64 = run_single::<f64>(&f64_options()).unwrap();
    compare("f32", &single32, &ranks32);
    let worst64 = compare("f64", &single64, &ranks64);
    assert!(worst64 <= 1e-12, "f64 should match far closer than 1e-5: {worst64:e}");
}
