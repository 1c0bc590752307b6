//! Timing: a warm-up that picks how many iterations one run holds, then repeated
//! runs; medians.

use std::time::{Duration, Instant};

use crate::gpu::Fail;

/// How a row is repeated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Timed runs after the warm-up.
    pub(crate) runs: u32,
    /// Aim for runs of about this long (iterations per run are chosen from the warm-up).
    pub(crate) run_time: Duration,
    /// At most this many iterations per run.
    pub(crate) max_iterations: u32,
}

/// The seconds one iteration took, one figure per timed run.
pub(crate) struct Timings {
    pub(crate) per_iteration: Vec<f64>,
    pub(crate) iterations_per_run: u32,
}

/// Runs `op` (one iteration per call) for a warm-up of at least three iterations and
/// about half a run, then `plan.runs` timed runs of the same number of iterations.
pub(crate) fn time_runs(
    plan: &Plan,
    mut op: impl FnMut() -> Result<(), Fail>,
) -> Result<Timings, Fail> {
    // The warm-up also estimates one iteration's time: the fastest warm-up iteration
    // (the first ones pay for page faults and lazy setup).
    let warm = Instant::now();
    let mut warm_iters = 0u32;
    let mut fastest = f64::INFINITY;
    while warm_iters < 3 || (warm.elapsed() < plan.run_time / 2 && warm_iters < plan.max_iterations)
    {
        let t = Instant::now();
        op()?;
        fastest = fastest.min(t.elapsed().as_secs_f64());
        warm_iters += 1;
    }
    let wanted = (plan.run_time.as_secs_f64() / fastest.max(1e-9)).round();
    let iterations = (wanted as u32).clamp(1, plan.max_iterations.max(1));
    let mut per_iteration = Vec::with_capacity(plan.runs as usize);
    for _ in 0..plan.runs {
        let t = Instant::now();
        for _ in 0..iterations {
            op()?;
        }
        per_iteration.push(t.elapsed().as_secs_f64() / f64::from(iterations));
    }
    Ok(Timings {
        per_iteration,
        iterations_per_run: iterations,
    })
}

/// Like [`time_runs`], but only the part of each iteration that `op` reports counts
/// (the figure of a run is the mean of the reported durations); the rest of the
/// iteration (a pause, say) still decides how many iterations a run holds.
pub(crate) fn time_runs_reported(
    plan: &Plan,
    mut op: impl FnMut() -> Result<Duration, Fail>,
) -> Result<Timings, Fail> {
    let warm = Instant::now();
    let mut warm_iters = 0u32;
    let mut fastest = f64::INFINITY;
    while warm_iters < 3 || (warm.elapsed() < plan.run_time / 2 && warm_iters < plan.max_iterations)
    {
        let t = Instant::now();
        op()?;
        fastest = fastest.min(t.elapsed().as_secs_f64());
        warm_iters += 1;
    }
    let wanted = (plan.run_time.as_secs_f64() / fastest.max(1e-9)).round();
    let iterations = (wanted as u32).clamp(1, plan.max_iterations.max(1));
    let mut per_iteration = Vec::with_capacity(plan.runs as usize);
    for _ in 0..plan.runs {
        let mut counted = Duration::ZERO;
        for _ in 0..iterations {
            counted += op()?;
        }
        per_iteration.push(counted.as_secs_f64() / f64::from(iterations));
    }
    Ok(Timings {
        per_iteration,
        iterations_per_run: iterations,
    })
}

/// The median (the mean of the two middle values for an even count); NaN if empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
