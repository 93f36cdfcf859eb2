"""Stripe's webhook: POST /billing/stripe/webhook. Stripe signs each delivery; nothing
unsigned, badly signed or older than the tolerance is read (400). Stripe delivers again
on anything but 2xx, so a passing failure here is answered 503, never swallowed."""

import logging

import stripe
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import stripe_topups

log = logging.getLogger("mixgateway.billing")


@csrf_exempt  # Stripe cannot send our CSRF token; its signature proves the sender instead
def stripe_webhook(request):
    if not stripe_topups.enabled():
        raise Http404("Stripe top-ups are off")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        event = stripe_topups.verified_event(request.body, request.headers.get("Stripe-Signature"))
    except (stripe.SignatureVerificationError, ValueError):
        return JsonResponse({"error": "invalid or stale signature"}, status=400)
    try:
        result = stripe_topups.handle_event(event)
    except stripe_topups.StripeUnavailable as exc:
        log.warning("stripe event %s not handled yet: Stripe's API failed (%s)", event.get("id"), exc)
        return JsonResponse({"error": "try again later"}, status=503)
    log.info("stripe event %s %s: %s", event.get("id"), event.get("type"), result)
    return JsonResponse({"received": True, "result": result})
