//! Status conditions: setting one keeps the others and moves `lastTransitionTime` only when the
//! status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) {
    let status = if status { "True" } else { "False" }.to_string();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if existing.status != status {
            existing.last_transition_time = now;
        }
        existing.status = status;
        existing.reason = reason.into();
        existing.message = message.into();
        existing.observed_generation = generation;
    } else {
        conditions.push(Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: now,
        });
    }
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).expect("time"))
    }

    #[test]
    fn transition_time_moves_only_on_a_status_change() {
        let mut c = Vec::new();
        set(&mut c, "Ready", false, "A", "a", Some(1), time(10));
        set(&mut c, "Ready", false, "B", "b", Some(2), time(20));
        assert_eq!(c[0].last_transition_time, time(10));
        assert_eq!(
            (c[0].reason.as_str(), c[0].observed_generation),
            ("B", Some(2))
        );
        set(&mut c, "Ready", true, "C", "c", Some(2), time(30));
        assert_eq!(c[0].last_transition_time, time(30));
        set(&mut c, "Scheduled", true, "D", "d", Some(2), time(40));
        assert_eq!(c.len(), 2);
        assert!(is_true(&c, "Ready") && is_true(&c, "Scheduled"));
    }
}
