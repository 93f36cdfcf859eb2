import base64
import functools
import hashlib
import html
import re
import uuid

from django.conf import settings


class RequestIdMiddleware:
    """Give every request an id that travels with its logs, usage record and charge.

    The id is always ours: a caller-chosen id could collide with another request's charge.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = str(uuid.uuid4())
        response = self.get_response(request)
        response["x-request-id"] = request.request_id
        return response


# The console's Content-Security-Policy. Inline <script> blocks and inline event handlers
# written literally in templates/ (no template tags inside) are allowed by their SHA-256;
# anything else inline is refused, so an injected script cannot run.
CSP_DIRECTIVES = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self' 'unsafe-inline'",
    "script-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "object-src": "'none'",
}
CSP_SKIPPED_PREFIXES = ("/admin/",)  # the API answers JSON; Django's admin uses inline scripts

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S | re.I)
_EVENT_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


@functools.cache
def template_inline_hashes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(hashes of literal inline scripts, hashes of literal event handlers) in templates/."""
    scripts, handlers = set(), set()
    for path in sorted((settings.BASE_DIR / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for body in _INLINE_SCRIPT.findall(text):
            if "{{" not in body and "{%" not in body:
                scripts.add(_sha256(body))
        for double, single in _EVENT_HANDLER.findall(text):
            source = double or single
            if "{{" not in source and "{%" not in source:
                handlers.add(_sha256(html.unescape(source)))
    return tuple(sorted(scripts)), tuple(sorted(handlers))


# Social login posts a form that redirects to the provider, which form-action must allow.
SOCIAL_LOGIN_ORIGINS = {"github": "https://github.com", "google": "https://accounts.google.com"}


def content_security_policy() -> str:
    scripts, handlers = template_inline_hashes()
    script_src = [CSP_DIRECTIVES["script-src"], *scripts]
    if handlers:
        script_src += ["'unsafe-hashes'", *sorted(handlers)]
    form_action = [CSP_DIRECTIVES["form-action"]]
    form_action += [SOCIAL_LOGIN_ORIGINS[p] for p in sorted(getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}))
                    if p in SOCIAL_LOGIN_ORIGINS]
    directives = {**CSP_DIRECTIVES, "script-src": " ".join(script_src), "form-action": " ".join(form_action)}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    """Content-Security-Policy on the console's HTML pages (not /admin; /v1 never gets here)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path_info.startswith(CSP_SKIPPED_PREFIXES) or "Content-Security-Policy" in response
                or not response.get("Content-Type", "").startswith("text/html")):
            return response
        response["Content-Security-Policy"] = content_security_policy()
        return response
