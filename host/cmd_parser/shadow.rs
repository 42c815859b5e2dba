// SPDX-License-Identifier: GPL-2.0

//! Patching the copies: batch starts pointed at batch copies, commands turned into
//! no-ops.

use super::policy::{BB_PPGTT, MI_NOOP};

/// Points the `MI_BATCH_BUFFER_START` at dword `at` of `words` at the copy at host GGTT
/// address `host`: the address-space bit cleared (GGTT), second level kept (GVT-g:
/// `perform_bb_shadow` for GGTT batches, `prepare_shadow_batch_buffer`).
///
/// Returns `false` if the command is not all inside `words` (a bug of the caller; the
/// scanner checked it).
pub(super) fn point_start(words: &mut [u32], at: usize, host: u64) -> bool {
    let Some(end) = at.checked_add(3) else {
        return false;
    };
    let Some([h, lo, hi]) = words.get_mut(at..end) else {
        return false;
    };
    *h &= !BB_PPGTT;
    *lo = host as u32;
    *hi = (host >> 32) as u32;
    true
}

/// Replaces the command at `at..end` of `words` by `MI_NOOP`s.
pub(super) fn noop(words: &mut [u32], at: usize, end: usize) {
    if let Some(w) = words.get_mut(at..end) {
        w.fill(MI_NOOP);
    }
}
