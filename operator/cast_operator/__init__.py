"""cast-gatekeeper's kopf operator: StreamLink expiry, revocation, eviction, presenter sync,
retention. `kopf run -m cast_operator` (or `cast-operator`) loads the handlers from here."""

from cast_operator import handlers, settings

__all__ = ["handlers", "settings"]
