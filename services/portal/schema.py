"""The portal's tables: its projection of the contract topics, and its own users,
sessions and audit log. Migrations (``migrations/versions``) create exactly these."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no offset: it is stored as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

# --- the projection (emptied and replayed by `cyclecare portal rebuild`) ----------------

projected_events = Table(
    "projected_events", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(40), nullable=False),
)

patients = Table(
    "patients", metadata,
    Column("patient_id", String(128), primary_key=True),
    Column("clinic_id", String(64), nullable=False, index=True),
    Column("first_name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("language", String(8), nullable=False, default="en"),
    Column("sms_consent", Boolean, nullable=False, default=False),
    Column("email_consent", Boolean, nullable=False, default=False),
    Column("has_email", Boolean, nullable=False, default=False),
    Column("baseline_headache_days", Integer),
    Column("discharged", Boolean, nullable=False, default=False),
    Column("snapshot_at", UtcDateTime()),  # occurred_at of the snapshot shown: the latest wins
    Column("last_delivery_status", String(20)),
    Column("last_delivery_reason", String(200)),
    Column("last_delivery_at", UtcDateTime()),
)

treatments = Table(
    "treatments", metadata,
    Column("treatment_id", String(128), primary_key=True),
    Column("patient_id", String(128), nullable=False, index=True),
    Column("clinic_id", String(64), nullable=False),
    Column("administered_on", Date, nullable=False),
    Column("units", Float),
    Column("interval_weeks", Integer, nullable=False),
)

checkins = Table(
    "checkins", metadata,
    Column("checkin_id", String(128), primary_key=True),
    Column("patient_id", String(128), nullable=False, index=True),
    Column("clinic_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("treatment_id", String(128)),
    Column("cycle", Integer),
    Column("headache_days", Integer),
    Column("medication_days", Integer),
    Column("red_flags", Boolean),
    Column("effects", Text, nullable=False, default="[]"),  # JSON list of {code, reason, severity}
    Column("completed_at", UtcDateTime(), nullable=False),
    Column("red_flag_reasons", Text),  # JSON list of codes (FHIR AdverseEvent); null before migration 0004
    Column("raw_replies", Text),  # JSON list of the patient's texts (FHIR Communication); null before 0004
)
# FHIR searches walk check-ins in (completed_at, checkin_id) order: keyset paging
Index("ix_checkins_completed", checkins.c.completed_at, checkins.c.checkin_id)

alerts = Table(
    "alerts", metadata,
    Column("alert_id", String(128), primary_key=True),
    Column("patient_id", String(128), nullable=False, index=True),
    Column("clinic_id", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("severity_rank", Integer, nullable=False),  # 0 urgent … 3 review: the inbox's order
    Column("reasons", Text, nullable=False),  # JSON list of codes
    Column("summary", Text, nullable=False),
    Column("evidence", Text, nullable=False, default="{}"),  # JSON
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    Column("acknowledged_by", String(128)),
    Column("acknowledged_via", String(8)),
    Column("acknowledged_at", UtcDateTime()),
    Column("resolved_by", String(128)),
    Column("resolved_at", UtcDateTime()),
    Column("outcome", String(40)),
    Column("note", Text),
    Column("paged", Text, nullable=False, default="[]"),  # JSON list of {level, notified, at}
)
# The inbox walks this in order and stops at its page size: only alerts not yet resolved.
Index("ix_alerts_open", alerts.c.clinic_id, alerts.c.severity_rank, alerts.c.raised_at, alerts.c.alert_id,
      sqlite_where=alerts.c.status != "resolved", postgresql_where=alerts.c.status != "resolved")
# "Recently resolved" under the inbox: the newest resolutions without a scan of every alert.
Index("ix_alerts_resolved", alerts.c.clinic_id, alerts.c.resolved_at,
      sqlite_where=alerts.c.status == "resolved", postgresql_where=alerts.c.status == "resolved")

alert_actions = Table(
    "alert_actions", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("alert_id", String(128), nullable=False, index=True),
    Column("type", String(40), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("body", Text, nullable=False),  # the event as JSON
)

timeline = Table(
    "timeline", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("patient_id", String(128), nullable=False),
    Column("clinic_id", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(40), nullable=False),  # the event type
    Column("title", String(300), nullable=False),
    Column("detail", Text),  # shown to clinicians only (reply texts, failure reasons, notes)
)
Index("ix_timeline_patient", timeline.c.patient_id, timeline.c.at)
Index("ix_timeline_clinic_kind", timeline.c.clinic_id, timeline.c.kind)

Index("ix_alerts_raised", alerts.c.raised_at, alerts.c.alert_id)  # FHIR searches: keyset paging

messages = Table(
    "messages", metadata,  # each message to or from a patient (FHIR Communication)
    Column("message_id", String(160), primary_key=True),  # the notifier's message_key, or "<checkin_id>-r<n>" for a reply
    Column("patient_id", String(128), nullable=False, index=True),
    Column("clinic_id", String(64), nullable=False),
    Column("direction", String(8), nullable=False),  # out (to the patient), in (a reply)
    Column("channel", String(16), nullable=False),
    Column("kind", String(40), nullable=False),  # the template (checkin_q1, booking_reminder, …) or "reply"
    Column("status", String(20), nullable=False),  # sent, delivered, failed, suppressed, received
    Column("reason", String(300)),  # why it failed or was suppressed
    Column("body", Text),  # a reply's text; the notifier does not publish what it sent
    Column("at", UtcDateTime(), nullable=False),  # first seen: sent or received
    Column("updated_at", UtcDateTime(), nullable=False),  # the latest status
)
Index("ix_messages_at", messages.c.at, messages.c.message_id)

PROJECTION = (projected_events, patients, treatments, checkins, alerts, alert_actions, timeline, messages)

# --- the portal's own state (kept by a rebuild) -----------------------------------------

fhir_outbox = Table(
    "fhir_outbox", metadata,  # what the FHIR push sink still has to send (CYCLECARE_FHIR_SINK_URL)
    Column("id", Integer, primary_key=True, autoincrement=True),  # the order rows were added in
    # "<Type>/<source id>/<change>": a replayed event (a rebuild) adds nothing already here
    Column("outbox_key", String(300), nullable=False, unique=True),
    Column("resource_type", String(40), nullable=False),
    Column("source_id", String(160), nullable=False),  # the check-in or alert the resource is built from
    Column("resource_id", String(64), nullable=False),  # the FHIR id of the resource to push
    Column("change", String(16), nullable=False),  # create, or update (a Flag's new status)
    Column("state", String(12), nullable=False, default="pending"),  # pending, pushed, failed (a 4xx)
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("pushed_at", UtcDateTime()),
    Column("error", Text),  # the server's OperationOutcome (JSON) or the last transient failure
)
Index("ix_fhir_outbox_due", fhir_outbox.c.state, fhir_outbox.c.next_attempt_at, fhir_outbox.c.id)

meta = Table(
    "portal_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("clinician_id", String(128), nullable=False),  # `by` in the events this user's actions emit
    Column("password_hash", String(200)),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
)

memberships = Table(
    "memberships", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("clinic_id", String(64), primary_key=True),
)

password_tokens = Table(
    "password_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False, index=True),
    Column("user_email", String(254)),
    Column("clinic_id", String(64)),
    Column("action", String(40), nullable=False),  # login, login_failed, view_patient, acknowledge, resolve, …
    Column("target", String(200)),  # a patient or alert id
    Column("remote", String(64)),
)
