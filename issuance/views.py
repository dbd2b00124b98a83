"""Public pages of the customer's journey (the manual's steps ② to ⑧)."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from issuance import accessibility
from issuance import login_check as checks
from issuance.client_tool import builds
from issuance.errors import (
    InputMismatchError,
    LockedError,
    NoticeUsedError,
    ServiceError,
    TokenError,
)
from issuance.forms import EnrollmentForm
from issuance.requests import client_ip
from issuance.rules import business_days
from issuance.rules import renewal as renewal_rules
from issuance.selectors.certificates import (
    enrolled_certificate,
    open_enrollment,
    renewed_certificate,
)
from issuance.selectors.contacts import (
    contact_table,
    desks_for_certificate,
    desks_for_kihonet_code,
    onboarding_desk,
    site_url,
)
from issuance.services import enrollment

SESSION_VALUES = "enroll_values"
SESSION_TOKEN = "enroll_token"  # noqa: S105 - a session key's name


def request_origin(request: HttpRequest) -> str:
    """The origin the visitor is on: the ``--server`` the client tool must be given, since the
    tool answers only pages of that origin."""
    return f"{request.scheme}://{request.get_host()}"


def agent_context(request: HttpRequest) -> dict:
    """What the pages' script needs to talk to the client tool on the customer's PC."""
    return {
        "agent_url": f"http://127.0.0.1:{settings.KIHONET_CLIENT_TOOL_PORT}",
        "server_url": request_origin(request),
    }


def client_tool_context(request: HttpRequest) -> dict:
    """The client tool for the visitor's system (User-Agent): its build, or the script."""
    system = builds.system_of(request.headers.get("User-Agent", ""))
    offered = builds.build_for(system)
    return {
        "tool_system": system,
        "tool_system_label": builds.LABELS.get(system, ""),
        "tool_file": offered or builds.script(),
        "tool_is_build": offered is not None,
        "tool_builds": builds.builds(),
        "tool_script": builds.script(),
    }


def login_check_url() -> str:
    return settings.KIHONET_LOGIN_CHECK_URL or reverse("issuance:login-check")


class HomeView(TemplateView):
    """Step ②: the explanation, the client tool, the two procedures and the contacts."""

    template_name = "issuance/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(agent_context(self.request))
        context.update(client_tool_context(self.request))
        context["contacts"] = contact_table()
        context["onboarding_desk"] = onboarding_desk()
        context["renewal_open"] = renewal_rules.renewal_offered(timezone.now())
        context["renewal_not_yet_offered"] = renewal_rules.renewal_not_yet_offered_message()
        return context


class ManualView(TemplateView):
    """「クライアント証明書新規取得・更新マニュアル」: the manual's steps, in its words."""

    template_name = "issuance/manual.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(site_url())
        context["contacts"] = contact_table()
        context["onboarding_desk"] = onboarding_desk()
        return context


class AccessibilityView(TemplateView):
    """ウェブアクセシビリティ方針: target level, pages covered, test date and tool."""

    template_name = "issuance/accessibility.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["policy"] = accessibility
        context["pages"] = [(name, reverse(url)) for name, url in accessibility.PAGES]
        context["onboarding_desk"] = onboarding_desk()
        return context


def favicon(request: HttpRequest) -> HttpResponse:
    """For the browsers that ask for /favicon.ico whatever the page says."""
    return redirect(static("issuance/favicon.ico"))


class ClientToolView(TemplateView):
    """The download page of 「証明書取得クライアントツール」 (R13): the file for the visitor's
    system with its SHA-256, the other systems' files, and the script where no build exists."""

    template_name = "issuance/client_tool.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(agent_context(self.request))
        context.update(client_tool_context(self.request))
        return context


def download_client_tool(request: HttpRequest) -> FileResponse:
    """「証明書取得クライアントツール」 as one Python file (needs Python on the PC)."""
    return FileResponse(
        builds.SCRIPT.open("rb"),
        as_attachment=True,
        filename=builds.SCRIPT_FILENAME,
        content_type="text/x-python",
    )


