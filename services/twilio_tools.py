"""``cyclecare twilio sign URL key=value…``: a webhook request signed as Twilio signs it,
to try ``/twilio/sms`` and ``/twilio/status`` by hand."""

from __future__ import annotations

import shlex
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from twilio.request_validator import RequestValidator


class BadParameter(ValueError):
    pass


@dataclass(frozen=True)
class SignedRequest:
    url: str
    form: dict[str, str]
    signature: str

    def curl(self) -> str:
        """A shell command that sends exactly this request."""
        parts = ["curl", "-sS", "-i", "-X", "POST", self.url, "-H", f"X-Twilio-Signature: {self.signature}"]
        for key, value in self.form.items():
            parts += ["--data-urlencode", f"{key}={value}"]
        return " ".join(shlex.quote(p) for p in parts)


def parse_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    form: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadParameter(f"{pair!r} is not key=value (e.g. Body=yes)")
        form[key] = value
    return form


def sign(url: str, form: dict[str, str], auth_token: str) -> SignedRequest:
    """Twilio's signature: the full URL (with its query) and the sorted form parameters."""
    return SignedRequest(url, form, RequestValidator(auth_token).compute_signature(url, form))


def send(request: SignedRequest, timeout: float = 10.0) -> tuple[int, str]:
    """POST the signed request; the HTTP status and body."""
    data = urllib.parse.urlencode(request.form).encode()
    http = urllib.request.Request(request.url, data=data, method="POST",
                                  headers={"X-Twilio-Signature": request.signature})
    try:
        with urllib.request.urlopen(http, timeout=timeout) as response:  # noqa: S310 (the user's URL)
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
