"""Monthly statements of the current organization: a printable page and CSV. Owners and
admins; the numbers come from billing.statements, which reads only the ledger."""

from datetime import date

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone

from billing.money import usd
from billing.statements import monthly_statement, statement_csv
from console.pages.common import org_view
from console.tenancy.models import Membership


def _month(text: str) -> date:
    try:
        year, month = (int(part) for part in text.split("-"))
        if year < 2000 or year > 9000:
            raise ValueError(year)
        return date(year, month, 1)
    except ValueError:
        raise Http404("No such month.")


def _previous_months(count: int) -> list[date]:
    today = timezone.now().date()
    months, year, month = [], today.year, today.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


@org_view(Membership.Role.ADMIN)
def statement(request, month):
    statement = monthly_statement(request.org, _month(month))
    for e in statement.money_in + statement.other:
        e.amount_usd = usd(e.amount)
    for u in statement.usage:
        u.amount_usd = usd(u.amount)
    return render(request, "console/billing/statement.html", {
        "title": f"Statement {statement.month:%B %Y}",
        "statement": statement,
        "month_slug": f"{statement.month:%Y-%m}",
        "opening": usd(statement.opening),
        "money_in_total": usd(statement.money_in_total),
        "usage_total": usd(statement.usage_total),
        "other_total": usd(statement.other_total),
        "closing": usd(statement.closing),
        "months": _previous_months(12),
    })


@org_view(Membership.Role.ADMIN)
def statement_download(request, month):
    statement = monthly_statement(request.org, _month(month))
    response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
    filename = f"{request.org.slug}-statement-{statement.month:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@org_view(Membership.Role.ADMIN)
def current(request):
    return redirect("billing_statement", month=f"{timezone.now():%Y-%m}")


urlpatterns = [
    path("billing/statements/", current, name="billing_statement_current"),
    path("billing/statements/<str:month>/", statement, name="billing_statement"),
    path("billing/statements/<str:month>.csv", statement_download, name="billing_statement_csv"),
]
