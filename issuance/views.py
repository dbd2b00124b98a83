"""Public pages of the customer's journey."""

from django.views.generic import TemplateView

from issuance import selectors


class HomeView(TemplateView):
    """The page of the manual's step ②."""

    template_name = "issuance/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["contacts"] = selectors.contact_table()
        context["onboarding_desk"] = selectors.onboarding_desk()
        return context
