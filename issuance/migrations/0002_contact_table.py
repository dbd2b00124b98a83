"""The contact table of the manual (お問合せ先), copied from the product owner's spec."""

from django.db import migrations

HOURS = "月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）"

ONBOARDING_DESK = ("企保ネット導入サポートセンター", "0120-150-012")

# (product line, desk, phone), in the order of the manual.
CONTACTS = [
    ("総合福祉団体定期保険", "団体保険課", "0120-667-363"),
    ("総合福祉団体定期保険", "法人サービスセンター", "0120-563-927"),
    ("(新)団体定期保険", "企業保険サービス課", "0120-123-840"),
    ("(新)団体定期保険", "法人サービスセンター", "0120-563-925"),
    ("3大疾病保障保険(団体型)", "名古屋法人サービス課", "0120-982-515"),
    ("3大疾病保障保険(団体型)", "福岡法人サービス課", "0120-982-250"),
    ("(新)医療保障保険(団体型)", "名古屋法人サービス課", "0120-982-515"),
    ("(新)医療保障保険(団体型)", "福岡法人サービス課", "0120-982-250"),
    ("総合医療保険(団体型)", "名古屋法人サービス課", "0120-982-515"),
    ("総合医療保険(団体型)", "福岡法人サービス課", "0120-982-250"),
    ("団体信用生命保険", "団体保険課", "0120-338-688"),
    ("団体信用生命保険", "法人サービスセンター", "0120-563-928"),
    ("拠出型企業年金保険", "企業保険サービス課", "0120-383-616"),
    ("拠出型企業年金保険", "法人サービスセンター", "0120-563-924"),
    ("拠出型企業年金保険", "名古屋法人サービス課", "0120-982-515"),
    ("拠出型企業年金保険", "福岡法人サービス課", "0120-982-250"),
]


def load_contacts(apps, schema_editor):
    ProductLine = apps.get_model("issuance", "ProductLine")
    ServiceDesk = apps.get_model("issuance", "ServiceDesk")
    DeskContact = apps.get_model("issuance", "DeskContact")

    name, phone = ONBOARDING_DESK
    ServiceDesk.objects.get_or_create(
        name=name, defaults={"kind": "onboarding", "phone": phone, "hours": HOURS}
    )
    for order, (line_name, desk_name, desk_phone) in enumerate(CONTACTS):
        line, _ = ProductLine.objects.get_or_create(
            name=line_name, defaults={"display_order": order}
        )
        desk, _ = ServiceDesk.objects.get_or_create(
            name=desk_name, defaults={"kind": "product", "hours": HOURS}
        )
        DeskContact.objects.get_or_create(
            product_line=line, desk=desk, defaults={"phone": desk_phone}
        )


class Migration(migrations.Migration):
    dependencies = [("issuance", "0001_initial")]

    operations = [migrations.RunPython(load_contacts, migrations.RunPython.noop)]
