"""The actions on the one screen per customer user: reissue, revoke, resend, lift, print.

Thin views: each fetches its objects through the desk-scoped queryset (404 outside the desk),
checks the permission (403), and calls one service with the staff member as the actor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from issuance import audit, roles
from issuance.admin import forms, printing
from issuance.admin.export import ExportMixin
from issuance.errors import ServiceError
from issuance.models import Certificate, InputLock, KihonetUser, Notice, ReissueRecord
from issuance.requests import client_ip
from issuance.selectors.users import reissue_preview
from issuance.services import desk_actions, reissue

ACTION_TEMPLATE = "admin/issuance/kihonetuser/action_form.html"

if TYPE_CHECKING:  # what the mixin uses of the admin it is mixed into
    from issuance.admin.base import DeskScopedAdmin as _UserAdmin
else:
    _UserAdmin = object


def staff_actor(request) -> audit.Actor:
    return audit.Actor.staff_user(request.user, client_ip(request))


def require_permission(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied(permission)


def render_page(model_admin, request, template: str, **context) -> TemplateResponse:
    """A back-office page of its own: the admin site's context, the model's ``opts`` and
    ``context`` (its ``title``, its form...)."""
    page = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, **context}
    return TemplateResponse(request, template, page)


def _field_error(form, error: ServiceError) -> None:
    """A service's refusal on the field it names, or on the whole form."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


