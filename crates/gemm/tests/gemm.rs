//! Every kernel this machine can run against a naive triple loop, over odd shapes (edge
//! blocks on every side, several KC/MC/NC cuts), strides (row- and column-major, transposed,
//! padded, negative), and alpha/beta (including beta = 0 over NaN, which must not survive).

use proptest::prelude::*;
use wengert_gemm::{Elem, Fork, Kernel, Serial};

/// A matrix stored in a buffer with the given layout.
#[derive(Clone, Debug)]
struct Layout {
    /// column-major (else row-major)
    col_major: bool,
    /// extra elements between rows (or columns)
    pad: usize,
    /// the first row is stored last (negative row stride)
    flip_rows: bool,
}

impl Layout {
    /// (buffer length, offset of element (0, 0), row stride, column stride)
    fn strides(&self, rows: usize, cols: usize) -> (usize, isize, isize, isize) {
        let (lead, count) = if self.col_major { (rows + self.pad, cols) } else { (cols + self.pad, rows) };
        let len = (lead * count).max(1);
        let (mut rs, cs) = if self.col_major { (1isize, lead as isize) } else { (lead as isize, 1isize) };
        let mut origin = 0isize;
        if self.flip_rows && rows > 0 {
            origin = (rows as isize - 1) * rs;
            rs = -rs;
        }
        (len, origin, rs, cs)
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    (any::<bool>(), prop_oneof![Just(0usize), 1usize..4], prop::bool::weighted(0.15))
        .prop_map(|(col_major, pad, flip_rows)| Layout { col_major, pad, flip_rows })
}

fn scalar() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(1.0), Just(-1.0), -2.0f64..2.0]
}

#[derive(Clone, Debug)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    la: Layout,
    lb: Layout,
    lc: Layout,
    alpha: f64,
    beta: f64,
    seed: u64,
}

fn case(max: usize) -> impl Strategy<Value = Case> {
    (0..max, 0..max, 0..max, layout(), layout(), layout(), scalar(), scalar(), any::<u64>())
        .prop_map(|(m, k, n, la, lb, lc, alpha, beta, seed)| Case { m, k, n, la, lb, lc, alpha, beta, seed })
}

