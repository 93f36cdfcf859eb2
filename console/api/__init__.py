"""The management API (/api/v1): organizations, inference keys, usage and the ledger over
REST for automation, with "mk-" management keys, and operator provisioning with
ADMIN_API_TOKEN. It sits on top like the console pages: every change goes through the
same action functions the console calls (gateway.keys.api_keys, console.tenancy, billing.ledger).
"""