class UserActionViews(ExportMixin, _UserAdmin):
    """Mixed into KihonetUserAdmin."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        prefix = "issuance_kihonetuser"
        routes = [
            ("<path:object_id>/reissue/", self.reissue_view, "reissue"),
            (
                "<path:object_id>/certificates/<int:certificate_id>/revoke/",
                self.revoke_view,
                "revoke",
            ),
            (
                "<path:object_id>/certificates/<int:certificate_id>/resend/",
                self.resend_view,
                "resend",
            ),
            ("<path:object_id>/locks/<int:lock_id>/lift/", self.lift_lock_view, "lift_lock"),
            ("<path:object_id>/notices/<int:notice_id>/print/", self.print_view, "print"),
            (
                "<path:object_id>/notices/<int:notice_id>/print.pdf",
                self.print_pdf_view,
                "print_pdf",
            ),
        ]
        custom = [path(route, wrap(view), name=f"{prefix}_{name}") for route, view, name in routes]
        return custom + super().get_urls()

    # --- helpers ------------------------------------------------------------------------------

    def _user(self, request, object_id: str) -> KihonetUser:
        user = self.get_object(request, object_id)  # 404 outside the desk
        if not self.has_view_permission(request, user):
            raise PermissionDenied
        return user

    def _user_url(self, user: KihonetUser) -> str:
        return reverse(f"{self.admin_site.name}:issuance_kihonetuser_change", args=[user.pk])

    def _render(
        self,
        request,
        user: KihonetUser,
        form,
        *,
        title: str,
        submit: str,
        extra: dict | None = None,
    ) -> TemplateResponse:
        return render_page(
            self,
            request,
            ACTION_TEMPLATE,
            original=user,
            title=title,
            form=form,
            submit_label=submit,
            user_url=self._user_url(user),
            **(extra or {}),
        )

    def _reissue_form(self, request, user: KihonetUser, form) -> TemplateResponse:
        return self._render(
            request,
            user,
            form,
            title=_("再発行"),
            submit=_("確認へ進む"),
            extra={"action": "reissue"},
        )

    # --- reissue (R16, R05) -------------------------------------------------------------------

    def reissue_view(self, request, object_id: str):
        """Two steps: the form, then a confirmation of what will happen to the current
        certificates and notices; only the confirmed POST reissues."""
        user = self._user(request, object_id)
        require_permission(request, roles.REISSUE)
        form = forms.ReissueForm(request.POST or None)
        confirmed = request.POST.get("confirmed") == "1" and "back" not in request.POST
        if request.method == "POST" and form.is_valid() and "back" not in request.POST:
            if not confirmed:
                try:
                    reissue.check_request(
                        user,
                        reason=form.cleaned_data["reason"],
                        new_email=form.cleaned_data["new_email"] or "",
                        note=form.cleaned_data["note"],
                    )
                    branch_number = reissue.next_branch_number(user)
                except ServiceError as error:
                    _field_error(form, error)
                    return self._reissue_form(request, user, form)
                return self._render(
                    request,
                    user,
                    form,
                    title=_("再発行の確認"),
                    submit=_("再発行を確定する"),
                    extra={
                        "action": "reissue_confirm",
                        "preview": reissue_preview(
                            user, form.cleaned_data["reason"], branch_number
                        ),
                        "reason_label": ReissueRecord.Reason(form.cleaned_data["reason"]).label,
                    },
                )
            try:
                record = reissue.reissue_notice(
                    user=user,
                    reason=form.cleaned_data["reason"],
                    actor=staff_actor(request),
                    new_email=form.cleaned_data["new_email"] or "",
                    note=form.cleaned_data["note"],
                )
            except ServiceError as error:
                _field_error(form, error)
            else:
                messages.success(
                    request,
                    _(
                        "再発行しました。枝番 %(branch)s の「再発行完了の通知文書」を印刷してお客様にお送りください。"
                    )
                    % {"branch": record.new_notice.branch_number},
                )
                return HttpResponseRedirect(
                    reverse(
                        f"{self.admin_site.name}:issuance_kihonetuser_print",
                        args=[user.pk, record.new_notice.pk],
                    )
                )
        if "back" in request.POST:
            form = forms.ReissueForm(initial=request.POST.dict())
        return self._reissue_form(request, user, form)

    def _action(self, request, user, form, perform, *, success, title, submit, extra):
        """One confirmed action: on a valid POST call ``perform(cleaned_data)`` (one service),
        show its refusal on the form or go back to the user with ``success``."""
        if request.method == "POST" and form.is_valid():
            try:
                perform(form.cleaned_data)
            except ServiceError as error:
                form.add_error(None, str(error.message))
            else:
                messages.success(request, success)
                return HttpResponseRedirect(self._user_url(user))
        return self._render(request, user, form, title=title, submit=submit, extra=extra)

    def _certificate(self, request, object_id: str, certificate_id: int, permission: str):
        """The user (404 outside the desk) and one of their certificates, if ``permission``."""
        user = self._user(request, object_id)
        require_permission(request, permission)
        return user, get_object_or_404(Certificate, pk=certificate_id, user=user)

    # --- revoke -------------------------------------------------------------------------------

    def revoke_view(self, request, object_id: str, certificate_id: int):
        user, certificate = self._certificate(request, object_id, certificate_id, roles.REVOKE)

        def perform(data):
            desk_actions.revoke_for_desk(
                certificate, reason=data["reason"], note=data["note"], actor=staff_actor(request)
            )

        return self._action(
            request,
            user,
            forms.RevokeForm(request.POST or None),
            perform,
            success=_("証明書 %(serial)s を失効しました。CRLとOCSPに反映されます。")
            % {"serial": certificate.serial},
            title=_("証明書の失効"),
            submit=_("失効する"),
            extra={"action": "revoke", "certificate": certificate},
        )

    # --- resend the reminder ------------------------------------------------------------------

    def resend_view(self, request, object_id: str, certificate_id: int):
        user, certificate = self._certificate(request, object_id, certificate_id, roles.RESEND)

        def perform(data):
            from notifications.services import resend  # the notifications app's mail building

            resend.resend_reminder(certificate, staff_actor(request), reason=data["reason"])

        return self._action(
            request,
            user,
            forms.ResendForm(request.POST or None),
            perform,
            success=_("更新のご案内を %(email)s 宛に再送しました。") % {"email": certificate.email},
            title=_("更新案内メールの再送"),
            submit=_("再送する"),
            extra={"action": "resend", "certificate": certificate},
        )

    # --- lift an input lock -------------------------------------------------------------------

    def lift_lock_view(self, request, object_id: str, lock_id: int):
        user = self._user(request, object_id)
        require_permission(request, roles.LIFT_LOCK)
        lock = get_object_or_404(
            InputLock.objects.filter(
                Q(kind=InputLock.Kind.PERSON, user_id=user.user_id)
                | Q(kind=InputLock.Kind.KIHONET_CODE)
            ),
            pk=lock_id,
            value=user.customer.kihonet_code,
        )

        def perform(data):
            desk_actions.lift_input_lock(lock, reason=data["reason"], actor=staff_actor(request))

        return self._action(
            request,
            user,
            forms.ReasonForm(request.POST or None),
            perform,
            success=_("入力ロックを解除しました。"),
            title=_("入力ロックの解除"),
            submit=_("解除する"),
            extra={"action": "lift", "lock": lock},
        )

    # --- print the notice (R01, R16) ----------------------------------------------------------

    def _notice(self, request, object_id: str, notice_id: int) -> Notice:
        user = self._user(request, object_id)
        require_permission(request, roles.PRINT)
        notice = get_object_or_404(
            Notice.objects.select_related("user__customer"), pk=notice_id, user=user
        )
        return notice

    def print_view(self, request, object_id: str, notice_id: int):
        notice = self._notice(request, object_id, notice_id)
        desk_actions.record_notice_printed(notice, actor=staff_actor(request), output="html")
        pdf_url = reverse(
            f"{self.admin_site.name}:issuance_kihonetuser_print_pdf",
            args=[notice.user_id, notice.pk],
        )
        html = printing.render_notice_html(
            notice, extra={"pdf_url": pdf_url, "back_url": self._user_url(notice.user)}
        )
        return HttpResponse(html)

    def print_pdf_view(self, request, object_id: str, notice_id: int):
        notice = self._notice(request, object_id, notice_id)
        desk_actions.record_notice_printed(notice, actor=staff_actor(request), output="pdf")
        response = HttpResponse(printing.render_notice_pdf(notice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{printing.pdf_filename(notice)}"'
        return response
