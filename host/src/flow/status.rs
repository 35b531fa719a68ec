//! The flow part of `sluice status`: each live host's breakers and spend as
//! it last published them with its heartbeat, and their sum over the live
//! hosts. Hosts not seen within [`RUNNING_HOST_SEEN_WITHIN`] are left out: a
//! stopped host's last breaker state says nothing about the provider now.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{BreakerReport, BreakerState, FlowReport, SpendReport};
use crate::store::{RUNNING_HOST_SEEN_WITHIN, WorkerStatus};

/// Breakers and spend of the live hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FlowStatus {
    /// Each live host that published a report, with it.
    pub hosts: Vec<HostFlow>,
    /// Each provider's breakers over the live hosts.
    pub breakers: Vec<ProviderBreakers>,
    /// Spend by task type and provider, summed over the live hosts (each
    /// host counts since it started).
    pub spend: Vec<SpendReport>,
}

/// One live host's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HostFlow {
    /// The worker id (`sluice status` lists workers by it).
    pub worker: String,
    pub host_name: String,
    pub last_seen_ms: i64,
    pub breakers: Vec<BreakerReport>,
    pub spend: Vec<SpendReport>,
}

/// How many live hosts see a provider's breaker in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProviderBreakers {
    pub provider: String,
    pub closed: u32,
    pub half_open: u32,
    pub open: u32,
}

/// The flow status at `now_ms` of `workers`, each with the report it
/// published (JSON), if any. A report this version cannot read is skipped.
pub fn summarize<'a>(
    now_ms: i64,
    workers: impl IntoIterator<Item = (&'a WorkerStatus, Option<&'a str>)>,
) -> FlowStatus {
    let live_since = now_ms - RUNNING_HOST_SEEN_WITHIN.as_millis() as i64;
    let mut status = FlowStatus::default();
    let mut breakers: BTreeMap<String, ProviderBreakers> = BTreeMap::new();
    let mut spend: BTreeMap<(String, String), SpendReport> = BTreeMap::new();
    for (worker, report) in workers {
        let Some(text) = report else { continue };
        if worker.last_seen_ms < live_since {
            continue;
        }
        let report: FlowReport = match serde_json::from_str(text) {
            Ok(report) => report,
            Err(err) => {
                tracing::debug!(worker = %worker.id, error = %err, "skipping a flow report this version cannot read");
                continue;
            }
        };
        for breaker in &report.breakers {
            let total =
                breakers
                    .entry(breaker.provider.clone())
                    .or_insert_with(|| ProviderBreakers {
                        provider: breaker.provider.clone(),
                        ..ProviderBreakers::default()
                    });
            match breaker.state {
                BreakerState::Closed => total.closed += 1,
                BreakerState::HalfOpen => total.half_open += 1,
                BreakerState::Open => total.open += 1,
            }
        }
        for entry in &report.spend {
            spend
                .entry((entry.task_type.clone(), entry.provider.clone()))
                .or_insert_with(|| SpendReport {
                    task_type: entry.task_type.clone(),
                    provider: entry.provider.clone(),
                    ..SpendReport::default()
                })
                .add(entry);
        }
        status.hosts.push(HostFlow {
            worker: worker.id.clone(),
            host_name: worker.host_name.clone(),
            last_seen_ms: worker.last_seen_ms,
            breakers: report.breakers,
            spend: report.spend,
        });
    }
    status.breakers = breakers.into_values().collect();
    status.spend = spend.into_values().collect();
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, last_seen_ms: i64) -> WorkerStatus {
        WorkerStatus {
            id: id.into(),
            host_name: "h".into(),
            pid: 1,
            version: "v".into(),
            started_at_ms: 0,
            last_seen_ms,
        }
    }

    fn report(state: BreakerState, calls: u64) -> String {
        serde_json::to_string(&FlowReport {
            breakers: vec![BreakerReport {
                provider: "p".into(),
                state,
                since_ms: 5,
            }],
            spend: vec![SpendReport {
                task_type: "t".into(),
                provider: "p".into(),
                calls,
                ..SpendReport::default()
            }],
        })
        .unwrap()
    }

    #[test]
    fn only_live_hosts_with_readable_reports_count() {
        let now = 10_000_000;
        let (open, closed, stale) = (
            report(BreakerState::Open, 3),
            report(BreakerState::Closed, 4),
            report(BreakerState::Open, 100),
        );
        let workers = [
            (worker("a", now - 1000), Some(open.as_str())),
            (worker("b", now), Some(closed.as_str())),
            (worker("gone", now - 3_600_000), Some(stale.as_str())),
            (worker("old", now), Some("not json")),
            (worker("none", now), None),
        ];
        let status = summarize(now, workers.iter().map(|(w, r)| (w, *r)));
        let hosts: Vec<&str> = status.hosts.iter().map(|h| h.worker.as_str()).collect();
        assert_eq!(hosts, ["a", "b"]);
        assert_eq!(
            status.breakers,
            [ProviderBreakers {
                provider: "p".into(),
                closed: 1,
                half_open: 0,
                open: 1,
            }]
        );
        assert_eq!(status.spend.len(), 1);
        assert_eq!(status.spend[0].calls, 7);
    }
}
