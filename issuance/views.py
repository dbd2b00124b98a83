"""Public pages of the customer's journey (the manual's steps ② to ⑧)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from issuance import login_check as checks
from issuance import selectors
from issuance.errors import LockedError, NoticeUsedError, ServiceError, TokenError
from issuance.forms import EnrollmentForm
from issuance.requests import client_ip
from issuance.services import enrollment

SESSION_VALUES = "enroll_values"
SESSION_TOKEN = "enroll_token"  # noqa: S105 - a session key's name
CLIENT_TOOL = Path(__file__).resolve().parent / "client_tool" / "kihonet_agent.py"


def agent_context() -> dict:
    """What the pages' script needs to talk to the client tool on the customer's PC."""
    return {
        "agent_url": f"http://127.0.0.1:{settings.KIHONET_CLIENT_TOOL_PORT}",
        "server_url": settings.KIHONET_BASE_URL,
    }


class HomeView(TemplateView):
    """Step ②: the explanation, the client tool, the two procedures and the contacts."""

    template_name = "issuance/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(agent_context())
        context["contacts"] = selectors.contact_table()
        context["onboarding_desk"] = selectors.onboarding_desk()
        context["renewal_open"] = selectors.renewal_offered(timezone.now())
        return context


def download_client_tool(request: HttpRequest) -> FileResponse:
    """「証明書取得クライアントツール」 (R13): one Python file."""
    return FileResponse(
        CLIENT_TOOL.open("rb"),
        as_attachment=True,
        filename="kihonet_agent.py",
        content_type="text/x-python",
    )


class EnrollView(View):
    """Step ⑥: the six fields (R01); errors at their field, a mismatch as 3420 (R03)."""

    template_name = "issuance/enroll.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = EnrollmentForm(initial=request.session.get(SESSION_VALUES, {}))
        return self.render(request, form)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = EnrollmentForm(request.POST)
        if not form.is_valid():
            return self.render(request, form)
        request.session[SESSION_VALUES] = form.cleaned_data
        try:
            _, token = enrollment.start_enrollment(
                enrollment.NoticeFields(**form.cleaned_data), ip_address=client_ip(request)
            )
        except NoticeUsedError as error:
            return self.render(request, form, error=error, desks=error.detail["desks"])
        except LockedError as error:  # 3430: until when (None while it is being written)
            return self.render(request, form, error=error, locked_until=error.locked_until)
        except ServiceError as error:
            return self.render(request, form, error=error)
        request.session[SESSION_TOKEN] = token
        return redirect("issuance:enroll-confirm")

    def render(self, request, form, **context) -> HttpResponse:
        return render(request, self.template_name, {"form": form, **context})


class EnrollConfirmView(View):
    """Step ⑦: the address with the manual's text; OK goes on, キャンセル goes back (R04)."""

    template_name = "issuance/enroll_confirm.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        current = _session_enrollment(request)
        if current is None:
            return _restart(request)
        return render(request, self.template_name, {"email": current.email})

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            enrollment.confirm_email(
                request.session.get(SESSION_TOKEN, ""), ip_address=client_ip(request)
            )
        except TokenError:
            return _restart(request)
        return redirect("issuance:enroll-issue")


class EnrollIssueView(View):
    """Between ⑦ and ⑧: the page asks the client tool to make the key and fetch the
    certificate with the one-time token."""

    template_name = "issuance/enroll_issue.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        current = _session_enrollment(request)
        if current is None or current.confirmed_at is None:
            return _restart(request)
        return render(
            request,
            self.template_name,
            {
                **agent_context(),
                "token": request.session[SESSION_TOKEN],
                "complete_url": reverse("issuance:enroll-complete"),
            },
        )


class EnrollCompleteView(View):
    """Step ⑧ (R06): the serial and the expiry in Japanese date format."""

    template_name = "issuance/enroll_complete.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        token = request.session.get(SESSION_TOKEN)
        certificate = selectors.enrolled_certificate(token) if token else None
        if certificate is None:
            return _restart(request)
        request.session.pop(SESSION_VALUES, None)
        return render(request, self.template_name, {"certificate": certificate})


def _session_enrollment(request: HttpRequest):
    """The enrollment this browser started, while it can still go on."""
    token = request.session.get(SESSION_TOKEN)
    return selectors.open_enrollment(token) if token else None


def _restart(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_TOKEN, None)
    return render(request, "issuance/enroll_restart.html", status=409)


class RenewView(TemplateView):
    """Steps ⑤ to ⑦ of the renewal chapter: 「更新」, then the choice of certificate (R12)."""

    template_name = "issuance/renew.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(agent_context())
        context["renewal_open"] = selectors.renewal_offered(timezone.now())
        context["complete_url"] = reverse("issuance:renew-complete")
        return context


class RenewCompleteView(View):
    """Step ⑧: 「クライアント証明書の更新が完了しました」 with the new expiry."""

    def get(self, request: HttpRequest) -> HttpResponse:
        certificate = selectors.renewed_certificate(request.GET.get("serial", ""))
        if certificate is None:
            return redirect("issuance:renew")
        return render(request, "issuance/renew_complete.html", {"certificate": certificate})


def login_check(request: HttpRequest) -> HttpResponse:
    """Greets the holder of a valid certificate by ユーザーID and 管理番号 (R06, R07)."""
    result = checks.check(request, timezone.now())
    return render(
        request, "issuance/login_check.html", {"check": result}, status=200 if result.ok else 403
    )
