//! Delivery metrics (the seed's "Metrics and KPIs"): deployment frequency, lead time for
//! changes, change failure rate and time to restore, per environment and service, computed
//! from GitHub's deployment record over a window and judged against the seed's targets.
//!
//! Pure: it reads a [`History`](crate::github::History) that `github` fetched (what to fetch
//! commit dates for is [`lead_time_commit`]) and returns a [`KpiReport`]; `report` renders it,
//! the command sequences both. How a deployment ended is decided from its statuses by
//! [`outcome`] (ours first, GitHub's own as a fallback, `inactive` ignored).

mod durations;
mod ending;
mod measure;
mod model;
mod weeks;

pub use ending::{DecidedBy, Ending, Outcome, outcome};
pub use measure::{compute, lead_time_commit};
pub use model::{
    Counts, EnvironmentKpis, FailureRate, Frequency, KpiReport, Kpis, LeadTime, OpenFailure,
    Restore, ServiceKpis, Settings, Targets, Verdict, WeekCount,
};
