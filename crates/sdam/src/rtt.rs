//! Round-trip time estimation: the exponentially weighted average (alpha 0.2) that server
//! selection uses, and the minimum of the last ten samples.

use std::collections::VecDeque;
use std::time::Duration;

/// The weight of a new sample in the average.
pub const RTT_ALPHA: f64 = 0.2;
/// How many recent samples the minimum looks at.
pub const RTT_MIN_SAMPLES: usize = 10;

/// A server's RTT: the moving average and the moving minimum.
#[derive(Clone, Debug, Default)]
pub struct RttEstimator {
    average: Option<f64>,
    recent: VecDeque<Duration>,
}

/// The new average after `sample`, given the previous one (the first sample is the average).
pub fn next_average(previous: Option<Duration>, sample: Duration) -> Duration {
    match previous {
        None => sample,
        Some(old) => Duration::from_secs_f64(
            RTT_ALPHA * sample.as_secs_f64() + (1.0 - RTT_ALPHA) * old.as_secs_f64(),
        ),
    }
}

impl RttEstimator {
    /// An estimator with no samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample.
    pub fn add_sample(&mut self, sample: Duration) {
        let x = sample.as_secs_f64();
        self.average = Some(match self.average {
            None => x,
            Some(old) => RTT_ALPHA * x + (1.0 - RTT_ALPHA) * old,
        });
        if self.recent.len() == RTT_MIN_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(sample);
    }

    /// The average, once there is a sample.
    pub fn average(&self) -> Option<Duration> {
        self.average.map(Duration::from_secs_f64)
    }

    /// The minimum of the last ten samples; zero until there are two.
    pub fn min(&self) -> Duration {
        if self.recent.len() < 2 {
            return Duration::ZERO;
        }
        self.recent.iter().min().copied().unwrap_or(Duration::ZERO)
    }

    /// How many samples the minimum currently covers.
    pub fn sample_count(&self) -> usize {
        self.recent.len()
    }

    /// Forgets every sample (the server became Unknown).
    pub fn reset(&mut self) {
        self.average = None;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn average_is_weighted_and_min_needs_two_samples() {
        let mut r = RttEstimator::new();
        assert_eq!(r.average(), None);
        r.add_sample(ms(10));
        assert_eq!(r.average(), Some(ms(10)));
        assert_eq!(r.min(), Duration::ZERO);
        r.add_sample(ms(20));
        let avg = r.average().unwrap().as_secs_f64() * 1000.0;
        assert!((avg - 12.0).abs() < 1e-9, "{avg}");
        assert_eq!(r.min(), ms(10));
        r.reset();
        assert_eq!(r.average(), None);
        assert_eq!(r.sample_count(), 0);
    }

    #[test]
    fn min_only_covers_the_last_ten_samples() {
        let mut r = RttEstimator::new();
        r.add_sample(ms(1));
        for _ in 0..9 {
            r.add_sample(ms(50));
        }
        assert_eq!(r.min(), ms(1));
        r.add_sample(ms(40));
        assert_eq!(r.min(), ms(40));
        assert_eq!(r.sample_count(), 10);
    }
}
