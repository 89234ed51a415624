"""Pseudonymisation: store keyed hashes of ``device_id`` and ``custom_id`` instead of the ids.

A `Privacy` value tells a `Collector` what to do with the two identifiers an
event carries, before anything reaches storage:

- ``device_id``: ``"keep"`` it, or ``"hash"`` it;
- ``custom_id``: ``"keep"``, ``"hash"`` or ``"drop"`` it.

A hash is HMAC-SHA256 keyed with a secret only the operator holds, written as
a UUID (RFC 9562 version 8, 122 bits of the HMAC): the same id always gives
the same pseudonym, so reports still count devices, and stored events stay
valid event bodies (``device_id`` must be a UUID of 36 characters). Without
the secret nobody can tell which device a pseudonym stands for, nor test a
guess; a new secret gives every device a new pseudonym.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from typing import Literal

import attrs

from ._models import AppInfos
from .exceptions import ConfigurationError

__all__ = [
    "CUSTOM_ID_ENV_VAR",
    "SECRET_ENV_VAR",
    "CustomIdPolicy",
    "DeviceIdPolicy",
    "Privacy",
]

#: The pseudonymisation secret, read by `Privacy.from_env` (and so by ``serve``).
SECRET_ENV_VAR = "UPDATER_STATS_PSEUDONYM_SECRET"  # noqa: S105 - a variable name, not a secret
#: ``keep``, ``hash`` or ``drop``: what `Privacy.from_env` does with ``custom_id``.
CUSTOM_ID_ENV_VAR = "UPDATER_STATS_CUSTOM_ID"

#: What `Privacy` does with ``device_id``: store it as sent, or its pseudonym.
DeviceIdPolicy = Literal["keep", "hash"]
#: What `Privacy` does with ``custom_id``: as sent, its pseudonym, or nothing (stored as absent).
CustomIdPolicy = Literal["keep", "hash", "drop"]

# A secret shorter than this could be guessed, and every custom_id with it.
_MIN_SECRET_BYTES = 16
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _secret_bytes(secret: str | bytes | None) -> bytes | None:
    if secret is None:
        return None
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < _MIN_SECRET_BYTES:
        # The message never holds the secret itself: it may end up in a log.
        raise ConfigurationError(
            f"the pseudonymisation secret must be at least {_MIN_SECRET_BYTES} bytes long",
            code="weak_secret",
        )
    return raw


def normalize_device_id(device_id: str) -> str:
    """*device_id* as the collector stores it: a UUID in lower case, anything else as given."""
    return device_id.lower() if _UUID.fullmatch(device_id) else device_id


@attrs.frozen(kw_only=True)
class Privacy:
    """What happens to ``device_id`` and ``custom_id`` before an event is stored.

    Args:
        secret: The HMAC key, at least 16 bytes; required when anything is hashed.
            It is never shown: not in ``repr``, not in errors, not in logs.
        device_id: ``"hash"`` (the default) or ``"keep"``.
        custom_id: ``"hash"`` (the default), ``"keep"`` or ``"drop"`` (stored as absent).

    Raises:
        ConfigurationError: a hash is asked for without a secret, or the secret is too short.
    """

    secret: bytes | None = attrs.field(default=None, converter=_secret_bytes, repr=False, eq=False)
    device_id: DeviceIdPolicy = attrs.field(
        default="hash", validator=attrs.validators.in_(("keep", "hash"))
    )
    custom_id: CustomIdPolicy = attrs.field(
        default="hash", validator=attrs.validators.in_(("keep", "hash", "drop"))
    )

    def __attrs_post_init__(self) -> None:
        if self.secret is None and "hash" in (self.device_id, self.custom_id):
            raise ConfigurationError(
                "hashing device_id or custom_id needs a secret: "
                f"Privacy(secret=...) or the {SECRET_ENV_VAR} environment variable",
                code="missing_secret",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Privacy | None:
        """The `Privacy` the environment asks for, or `None` when it asks for nothing.

        ``UPDATER_STATS_PSEUDONYM_SECRET`` set: ``device_id`` is hashed, and
        ``custom_id`` too unless ``UPDATER_STATS_CUSTOM_ID`` says ``keep`` or
        ``drop``. Without a secret, ``UPDATER_STATS_CUSTOM_ID=drop`` alone drops it.
        `AppSettings.from_env` reads these two through here.

        Raises:
            ConfigurationError: a bad ``UPDATER_STATS_CUSTOM_ID``, or a secret that is too
                short; the message names the variable.
        """
        env = os.environ if environ is None else environ
        secret = env.get(SECRET_ENV_VAR) or None
        custom = (env.get(CUSTOM_ID_ENV_VAR) or "").strip().lower()
        if custom not in {"", "keep", "hash", "drop"}:
            raise ConfigurationError(
                f"{CUSTOM_ID_ENV_VAR} must be keep, hash or drop, not {custom!r}",
                code="bad_privacy_option",
            )
        if secret is None:
            if custom in {"", "keep"}:
                return None
            return cls(device_id="keep", custom_id=custom)  # type: ignore[arg-type]
        try:
            return cls(secret=secret, custom_id=custom or "hash")  # type: ignore[arg-type]
        except ConfigurationError as error:
            # The message never holds the secret; it says where the bad one came from.
            raise ConfigurationError(
                f"{SECRET_ENV_VAR}: {error.message}", code=error.code
            ) from None

    @property
    def changes_events(self) -> bool:
        """Whether events are stored differently from how they came."""
        return self.device_id != "keep" or self.custom_id != "keep"

    def _pseudonym(self, field: str, value: str) -> str:
        # The field name separates the two namespaces: a custom_id equal to some device_id
        # does not get that device's pseudonym, so the two cannot be linked by value.
        digest = hmac.digest(self.secret or b"", f"{field}\x1f{value}".encode(), "sha256")
        # Version 8 ("custom") and the RFC variant: a well-formed UUID holding 122 HMAC bits.
        head = bytearray(digest[:16])
        head[6] = (head[6] & 0x0F) | 0x80
        head[8] = (head[8] & 0x3F) | 0x80
        text = head.hex()  # formatted by hand: uuid.UUID costs more than the HMAC itself
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def device_pseudonym(self, device_id: str) -> str:
        """The pseudonym a device with *device_id* is stored under (UUIDs in any case)."""
        return self._pseudonym("device_id", normalize_device_id(device_id))

    def custom_pseudonym(self, custom_id: str) -> str:
        """The pseudonym *custom_id* is stored under."""
        return self._pseudonym("custom_id", custom_id)

    def stored_device_id(self, device_id: str) -> str:
        """What is stored for *device_id* under this policy."""
        device_id = normalize_device_id(device_id)
        return self.device_pseudonym(device_id) if self.device_id == "hash" else device_id

    def stored_custom_id(self, custom_id: str | None) -> str | None:
        """What is stored for *custom_id* under this policy (`None`: nothing)."""
        if custom_id is None or self.custom_id == "drop":
            return None
        if custom_id == "":  # many apps send "" for "no user": it identifies nobody
            return custom_id
        return self.custom_pseudonym(custom_id) if self.custom_id == "hash" else custom_id

    def apply(self, event: AppInfos) -> AppInfos:
        """*event* as it is stored: its identifiers hashed, dropped or kept."""
        return attrs.evolve(
            event,
            device_id=self.stored_device_id(event.device_id),
            custom_id=self.stored_custom_id(event.custom_id),
        )
