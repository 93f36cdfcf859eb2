"""The tenant side, the bottom layer: organizations, members, invitations, the audit log
and the allauth glue. It imports nothing from billing, gateway or the pages above it."""
