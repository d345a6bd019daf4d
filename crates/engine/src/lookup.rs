//! Accounts by experiment: which host accounts a program looks up by name.
//!
//! A program may look a user or group up by name and never switch to it
//! (sshd's privilege-separation user `sshd` during `sshd -t`, a group
//! named in a configuration file it parses itself). No syscall names the
//! account: the program reads `/etc/passwd` whole. The discovering run has
//! the host's databases and starts; the verifying run has the jail's own
//! (root, the owners of the root's files, the ids the program switched to)
//! and does not. Which accounts are missing is found by experiment:
//! verifying runs whose `/etc/passwd` and `/etc/group` hold the jail's
//! accounts plus a subset of the host's others (the *candidates*).
//!
//! [`search`] assumes what a lookup makes true: more accounts never stop
//! a program that started with fewer (the test is monotone). It works on
//! the candidates in a fixed order, groups first, then users (a user
//! brings its primary group, so a group is tried on its own before any
//! user that could bring it):
//!
//! 1. one run with every candidate: when the program does not start, the
//!    accounts are not what it lacks, and the search ends;
//! 2. a binary search for the shortest prefix of the candidates that,
//!    with the accounts kept so far, makes the program start: its last
//!    candidate is needed (the prefix one shorter did not start), and the
//!    candidates after it are not (the prefix started without them);
//! 3. that candidate is kept, the candidates before it remain, and one run
//!    with the kept accounts alone says whether the search is over; if
//!    not, step 2 again on the remaining ones.
//!
//! When step 2 ends at the first candidate with nothing but the verifying
//! run that failed to say the jail's accounts alone do not start, one run
//! with the jail's accounts confirms it first: a program whose verifying
//! run failed for another reason (a start that timed out under load)
//! starts there, and no account is called needed ([`Found::Transient`]).
//!
//! For `k` needed accounts among `n` candidates that is at most
//! `2 + k·(⌈log2 n⌉ + 1)` runs: one needed account (sshd) costs
//! `⌈log2 n⌉ + 3` runs at most, whatever the host's account count. Each account
//! found carries the run in which the program started with it and the
//! run in which it did not without it.

/// What one trial run came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trial {
    /// The program started (its readiness conditions held).
    pub started: bool,
    /// The run's index.
    pub run: u32,
}

/// A candidate the program needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Needed {
    /// Its position among the candidates.
    pub index: usize,
    /// The run in which the program started with it.
    pub run: u32,
    /// The run in which the program did not start without it.
    pub failed_without: u32,
}

/// How [`search`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// With every candidate the program did not start either (in `run`):
    /// the accounts are not what it lacks.
    NotAccounts { run: u32 },
    /// The candidates needed (in the order found, the last in the
    /// candidates' order first), and the run in which the program started
    /// with the jail's accounts and exactly these.
    Needed { needed: Vec<Needed>, proof: u32 },
    /// The program started again with the jail's own accounts (in `run`):
    /// the verifying run that did not start failed for another reason (a
    /// slow start under load), and no account is missing.
    Transient { run: u32 },
    /// The trial refused to run (no runs left).
    Unfinished,
}

/// Finds a smallest set of the `n` candidates with which the program
/// starts, knowing that it did not start without any (in run `failed`).
/// `trial` runs the program with the jail's accounts plus the candidates
/// whose positions it is given (ascending), or answers `None` when no run
/// is left.
pub(crate) fn search<E>(
    n: usize,
    failed: u32,
    mut trial: impl FnMut(&[usize]) -> Result<Option<Trial>, E>,
) -> Result<Found, E> {
    let mut rest: Vec<usize> = (0..n).collect();
    let Some(all) = trial(&rest)? else {
        return Ok(Found::Unfinished);
    };
    if !all.started || n == 0 {
        return Ok(Found::NotAccounts { run: all.run });
    }
    let mut needed: Vec<Needed> = Vec::new();
    // The program started with the needed ones and all of `rest` (in
    // `pass`), not with the needed ones alone (in `fail`).
    let (mut pass, mut fail) = (all.run, failed);
    loop {
        // The shortest prefix of `rest` that starts: in (lo, hi].
        let (mut lo, mut hi) = (0, rest.len());
        let (mut lo_run, mut hi_run) = (fail, pass);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let Some(t) = trial(&with(&needed, &rest[..mid]))? else {
                return Ok(Found::Unfinished);
            };
            if t.started {
                (hi, hi_run) = (mid, t.run);
            } else {
                (lo, lo_run) = (mid, t.run);
            }
        }
        // Every shorter prefix started, down to the first candidate alone:
        // only the verifying run that failed says that no candidate at all
        // does not. A program that started with everything and with the
        // first candidate alone may have failed that once for another
        // reason (a start that timed out under load); one run with the
        // jail's own accounts tells.
        if lo_run == failed {
            let Some(t) = trial(&with(&needed, &[]))? else {
                return Ok(Found::Unfinished);
            };
            if t.started {
                return Ok(Found::Transient { run: t.run });
            }
            lo_run = t.run;
        }
        needed.push(Needed {
            index: rest[hi - 1],
            run: hi_run,
            failed_without: lo_run,
        });
        rest.truncate(hi - 1);
        if rest.is_empty() {
            // Run `hi_run` had the needed ones and nothing else.
            return Ok(Found::Needed {
                needed,
                proof: hi_run,
            });
        }
        let Some(t) = trial(&with(&needed, &[]))? else {
            return Ok(Found::Unfinished);
        };
        if t.started {
            return Ok(Found::Needed {
                needed,
                proof: t.run,
            });
        }
        (pass, fail) = (hi_run, t.run);
    }
}

