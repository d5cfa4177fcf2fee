//! Packing: copying a block of A (or B) into the strip order the micro-kernel reads, so the
//! kernel's loads are contiguous whatever the operand's strides, and the edge strips are
//! padded with zeros to a whole block.

use crate::Elem;

/// The `mc x kc` block of A at `a` (strides `rsa`, `csa`) into `dst` as `ceil(mc / mr)`
/// strips, each `kc` columns of `mr` elements.
///
/// # Safety
/// A must address a valid `mc x kc` block, `dst` must hold `ceil(mc / mr)·mr·kc` elements.
pub(crate) unsafe fn pack_a<E: Elem>(mc: usize, kc: usize, a: *const E, rsa: isize, csa: isize, mr: usize, dst: *mut E) {
    for s in 0..mc.div_ceil(mr) {
        let rows = mr.min(mc - s * mr);
        // SAFETY: strip s starts s·mr rows into A and s·mr·kc elements into dst.
        unsafe {
            let src = a.offset((s * mr) as isize * rsa);
            let out = dst.add(s * mr * kc);
            if csa == 1 {
                // rows of A are contiguous: read each row straight, write it down a column
                for i in 0..rows {
                    let row = src.offset(i as isize * rsa);
                    for p in 0..kc {
                        *out.add(p * mr + i) = *row.add(p);
                    }
                }
            } else {
                // columns of A are contiguous (or neither is): read a column of the strip at a time
                for p in 0..kc {
                    let col = src.offset(p as isize * csa);
                    let o = out.add(p * mr);
                    for i in 0..rows {
                        *o.add(i) = *col.offset(i as isize * rsa);
                    }
                }
            }
            for p in 0..kc {
                for i in rows..mr {
                    *out.add(p * mr + i) = E::ZERO;
                }
            }
        }
    }
}

/// The `kc x nc` block of B at `b` (strides `rsb`, `csb`) into `dst` as `ceil(nc / nr)`
/// strips, each `kc` rows of `nr` elements.
///
/// # Safety
/// B must address a valid `kc x nc` block, `dst` must hold `ceil(nc / nr)·nr·kc` elements.
pub(crate) unsafe fn pack_b<E: Elem>(kc: usize, nc: usize, b: *const E, rsb: isize, csb: isize, nr: usize, dst: *mut E) {
    for s in 0..nc.div_ceil(nr) {
        let cols = nr.min(nc - s * nr);
        // SAFETY: strip s starts s·nr columns into B and s·nr·kc elements into dst.
        unsafe {
            let src = b.offset((s * nr) as isize * csb);
            let out = dst.add(s * nr * kc);
            if csb == 1 {
                // rows of B are contiguous: one copy per row of the strip
                for p in 0..kc {
                    let o = out.add(p * nr);
                    core::ptr::copy_nonoverlapping(src.offset(p as isize * rsb), o, cols);
                    for j in cols..nr {
                        *o.add(j) = E::ZERO;
                    }
                }
            } else {
                // columns of B are contiguous (or neither is): read a column at a time
                for j in 0..cols {
                    let col = src.offset(j as isize * csb);
                    for p in 0..kc {
                        *out.add(p * nr + j) = *col.offset(p as isize * rsb);
                    }
                }
                for p in 0..kc {
                    for j in cols..nr {
                        *out.add(p * nr + j) = E::ZERO;
                    }
                }
            }
        }
    }
}
