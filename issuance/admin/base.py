"""What every customer-data admin shares: the desk scope on every queryset (lists, search,
autocomplete, exports, object URLs), search by whole or partial keys, a paginator without COUNT(*) over a
million rows, and no deletion."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from issuance import audit
from issuance.requests import client_ip
from issuance.scoping import staff_scope
from issuance.selectors.search import search
from issuance.services import records


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` rows (``SELECT COUNT(*) FROM (… LIMIT CAP + 1)``), never the table.

    The changelist then says 「10,000件以上」 and offers the pages up to the cap; staff search by
    an exact key rather than page through a million users.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not isinstance(rows, QuerySet):  # the admin pages querysets; anything else in full
            return super().count
        rows = rows.order_by()  # no ORDER BY: PostgreSQL stops after CAP + 1 rows
        counted = rows[: self.CAP + 1].count()
        self.is_capped = counted > self.CAP
        return min(counted, self.CAP)

    is_capped = False


USER_SEARCH = {
    "kihonet_code": "customer__kihonet_code",
    "user_id": "user_id",
    "management_number": "management_number",
    "email": "email",  # the user's address: the one with the trigram index
    "serial": "certificates__serial",
    "name": "customer__name",
}


def user_search(prefix: str = "", *, without: frozenset[str] = frozenset()) -> dict[str, str]:
    """``USER_SEARCH`` seen from a model whose path to its KihonetUser is ``prefix``
    (e.g. ``"user__"``), less the kinds in ``without``: one map for every admin's search."""
    return {kind: prefix + path for kind, path in USER_SEARCH.items() if kind not in without}


def _sorted_after_search(field):
    if not isinstance(field, str):
        return field
    name = field.lstrip("-")
    expression = Coalesce(F(name), F(name))
    return expression.desc() if field.startswith("-") else expression.asc()


class DeskScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin over customer data, narrowed to the signed-in staff member's desk (R15).

    ``customer_path`` leads from the model to its Customer; ``search_paths`` maps the kinds of
    ``issuance.selectors.search.classify_search_term`` to the model's lookup paths.
    """

    customer_path: str = ""
    search_paths: dict[str, str] = {}
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    search_help_text = _(
        "企保ネットコード・ユーザーID・管理番号・Eメールアドレス（3文字以上の一部でも）、"
        "お客様名（2文字以上の一部でも）、シリアル番号で検索します。"
        "全角・半角、大文字・小文字は区別しません。"
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.search_paths:  # search_fields is a class variable of ModelAdmin
            cls.search_fields = list(cls.search_paths.values())

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def scope_queryset(self, request, queryset):
        return staff_scope(request.user).filter(queryset, self.customer_path)

    def get_object(self, request, object_id, from_field=None):
        """An object outside the desk is not found: 404, like one that does not exist."""
        found = super().get_object(request, object_id, from_field)
        if found is None:
            raise Http404(_("見つかりません。"))
        return found

    def get_ordering(self, request):
        """Search results (at most ``SEARCH_ID_LIMIT`` primary keys) are sorted after they are
        found: ordered by a plain column, PostgreSQL would walk that column's index over the
        whole table looking for them. ``COALESCE(col, col)`` sorts alike and no index serves it."""
        ordering = super().get_ordering(request) or self.model._meta.ordering
        if not request.GET.get(SEARCH_VAR, "").strip():
            return ordering
        return [_sorted_after_search(field) for field in ordering]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not self.search_paths:
            return super().get_search_results(request, queryset, search_term)
        if not term:
            return queryset, False
        return search(queryset, term, self.search_paths), False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        """A superuser's edit of a customer, user or notice: saved with its audit event."""
        records.save_record(
            obj,
            audit.Actor.staff_user(request.user, client_ip(request)),
            changed_fields=list(form.changed_data),
        )

    def audit_trail_query(self, obj) -> dict[str, str]:
        """The audit log's filter for ``obj``: its user's whole trail for a customer user,
        else the events about the object itself."""
        return {"object_type": obj._meta.model_name, "object_id": str(obj.pk)}

    def audit_trail_url(self, request, obj) -> str:
        if not request.user.has_perm("issuance.view_auditevent"):
            return ""
        url = reverse(f"{self.admin_site.name}:issuance_auditevent_changelist")
        return f"{url}?{urlencode(self.audit_trail_query(obj))}"

    def history_view(self, request, object_id, extra_context=None):
        """「履歴」 is the audit trail of the object (Django's own history stays empty: the
        services write the audit log, not LogEntry)."""
        obj = self.get_object(request, object_id)
        url = self.audit_trail_url(request, obj)
        if not url or not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return HttpResponseRedirect(url)


class ReadOnlyMixin:
    """Records the services write; staff only look at them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
