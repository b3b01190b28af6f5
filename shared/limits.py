"""The size limits of everything cyclecare accepts from outside (README, "Limits").

One place, so the contract models, the codec, the HTTP edges and the README agree. Each
limit bounds the work one record or request can cause: past it, the input is refused with
the reason (413/422 over HTTP, a dead letter on Kafka), never processed slowly.
"""

from __future__ import annotations

KIB = 1024

# --- Kafka records ---------------------------------------------------------------------
MAX_RECORD_BYTES = 256 * KIB  # a record value; checked before any decoding
MAX_KEY_BYTES = 256  # a record key (a patient id, a phone number, a clinic id)
MAX_JSON_DEPTH = 32  # objects and arrays nested in one another
MAX_INT_DIGITS = 19  # an integer in JSON: fits a signed 64-bit integer
MAX_DLQ_ORIGINAL_BYTES = 256 * KIB  # the original bytes a dead letter keeps whole
MAX_ERROR_CHARS = 2000  # the reason a dead letter or a log line gives

# --- HTTP ------------------------------------------------------------------------------
MAX_HTTP_BODY_BYTES = 64 * KIB  # ingest JSON and Twilio forms
MAX_FORM_FIELDS = 100  # parameters in one Twilio form
MAX_FHIR_BODY_BYTES = 8 * 1024 * KIB  # a FHIR resource or Bundle posted to /fhir/R4
MAX_FHIR_BUNDLE_ENTRIES = 1000  # entries in one batch or transaction Bundle

# --- strings in the contract events (characters) ---------------------------------------
MAX_ID = 128  # event_id, patient_id, clinic_id, treatment_id, checkin_id, alert_id, message keys, SIDs
MAX_TYPE = 64  # an event type, a kind, a code, a source
MAX_NAME = 100  # a first name
MAX_EMAIL = 254  # RFC 5321
MAX_PHONE = 32  # a phone number as given, before normalising to E.164
MAX_TIMEZONE = 64  # an IANA name (the longest is 32)
MAX_TEXT = 2000  # a summary, a reason, an error, a clinician's note
MAX_SMS_BODY = 10_000  # an SMS body as received; kept whole in raw replies and evidence
SMS_PARSE_CHARS = 1600  # Twilio's longest SMS: the part of a body the reply parser reads
MAX_LIST_ITEMS = 100  # raw replies, reasons
