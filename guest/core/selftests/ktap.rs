// SPDX-License-Identifier: GPL-2.0

//! KTAP output (`Documentation/dev-tools/ktap.rst`): a version line, a plan, one result
//! line per test, `# ` diagnostics before the result they explain.
//!
//! The live sink prints through `pr_info!`, so every line carries the module's prefix
//! (`gvtpv_guest: `); KTAP parsers such as `kunit.py` strip the prefix they find on the
//! version line.

use core::fmt;
use kernel::prelude::*;

/// Where KTAP lines go.
pub(crate) trait Sink {
    /// One line, without its newline.
    fn line(&mut self, args: fmt::Arguments<'_>);
}

/// The kernel log.
pub(crate) struct Console;

impl Sink for Console {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        pr_info!("{}\n", args);
    }
}

/// A test's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Not run, with the reason.
    Skip(&'static str),
}

/// A KTAP writer: numbers the results.
pub(crate) struct Ktap<S: Sink> {
    sink: S,
    n: u32,
}

impl<S: Sink> Ktap<S> {
    /// Writes the version line and the plan for `total` tests.
    pub(crate) fn new(mut sink: S, total: usize) -> Self {
        sink.line(format_args!("KTAP version 1"));
        sink.line(format_args!("1..{total}"));
        Self { sink, n: 0 }
    }

    /// A diagnostic line. `#` characters inside it are harmless: only the leading one
    /// marks it.
    pub(crate) fn diag(&mut self, args: fmt::Arguments<'_>) {
        self.sink.line(format_args!("# {args}"));
    }

    /// The next result line. A `#` in `name` would start a directive, so it becomes `_`.
    pub(crate) fn result(&mut self, name: &str, outcome: Outcome) {
        self.n += 1;
        let n = self.n;
        let name = Clean(name);
        match outcome {
            Outcome::Pass => self.sink.line(format_args!("ok {n} {name}")),
            Outcome::Fail => self.sink.line(format_args!("not ok {n} {name}")),
            Outcome::Skip(why) => self.sink.line(format_args!("ok {n} {name} # SKIP {why}")),
        }
    }

    /// Results written so far.
    pub(crate) fn count(&self) -> u32 {
        self.n
    }
}

/// A test name with `#` and line breaks replaced.
struct Clean<'a>(&'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let c = match c {
                '#' | '\n' | '\r' => '_',
                c => c,
            };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

#[kunit_tests(gvtpv_guest_ktap)]
mod tests {
    use super::*;

    /// Collects lines into one buffer, each followed by a newline.
    struct Buf(KVec<u8>);

    impl fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0
                .extend_from_slice(s.as_bytes(), GFP_KERNEL)
                .map_err(|_| fmt::Error)
        }
    }

    impl Sink for &mut Buf {
        fn line(&mut self, args: fmt::Arguments<'_>) {
            let _ = fmt::Write::write_fmt(*self, format_args!("{args}\n"));
        }
    }

    #[test]
    fn writes_ktap() {
        let mut b = Buf(KVec::new());
        let mut k = Ktap::new(&mut b, 3);
        k.diag(format_args!("took {} us", 12));
        k.result("store_dword_rcs", Outcome::Pass);
        k.result("bad#name", Outcome::Fail);
        k.result("huge_64k", Outcome::Skip("no GPU"));
        assert_eq!(k.count(), 3);
        let want: &[u8] = b"KTAP version 1\n1..3\n# took 12 us\nok 1 store_dword_rcs\n\
not ok 2 bad_name\nok 3 huge_64k # SKIP no GPU\n";
        assert_eq!(&b.0[..], want);
    }
}
