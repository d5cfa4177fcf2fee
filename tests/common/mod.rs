//! Shared by the property-test files: the proptest configuration and the gradcheck macros.

use proptest::test_runner::Config;

/// `cases` random cases per property, no regression files written.
pub fn cfg(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// `gradcheck` of `f` at the given inputs, as a proptest failure showing the worst element.
#[allow(unused_macros)]
macro_rules! check {
    ($f:expr, $($x:expr),+ $(,)?) => {
        ::wengert::core::gradcheck($f, &[$($x.clone()),+])
            .map_err(|e| ::proptest::test_runner::TestCaseError::fail(e.to_string()))?
    };
}

/// `gradgradcheck` of `f` at the given inputs, as a proptest failure.
#[allow(unused_macros)]
macro_rules! check2 {
    ($f:expr, $($x:expr),+ $(,)?) => {
        ::wengert::core::gradgradcheck($f, &[$($x.clone()),+])
            .map_err(|e| ::proptest::test_runner::TestCaseError::fail(e.to_string()))?
    };
}
