"""The peers' side of benches/gemm.rs: square matrix products (f32 512 and 1024, f64 512 and
1024) and A·Bᵀ in NumPy (the OpenBLAS its wheels bundle, whose run-time kernel choice has
hand-written assembly for each Zen), PyTorch (its CPU BLAS) and JAX (XLA, jit), on the same
number of threads, best and median of many calls, printed as GFLOP/s beside the FMA peak
that benches/gemm.rs measures.

    python benches/peers/gemm_peers.py [threads]     # needs numpy; torch and jax if present

Threads: OPENBLAS_NUM_THREADS, torch.set_num_threads, and for XLA the XLA_FLAGS thread-pool
options, all set before the libraries load (run the script under `taskset -c 0-1` to be sure
of 2 cores).
"""
import os, statistics, sys, time

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}")
os.environ.setdefault("OMP_NUM_THREADS", str(threads))
os.environ.setdefault("MKL_NUM_THREADS", str(threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
import numpy as np

CASES = [(512, "float32", "nn"), (1024, "float32", "nn"), (512, "float32", "nt"), (1024, "float32", "nt"), (512, "float64", "nn"), (1024, "float64", "nn")]


def timed(f, flops):
    f()
    n = max(5, int(2e10 / flops))
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return flops / min(ts) / 1e9, flops / statistics.median(ts) / 1e9


def run(name, make):
    for n, dtype, form in CASES:
        f = make(n, dtype, form)
        if f is None:
            continue
        best, med = timed(f, 2.0 * n**3)
        print(f"{name:6} {n}x{n} {dtype} {'A·B' if form == 'nn' else 'A·Bᵀ'}: best {best:.1f} GFLOP/s, median {med:.1f}")


rng = np.random.default_rng(0)


def numpy_case(n, dtype, form):
    a = rng.uniform(-1, 1, (n, n)).astype(dtype)
    b = rng.uniform(-1, 1, (n, n)).astype(dtype)
    return (lambda: a @ b) if form == "nn" else (lambda: a @ b.T)


print(f"numpy {np.__version__} ({np.__config__.CONFIG['Build Dependencies']['blas']['name']} {np.__config__.CONFIG['Build Dependencies']['blas'].get('version', '')}), OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
run("numpy", numpy_case)
try:
    import torch
    torch.set_num_threads(threads)

    def torch_case(n, dtype, form):
        a = torch.from_numpy(rng.uniform(-1, 1, (n, n)).astype(dtype))
        b = torch.from_numpy(rng.uniform(-1, 1, (n, n)).astype(dtype))
        return (lambda: a @ b) if form == "nn" else (lambda: a @ b.T)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    run("torch", torch_case)
except ImportError:
    print("torch not installed: skipped")
try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    mm = jax.jit(lambda a, b: a @ b)
    mmt = jax.jit(lambda a, b: a @ b.T)

    def jax_case(n, dtype, form):
        a = jnp.asarray(rng.uniform(-1, 1, (n, n)).astype(dtype))
        b = jnp.asarray(rng.uniform(-1, 1, (n, n)).astype(dtype))
        f = mm if form == "nn" else mmt
        return lambda: f(a, b).block_until_ready()

    print(f"jax {jax.__version__} ({jax.devices()[0].platform}), XLA_FLAGS={os.environ['XLA_FLAGS']}")
    run("jax", jax_case)
except ImportError:
    print("jax not installed: skipped")
