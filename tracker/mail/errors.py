"""Errors of mail delivery, split by whether trying again later can help."""

from __future__ import annotations


class MailError(Exception):
    """A mail could not be handed to the SMTP server; code is the SMTP reply code, if any."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (SMTP {self.code})" if self.code else self.message


class TransientMailError(MailError):
    """Delivery failed for now (connection trouble, 4xx reply); retry later with backoff."""


class PermanentMailError(MailError):
    """The server refused the mail for good (5xx reply); retrying the same mail will not help."""

    reason = "undeliverable"  # what the survey is parked as

    def __init__(self, message: str, code: int | None = None, recipient: bool = False) -> None:
        super().__init__(message, code)
        # Only a refused recipient says something about the customer's address; a refused
        # sender or login is our own configuration and must not suppress the customer.
        self.recipient = recipient


class AddressNeedsSmtpUtf8(PermanentMailError):
    """An address has a non-ASCII local part (RFC 6531) and the server does not offer SMTPUTF8."""

    reason = "address_needs_smtputf8"
