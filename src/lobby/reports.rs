//! Moderation decisions in the lobby: a report ends the room and is stored, and a banned
//! user is refused a partner. The rule that turns reports into bans is
//! [`Moderation`](crate::moderation::Moderation)'s.

use crate::ids::SessionId;
use crate::moderation::Report;
use crate::protocol::{LeftReason, ReportReason};

use super::core::{Core, Output};
use super::users::{Partner, Status};

impl Core {
    /// `id` reports its partner: the report is stored (when both are known) and the room
    /// ends. The reported user sees an ordinary skip: never who reported them.
    pub(super) fn report(&mut self, id: SessionId, reason: ReportReason) {
        let Some(Status::InRoom { partner, .. }) = self.users.status(id) else {
            return;
        };
        let reporter = self.users.get(id).and_then(|u| u.client);
        let reported = match partner {
            Partner::Here(partner) => self.users.get(partner).and_then(|p| p.client),
            Partner::There { client, .. } => client,
        };
        if let (Some(reporter), Some(reported)) = (reporter, reported) {
            let report = Report {
                at_ms: self.now.unix_ms,
                reporter,
                reported,
                reason,
            };
            // Self-reports and repeats neither count nor are stored (the store stays
            // bounded).
            if self.moderation.is_news(&report) {
                self.record(&report, "client banned after reports");
                self.out.push_back(Output::Store(report));
            }
        }
        self.end_room(id, LeftReason::Skipped);
    }

    /// Counts `report` towards a ban (it was made here, or on another instance).
    pub(super) fn record(&mut self, report: &Report, what: &'static str) {
        if let Some(until) = self.moderation.record(report) {
            tracing::info!(
                client = %report.reported,
                minutes = (until.saturating_sub(report.at_ms)) / 60_000,
                "{what}"
            );
        }
    }

    /// Whether `id` is banned now.
    pub fn is_banned(&mut self, id: SessionId) -> bool {
        self.banned_until(id).is_some()
    }

    /// Until when `id` is banned (Unix milliseconds), if it is now.
    pub(super) fn banned_until(&mut self, id: SessionId) -> Option<u64> {
        let key = self.users.get(id)?.client?;
        self.moderation.banned_until(key, self.now.unix_ms)
    }
}
