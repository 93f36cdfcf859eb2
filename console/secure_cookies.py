"""Cookies are Secure on every answer to a request that arrived over HTTPS.

Django marks session and CSRF cookies Secure only by a global switch
(SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE), which follows SECURE_SSL_REDIRECT here. Where
TLS ends at a proxy that redirects itself, that switch is off, and the cookies a browser
got over HTTPS could then be sent again over plain HTTP. `request.is_secure()` knows
better: it honours X-Forwarded-Proto once the operator trusts the proxy
(TRUST_X_FORWARDED_PROTO, i.e. SECURE_PROXY_SSL_HEADER).
"""


class SecureCookiesOverHttpsMiddleware:
    """Listed before the middleware that set cookies, so it sees them all on the way out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.cookies and request.is_secure():
            for cookie in response.cookies.values():
                cookie["secure"] = True
        return response
