"""What every customer-data admin shares: the desk scope on every queryset (lists, search,
autocomplete, exports, object URLs), exact-match search, a paginator without COUNT(*) over a
million rows, and no deletion."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import Http404
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from issuance import audit, desk_selectors
from issuance.requests import client_ip
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
        if hasattr(rows, "order_by"):
            rows = rows.order_by()  # no ORDER BY: PostgreSQL stops after CAP + 1 rows
        counted = rows[: self.CAP + 1].count()
        self.is_capped = counted > self.CAP
        return min(counted, self.CAP)

    is_capped = False


class DeskScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin over customer data, narrowed to the signed-in staff member's desk (R15).

    ``customer_path`` leads from the model to its Customer; ``search_paths`` maps the kinds of
    ``desk_selectors.classify_search_term`` to the model's lookup paths.
    """

    customer_path: str = ""
    search_paths: dict[str, str] = {}
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    search_help_text = _(
        "企保ネットコード・ユーザーID・管理番号・Eメールアドレス・シリアル番号の完全一致で検索します。"
    )

    def __init__(self, model, admin_site) -> None:
        super().__init__(model, admin_site)
        if self.search_paths:
            self.search_fields = list(self.search_paths.values())

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def scope_queryset(self, request, queryset):
        return desk_selectors.staff_scope(request.user).filter(queryset, self.customer_path)

    def get_object(self, request, object_id, from_field=None):
        """An object outside the desk is not found: 404, like one that does not exist."""
        found = super().get_object(request, object_id, from_field)
        if found is None:
            raise Http404(_("見つかりません。"))
        return found

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not self.search_paths:
            return super().get_search_results(request, queryset, search_term)
        if not term:
            return queryset, False
        return desk_selectors.search_exact(queryset, term, self.search_paths), False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        """A superuser's edit of a customer, user or notice: saved with its audit event."""
        records.save_record(
            obj,
            audit.Actor.staff_user(request.user, client_ip(request)),
            changed_fields=list(form.changed_data),
        )


class ReadOnlyMixin:
    """Records the services write; staff only look at them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
