//! Times to live as the backends take them: whole milliseconds, at least one.

use palisade_core::store::StoreError;
use time::Duration;

/// `ttl` in whole milliseconds; the ports require at least 1 ms, and a shorter one is refused rather
/// than stored as "already expired" or "never expires".
pub(crate) fn millis(ttl: Duration) -> Result<i64, StoreError> {
    let ms = ttl.whole_milliseconds();
    if ms < 1 {
        return Err(StoreError::Other(format!("a time to live must be at least 1 ms, got {ttl}")));
    }
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_less_than_a_millisecond() {
        assert!(millis(Duration::ZERO).is_err());
        assert!(millis(Duration::microseconds(999)).is_err());
        assert!(millis(Duration::milliseconds(-5)).is_err());
        assert_eq!(millis(Duration::milliseconds(1)).unwrap(), 1);
        assert_eq!(millis(Duration::seconds(2)).unwrap(), 2000);
        assert_eq!(millis(Duration::MAX).unwrap(), i64::MAX);
    }
}