/// The positions of `needed` and `prefix`, ascending.
fn with(needed: &[Needed], prefix: &[usize]) -> Vec<usize> {
    let mut set: Vec<usize> = needed
        .iter()
        .map(|n| n.index)
        .chain(prefix.iter().copied())
        .collect();
    set.sort_unstable();
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::convert::Infallible;

    /// Runs [`search`] against a program that starts when every candidate
    /// of `required` is given; returns what it found and the runs made.
    fn simulate(n: usize, required: &[usize]) -> (Found, u32) {
        let mut runs = 1; // the verifying run that failed
        let found = search::<Infallible>(n, 1, |set| {
            runs += 1;
            let given: BTreeSet<usize> = set.iter().copied().collect();
            assert!(set.windows(2).all(|w| w[0] < w[1]), "ascending: {set:?}");
            Ok(Some(Trial {
                started: required.iter().all(|r| given.contains(r)),
                run: runs,
            }))
        })
        .unwrap();
        (found, runs - 1)
    }

    fn log2_ceil(n: usize) -> u32 {
        usize::BITS - (n.max(1) - 1).leading_zeros()
    }

    #[test]
    fn one_needed_account_costs_log2_runs() {
        for n in 1..=130 {
            for r in 0..n {
                let (found, runs) = simulate(n, &[r]);
                let Found::Needed { needed, proof } = found else {
                    panic!("n={n} r={r}: {found:?}");
                };
                assert_eq!(needed.len(), 1);
                assert_eq!(needed[0].index, r);
                // One more when the needed one is the first candidate:
                // the failure is confirmed with the jail's accounts.
                let bound = log2_ceil(n) + 2 + u32::from(r == 0);
                assert!(runs <= bound, "n={n} r={r}: {runs} runs, more than {bound}");
                assert!(proof >= needed[0].run);
            }
        }
    }

    #[test]
    fn several_needed_accounts_are_all_found_and_nothing_else() {
        for n in 2..=40 {
            for a in 0..n {
                for b in (a + 1)..n {
                    let (found, runs) = simulate(n, &[a, b]);
                    let Found::Needed { needed, .. } = found else {
                        panic!("{found:?}");
                    };
                    let got: BTreeSet<usize> = needed.iter().map(|x| x.index).collect();
                    assert_eq!(got, BTreeSet::from([a, b]));
                    assert!(runs <= 2 + 2 * (log2_ceil(n) + 1), "n={n}: {runs}");
                }
            }
        }
    }

    #[test]
    fn a_program_that_needs_more_than_accounts_ends_after_one_run() {
        let mut runs = 0;
        let found = search::<Infallible>(50, 2, |_| {
            runs += 1;
            Ok(Some(Trial {
                started: false,
                run: 2 + runs,
            }))
        })
        .unwrap();
        assert_eq!(found, Found::NotAccounts { run: 3 });
        assert_eq!(runs, 1);
    }

    #[test]
    fn a_verifying_run_that_failed_once_is_no_missing_account() {
        // The program starts with any accounts; its verifying run (run 1)
        // did not start for another reason.
        for n in 1..=40 {
            let (found, runs) = simulate(n, &[]);
            let Found::Transient { run } = found else {
                panic!("n={n}: {found:?}");
            };
            assert_eq!(run, runs + 1, "the last run is the confirming one");
            assert!(runs <= log2_ceil(n) + 2, "n={n}: {runs} runs");
        }
    }

    #[test]
    fn no_run_left_ends_the_search() {
        let mut runs = 0;
        let found = search::<Infallible>(50, 2, |_| {
            runs += 1;
            Ok((runs < 3).then_some(Trial {
                started: true,
                run: 2 + runs,
            }))
        })
        .unwrap();
        assert_eq!(found, Found::Unfinished);
    }
}
