from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class PerCallerRateThrottle(SimpleRateThrottle):
    """MANAGEMENT_API_RATE_LIMIT per management key (and for the operator), counted in the
    shared cache so that every process sees the same window."""

    scope = "management"

    def get_rate(self):
        return settings.MANAGEMENT_API_RATE_LIMIT

    def get_cache_key(self, request, view):
        return f"mgapi-throttle:{request.auth.throttle_id}"