/// Values in [-1, 1) from a small LCG (reproducible from the case's seed).
fn values(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

trait Float: Elem + Into<f64> + std::fmt::Debug {
    fn from(x: f64) -> Self;
    const NAN: Self;
    /// tolerance per unit of sum |a||b| (plus |beta c|)
    const TOL: f64;
}
impl Float for f32 {
    fn from(x: f64) -> Self {
        x as f32
    }
    const NAN: Self = f32::NAN;
    const TOL: f64 = 1e-5;
}
impl Float for f64 {
    fn from(x: f64) -> Self {
        x
    }
    const NAN: Self = f64::NAN;
    const TOL: f64 = 1e-13;
}

/// Runs a product's parts on scoped threads, one each (or one after another on this
/// thread with `serial`, which must give the same C), counting how often each row of C is
/// reported finished.
struct Parts {
    parts: usize,
    serial: bool,
    finished: std::sync::Mutex<Vec<usize>>,
}

impl Parts {
    fn new(parts: usize, serial: bool) -> Parts {
        Parts { parts, serial, finished: Default::default() }
    }
}

impl Fork for Parts {
    fn parts(&self) -> usize {
        self.parts
    }
    fn run(&self, task: &(dyn Fn(usize) + Sync)) {
        if self.serial {
            (0..self.parts).rev().for_each(task);
        } else {
            std::thread::scope(|s| {
                (0..self.parts).for_each(|i| {
                    s.spawn(move || task(i));
                })
            });
        }
    }
    fn finished(&self, rows: std::ops::Range<usize>) {
        let mut count = self.finished.lock().unwrap();
        if count.len() < rows.end {
            count.resize(rows.end, 0);
        }
        rows.for_each(|i| count[i] += 1);
    }
}

fn check<T: Float>(kernel: Kernel, c: &Case) -> Result<(), TestCaseError> {
    check_split::<T>(kernel, &Serial, c)
}

fn check_split<T: Float>(kernel: Kernel, fork: &dyn Fork, c: &Case) -> Result<(), TestCaseError> {
    let (m, k, n) = (c.m, c.k, c.n);
    let (la, oa, rsa, csa) = c.la.strides(m, k);
    let (lb, ob, rsb, csb) = c.lb.strides(k, n);
    let (lc, oc, rsc, csc) = c.lc.strides(m, n);
    let a: Vec<T> = values(la, c.seed).into_iter().map(T::from).collect();
    let b: Vec<T> = values(lb, c.seed ^ 0x9e37).into_iter().map(T::from).collect();
    let mut cbuf: Vec<T> = values(lc, c.seed ^ 0x51ed).into_iter().map(T::from).collect();
    if c.beta == 0.0 {
        cbuf.iter_mut().for_each(|x| *x = T::NAN);
    }
    let c0 = cbuf.clone();
    let at = |buf: &[T], o: isize, rs: isize, cs: isize, i: usize, j: usize| -> f64 {
        buf[(o + i as isize * rs + j as isize * cs) as usize].into()
    };
    let (alpha, beta) = (T::from(c.alpha), T::from(c.beta));
    // SAFETY: each pointer is offset to element (0, 0) of a buffer laid out by its strides.
    unsafe {
        T::gemm_with(
            kernel,
            fork,
            m,
            k,
            n,
            alpha,
            a.as_ptr().offset(oa),
            rsa,
            csa,
            b.as_ptr().offset(ob),
            rsb,
            csb,
            beta,
            cbuf.as_mut_ptr().offset(oc),
            rsc,
            csc,
        );
    }
    let mut covered = vec![false; lc];
    for i in 0..m {
        for j in 0..n {
            let (mut want, mut size) = (0.0, 0.0);
            for p in 0..k {
                let x = at(&a, oa, rsa, csa, i, p) * at(&b, ob, rsb, csb, p, j);
                want += x;
                size += x.abs();
            }
            let (alpha, beta): (f64, f64) = (alpha.into(), beta.into());
            let old = at(&c0, oc, rsc, csc, i, j);
            let want = alpha * want + if beta == 0.0 { 0.0 } else { beta * old };
            let size = alpha.abs() * size + if beta == 0.0 { 0.0 } else { (beta * old).abs() };
            let got = at(&cbuf, oc, rsc, csc, i, j);
            let idx = (oc + i as isize * rsc + j as isize * csc) as usize;
            covered[idx] = true;
            prop_assert!(
                (got - want).abs() <= T::TOL * (size + 1e-30) * 4.0 + f64::MIN_POSITIVE,
                "{kernel:?} {}: C[{i},{j}] = {got}, want {want} ({c:?})",
                std::any::type_name::<T>()
            );
        }
    }
    // elements between C's rows (padding) are left alone
    for (idx, (&now, &before)) in cbuf.iter().zip(&c0).enumerate() {
        if !covered[idx] {
            let (x, y): (f64, f64) = (now.into(), before.into());
            prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{kernel:?}: padding {idx} changed");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Small shapes: every edge-block combination of every kernel.
    #[test]
    fn small_products_match_the_naive_loop(c in case(40)) {
        for kernel in Kernel::available() {
            check::<f32>(kernel, &c)?;
            check::<f64>(kernel, &c)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Shapes past KC (several k slices, uneven), MC (several row blocks) and, for n, NC.
    #[test]
    fn blocked_products_match_the_naive_loop(m in 140usize..320, k in 190usize..560, n in 1usize..48, la in layout(), lb in layout(), seed in any::<u64>()) {
        let c = Case { m, k, n, la, lb, lc: Layout { col_major: false, pad: 0, flip_rows: false }, alpha: 1.0, beta: 0.0, seed };
        for kernel in Kernel::available() {
            check::<f32>(kernel, &c)?;
            check::<f64>(kernel, &c)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// A product cut into row blocks that share the packed B: on threads, and one part after
    /// another (last first), over shapes with several k slices and row blocks, and with fewer
    /// strips of C than parts.
    #[test]
    fn split_products_match_the_naive_loop(
        c in prop_oneof![case(40), (1usize..330, 150usize..500, 1usize..70, layout(), layout(), layout(), any::<u64>())
            .prop_map(|(m, k, n, la, lb, lc, seed)| Case { m, k, n, la, lb, lc, alpha: 1.0, beta: 0.5, seed })],
        parts in 2usize..5,
        serial in any::<bool>(),
    ) {
        for kernel in Kernel::available() {
            for f64s in [false, true] {
                let fork = Parts::new(parts, serial);
                if f64s { check_split::<f64>(kernel, &fork, &c)? } else { check_split::<f32>(kernel, &fork, &c)? }
                // every row of C is reported finished exactly once
                let count = fork.finished.into_inner().unwrap();
                let want = if c.n == 0 { vec![] } else { vec![1; c.m] };
                prop_assert_eq!(count, want, "{:?}", kernel);
            }
        }
    }
}

#[test]
fn wide_products_cross_the_nc_panels() {
    let c = Case {
        m: 13,
        k: 7,
        n: 4100,
        la: Layout { col_major: false, pad: 0, flip_rows: false },
        lb: Layout { col_major: true, pad: 1, flip_rows: false },
        lc: Layout { col_major: false, pad: 2, flip_rows: false },
        alpha: 0.5,
        beta: -1.5,
        seed: 7,
    };
    for kernel in Kernel::available() {
        check::<f32>(kernel, &c).unwrap();
        check::<f64>(kernel, &c).unwrap();
        check_split::<f32>(kernel, &Parts::new(2, false), &c).unwrap();
        check_split::<f64>(kernel, &Parts::new(2, false), &c).unwrap();
    }
}

#[test]
fn the_best_kernel_is_the_first_available_one() {
    let available = Kernel::available();
    assert_eq!(available[0], Kernel::best());
    assert!(available.contains(&Kernel::Portable));
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert!(available.contains(&Kernel::Avx2Fma));
    }
}
