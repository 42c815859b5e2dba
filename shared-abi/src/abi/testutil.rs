// SPDX-License-Identifier: GPL-2.0

//! Test helpers: property tests that count how often their valid branch ran.

extern crate std;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `cases` cases of `test` over `strat`. `test` returns whether the case took the
/// valid branch (its round-trip assertions ran); at least `min_percent` of the cases
/// must. Returns (valid, cases) for the caller to report.
pub(crate) fn counted<S: Strategy>(
    name: &str,
    cases: u32,
    strat: S,
    min_percent: u32,
    test: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) -> (u32, u32) {
    let valid = AtomicU32::new(0);
    let total = AtomicU32::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let r = runner.run(&strat, |v| {
        total.fetch_add(1, Ordering::Relaxed);
        if test(v)? {
            valid.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = r {
        panic!("{name}: {e}");
    }
    // Shrinking reruns cases; only a passing run gets here, so count what ran.
    let (v, t) = (valid.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
    std::println!("{name}: valid branch in {v} of {t} cases");
    assert!(
        v * 100 >= t * min_percent,
        "{name}: valid branch in only {v} of {t} cases (want {min_percent}%)"
    );
    (v, t)
}
