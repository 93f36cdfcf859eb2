"""Calling upstream providers: the HTTP/1.1 client and its proxy, the calls and their
errors, the providers' encrypted keys, redaction, and the protocol adapters."""