def download_client_tool_build(request: HttpRequest, filename: str) -> FileResponse:
    """One built file of ``KIHONET_CLIENT_TOOL_DIR``, by its known name only."""
    found = builds.by_filename(filename)
    if found is None:
        raise Http404
    return FileResponse(
        found.path.open("rb"),
        as_attachment=True,
        filename=found.filename,
        content_type="application/octet-stream",
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
        except (InputMismatchError, LockedError) as error:  # 3430 carries its end, if known
            return self.render(request, form, error=error, **_way_forward(form.cleaned_data))
        except ServiceError as error:
            return self.render(request, form, error=error)
        request.session[SESSION_TOKEN] = token
        return redirect("issuance:enroll-confirm")

    def render(self, request, form, **context) -> HttpResponse:
        return render(request, self.template_name, {"form": form, **context})


def _way_forward(fields: dict) -> dict:
    """What helps after a mismatch (R03) or the lock, without saying which field was wrong:
    the year-end rule where it can apply (R02) and the desk to call (R15)."""
    year = int(fields["year"])
    return {
        "year_end_hint": business_days.year_end_hint_applies(year, timezone.localdate()),
        "next_year": year + 1,
        "desks": [row.as_dict() for row in desks_for_kihonet_code(fields["kihonet_code"])],
    }


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
                **agent_context(request),
                "token": request.session[SESSION_TOKEN],
                "complete_url": reverse("issuance:enroll-complete"),
            },
        )


class EnrollCompleteView(View):
    """Step ⑧ (R06): the serial and the expiry in Japanese date format."""

    template_name = "issuance/enroll_complete.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        token = request.session.get(SESSION_TOKEN)
        certificate = enrolled_certificate(token) if token else None
        if certificate is None:
            return _restart(request)
        request.session.pop(SESSION_VALUES, None)
        return render(request, self.template_name, completion_context(request, certificate))


def completion_context(request: HttpRequest, certificate) -> dict:
    """Both completion pages: where the tool installed the certificate (the page's script
    shows the tool's answer), the login check, and what to do when it could not (R14, R15)."""
    return {
        "certificate": certificate,
        "login_check_url": login_check_url(),
        "desks": desks_for_certificate(certificate),
        **agent_context(request),
        **client_tool_context(request),
    }


def _session_enrollment(request: HttpRequest):
    """The enrollment this browser started, while it can still go on."""
    token = request.session.get(SESSION_TOKEN)
    return open_enrollment(token) if token else None


def _restart(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_TOKEN, None)
    return render(request, "issuance/enroll_restart.html", status=409)


class RenewView(TemplateView):
    """Steps ⑤ to ⑦ of the renewal chapter: 「更新」, then the choice of certificate (R12)."""

    template_name = "issuance/renew.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(agent_context(self.request))
        context.update(client_tool_context(self.request))  # 「自動更新を解除」's command line
        context["renewal_open"] = renewal_rules.renewal_offered(timezone.now())
        context["renewal_not_yet_offered"] = renewal_rules.renewal_not_yet_offered_message()
        context["complete_url"] = reverse("issuance:renew-complete")
        return context


class RenewCompleteView(View):
    """Step ⑧: 「クライアント証明書の更新が完了しました」 with the new expiry."""

    def get(self, request: HttpRequest) -> HttpResponse:
        certificate = renewed_certificate(request.GET.get("serial", ""))
        if certificate is None:
            return redirect("issuance:renew")
        return render(
            request, "issuance/renew_complete.html", completion_context(request, certificate)
        )


def login_check(request: HttpRequest) -> HttpResponse:
    """Greets the holder of a valid certificate by ユーザーID and 管理番号 (R06, R07)."""
    result = checks.check(request, timezone.now())
    return render(
        request, "issuance/login_check.html", {"check": result}, status=200 if result.ok else 403
    )
