"""Benchmark of the survey: signed Twilio webhooks in, clinician alerts out (``python -m bench.survey``)."""
