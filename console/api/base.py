"""What every management API view shares: JSON only, a bearer credential, a rate limit per
caller, the error envelope, and changes made as the caller (audited, idempotent)."""

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from console.tenancy import audit

from . import idempotency
from .authentication import ManagementKeyAuthentication, OperatorAuthentication
from .errors import exception_handler
from .pagination import Cursor
from .throttling import PerCallerRateThrottle


class StrictJSONParser(JSONParser):
    """JSON that PostgreSQL can store: lone surrogates, NaN and Infinity are refused here
    (the standard library would accept them, and the database would then fail)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read() if stream is not None else b"")
        except orjson.JSONDecodeError:
            raise ParseError("Request body is not valid JSON.")


class ManagementView(GenericAPIView):
    authentication_classes = [ManagementKeyAuthentication]
    permission_classes = []
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes = [PerCallerRateThrottle]
    pagination_class = Cursor

    def get_exception_handler(self):
        return exception_handler

    @property
    def caller(self):
        return self.request.auth

    @property
    def organization(self):
        return self.request.auth.organization

    def change(self, work):
        """Run `work()` (a Response) as the caller: audit rows say which credential made the
        change, and a POST is done at most once per Idempotency-Key."""
        with audit.acting_through(self.caller.credential):
            if self.request.method == "POST":
                return idempotency.run_once(self.request, self.organization, work)
            return work()

    def valid(self, serializer_class, data, **kwargs):
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer


class OperatorView(ManagementView):
    authentication_classes = [OperatorAuthentication]
