"""Who may see and do what in the console: the one module every page may import.

Every console view works inside the current organization (kept in the session) and the
user's role there. Objects are fetched through `console.tenancy.access.get_for_org`,
which answers 404 for anything outside the current organization.
"""

from collections import Counter
from functools import cache, wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import resolve, reverse

from console.tenancy.access import has_role, memberships_of
from console.tenancy.models import Membership

SESSION_KEY = "organization_id"

# The side navigation: (url name, label, the url-name prefix of the pages in its section).
# A link shows only to roles its view admits (org_view's `required_role`).
NAV = [
    ("dashboard", "Dashboard", "dashboard"),
    ("keys", "API keys", "key"),
    ("usage", "Usage", "usage"),
    ("billing", "Billing", "billing"),
    ("alerts", "Alerts", "alert"),
    ("models", "Models", "models"),
    ("quickstart", "Quickstart", "quickstart"),
    ("playground", "Playground", "playground"),
    ("responses", "Stored responses", "responses"),
    ("members", "Members", "member"),
    ("audit", "Audit log", "audit"),
]


def current_membership(request) -> Membership | None:
    """The user's membership in the organization they are working in (cached per request)."""
    if not request.user.is_authenticated:
        return None
    if not hasattr(request, "_membership"):
        memberships = memberships_of(request.user)
        chosen = request.session.get(SESSION_KEY)
        membership = next((m for m in memberships if m.organization_id == chosen), None) or memberships.first()
        if membership is not None and membership.organization_id != chosen:
            request.session[SESSION_KEY] = membership.organization_id
        request._membership = membership
    return request._membership


def org_view(role: str = Membership.Role.MEMBER):
    """A console view: logged in, inside an organization, with at least `role` there.
    The view gets request.org and request.membership."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            membership = current_membership(request)
            if membership is None:
                return redirect("organization_new")
            if not has_role(membership, role):
                raise PermissionDenied(f"This needs the {role} role in {membership.organization.name}.")
            request.membership = membership
            request.org = membership.organization
            return view(request, *args, **kwargs)

        wrapper.required_role = role  # read by the navigation, so it never offers a 403
        return wrapper

    return decorator


@cache
def required_role(url_name: str) -> str:
    return getattr(resolve(reverse(url_name)).func, "required_role", Membership.Role.MEMBER)


def nav_links(request, membership) -> list[dict]:
    match = getattr(request, "resolver_match", None)  # None on a 404 page
    here = (match.url_name or "") if match else ""
    return [
        {"url": reverse(name), "label": label, "current": here.startswith(section)}
        for name, label, section in NAV
        if has_role(membership, required_role(name))
    ]


def switcher_entries(memberships) -> list[Membership]:
    """The user's memberships, each with a `switch_label`: the organization's name, and its
    slug too where two organizations share a name."""
    memberships = list(memberships)
    names = Counter(m.organization.name for m in memberships)
    for m in memberships:
        org = m.organization
        m.switch_label = f"{org.name} · {org.slug}" if names[org.name] > 1 else org.name
    return memberships


def current_organization(request):
    """Template context: the organization switcher, the navigation and the user's role."""
    membership = current_membership(request)
    if membership is None:
        return {}
    return {
        "current_org": membership.organization,
        "current_role": membership.role,
        "is_org_admin": has_role(membership, Membership.Role.ADMIN),
        "is_org_owner": has_role(membership, Membership.Role.OWNER),
        "my_memberships": switcher_entries(memberships_of(request.user)),
        "nav_links": nav_links(request, membership),
    }
