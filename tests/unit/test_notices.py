"""Notices: templates rendered per kind and language, amounts and dates per locale, the e-mail."""

# Chinese is written with full-width colons, commas and brackets; the expected texts have them.
# ruff: noqa: RUF001

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

from arflow.logic.notices import (
    SUPPORTED_LOCALES,
    NoticeRenderer,
    NoticeTemplateMissingError,
    build_email,
    locale_for,
    templates_dir_from_env,
)
from arflow.models.invoice import PaymentInstructions
from arflow.models.notice import CUSTOMER_NOTICES, NoticeContext, NoticeKind, OpenItem

REPO = Path(__file__).resolve().parents[2]
NOTICES = REPO / "tests" / "events" / "notices"
INTERNAL_NOTICES = sorted(set(NoticeKind) - CUSTOMER_NOTICES)
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def renderer() -> NoticeRenderer:
    return NoticeRenderer(templates_dir_from_env({}))


def notice(name: str, **changes: Any) -> NoticeContext:
    """A context from tests/events/notices, with some fields changed and validated again."""
    context = NoticeContext.model_validate_json((NOTICES / f"{name}.json").read_text("utf-8"))
    return NoticeContext.model_validate({**context.model_dump(), **changes})


def english(**changes: Any) -> NoticeContext:
    return notice("formal_notice_en", **changes)


def chinese(**changes: Any) -> NoticeContext:
    return notice("formal_notice_zh_cn", **changes)


# --- Every kind renders ---------------------------------------------------------------------


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", sorted(CUSTOMER_NOTICES))
def test_customer_notice_renders_in_each_language(
    renderer: NoticeRenderer, kind: NoticeKind, locale: str
) -> None:
    # Given a customer notice in one of the supported languages
    context = english(kind=kind, locale=locale)

    # When it is rendered
    rendered = renderer.render(context)

    # Then it is in that language, and every part names the invoice
    assert (rendered.kind, rendered.locale) == (kind, locale)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "INV-2017-0042" in part
    assert f'<html lang="{locale}">' in rendered.html
    assert bool(CJK.search(rendered.text)) is (locale == "zh-CN")


@pytest.mark.parametrize(
    ("kind", "english_subject", "chinese_subject"),
    [
        (NoticeKind.REMINDER, "Payment reminder: invoice INV-1 is due on", "付款提醒：发票 INV-1"),
        (NoticeKind.OVERDUE_NOTICE, "Invoice INV-1 is overdue", "逾期付款通知：发票 INV-1"),
        (NoticeKind.FORMAL_NOTICE, "Formal notice: invoice INV-1", "正式催款函：发票 INV-1"),
    ],
)
def test_customer_subjects_are_short_and_name_the_invoice(
    renderer: NoticeRenderer, kind: NoticeKind, english_subject: str, chinese_subject: str
) -> None:
    # Given the same notice in English and in Chinese
    contexts = [english(kind=kind, invoice_number="INV-1", locale=lang) for lang in ("en", "zh-CN")]

    # When both are rendered
    subjects = [renderer.render(context).subject for context in contexts]

    # Then each subject is one short line that says what the notice is about
    assert subjects[0].startswith(english_subject)
    assert subjects[1].startswith(chinese_subject)
    assert all("\n" not in subject and len(subject) <= 90 for subject in subjects)


def test_formal_subject_carries_the_letter_reference(renderer: NoticeRenderer) -> None:
    # Given a formal notice with a letter reference
    context = english(letter_reference="FN-77")

    # When it is rendered
    rendered = renderer.render(context)

    # Then the reference is in the subject, for replies to quote
    # (no parentheses: the e-mail package folds a subject with a parenthesised phrase badly)
    assert rendered.subject == "Formal notice: invoice INV-2017-0042 is overdue, ref. FN-77"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", INTERNAL_NOTICES)
def test_finance_and_insurer_notices_are_written_in_english(
    renderer: NoticeRenderer, kind: NoticeKind, locale: str
) -> None:
    # Given a finance or insurer notice about a customer who reads Chinese
    context = notice("finance_escalation", kind=kind, locale=locale)

    # When it is rendered
    rendered = renderer.render(context)

    # Then it falls back to English and still names the invoice everywhere
    assert rendered.locale == "en"
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "INV-2017-0088" in part
    assert "30 days overdue" in rendered.text


# --- What each notice says --------------------------------------------------------------------


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_formal_notice_states_claim_clause_payment_hold_and_reference(
    renderer: NoticeRenderer, locale: str
) -> None:
    # Given a formal notice with late-fee terms, payment instructions and a letter reference
    context = english(locale=locale)

    # When it is rendered
    rendered = renderer.render(context)

    # Then both parts state the amount, the clause, how to pay, the hold and the reference
    expected = {
        "en": [
            "€1,656.25",
            "statutory interest at 10.15% a year",
            "fixed compensation for recovery costs of €40.00 for each overdue invoice",
            "New orders on your account are on hold until the account is settled.",
            "NL91 ABNA 0417 1643 00",
            "FN-2017-0042-1",
        ],
        "zh-CN": [
            "€1,656.25",
            "按年利率 10.15% 对逾期款项计收法定利息",
            "每张逾期发票收取 €40.00 的固定追偿费用",
            "在贵司账户结清之前，贵司的新订单将暂停处理。",
            "NL91 ABNA 0417 1643 00",
            "FN-2017-0042-1",
        ],
    }[locale]
    for phrase in expected:
        assert phrase in rendered.text
        assert phrase in rendered.html


def test_formal_notice_without_late_fee_terms_leaves_the_clause_out(
    renderer: NoticeRenderer,
) -> None:
    # Given a formal notice without late-fee terms
    context = english(late_fee=None)

    # When it is rendered
    rendered = renderer.render(context)

    # Then no interest is threatened, and the rest of the letter is still there
    assert "statutory interest" not in rendered.text
    assert "on hold until the account is settled" in rendered.text


def test_reminder_counts_the_days_until_due(renderer: NoticeRenderer) -> None:
    # Given reminders five days and one day before the due date, in both languages
    contexts = {
        (days, lang): english(kind=NoticeKind.REMINDER, locale=lang, days_overdue=days)
        for days in (-5, -1)
        for lang in SUPPORTED_LOCALES
    }

    # When they are rendered
    texts = {key: renderer.render(context).text for key, context in contexts.items()}

    # Then the days until due read naturally
    assert "due in 5 days" in texts[(-5, "en")]
    assert "due in 1 day)" in texts[(-1, "en")]
    assert "5 天后到期" in texts[(-5, "zh-CN")]


def test_overdue_notice_counts_the_days_overdue(renderer: NoticeRenderer) -> None:
    # Given friendly overdue reminders one and four days after the due date
    one_day = english(kind=NoticeKind.OVERDUE_NOTICE, days_overdue=1, open_items=[])
    four_days = chinese(kind=NoticeKind.OVERDUE_NOTICE, days_overdue=4, open_items=[])

    # When they are rendered
    # Then the count is in the recipient's words
    assert "is now 1 day overdue" in renderer.render(one_day).text
    assert "目前已逾期 4 天" in renderer.render(four_days).text


def test_finance_escalation_shows_exposure_history_and_legal_referral(
    renderer: NoticeRenderer,
) -> None:
    # Given an escalation referred for legal action, with exposure above the credit limit
    context = notice("finance_escalation")

    # When it is rendered
    rendered = renderer.render(context)

    # Then finance sees the customer, the exposure against the limit, the history and the referral
    text = rendered.text
    assert rendered.subject.startswith("Legal referral: invoice INV-2017-0088")
    assert "上海华信电子有限公司" in text
    assert "Exposure: €26,400.00" in text
    assert "Credit limit: €20,000.00" in text
    assert "Over the limit by: €6,400.00" in text
    assert "2017-12-16 09:00 UTC  FormalNoticeSent  letter FN-2017-0088-1" in text
    assert "referred for legal action" in text
    assert "referred for legal action" in rendered.html


def test_finance_escalation_without_referral_asks_for_a_decision(renderer: NoticeRenderer) -> None:
    # Given an escalation not referred for legal action, under the credit limit
    context = notice("finance_escalation", legal_referral=False, exposure=Decimal("5000.00"))

    # When it is rendered
    rendered = renderer.render(context)

    # Then it is an escalation only, with the headroom left under the limit
    assert rendered.subject.startswith("Escalation: invoice INV-2017-0088")
    assert "REFERRED FOR LEGAL ACTION" not in rendered.text
    assert "decide the next step" in rendered.text
    assert "Headroom: €15,000.00" in rendered.text


def test_customer_unreachable_says_which_notice_was_not_sent(renderer: NoticeRenderer) -> None:
    # Given a formal notice that could not go out for want of an e-mail address
    context = notice(
        "finance_escalation",
        kind=NoticeKind.CUSTOMER_UNREACHABLE,
        undelivered_notice=NoticeKind.FORMAL_NOTICE,
    )

    # When finance is told
    rendered = renderer.render(context)

    # Then the notice names the customer, the missing address and the letter not sent
    assert rendered.subject.startswith("Cannot reach 上海华信电子有限公司")
    assert "formal dunning letter for invoice INV-2017-0088 could not be sent" in rendered.text
    assert "no e-mail address on file" in rendered.text
    assert "no e-mail address on file" in rendered.html


def test_credit_alert_gives_reason_exposure_and_limit(renderer: NoticeRenderer) -> None:
    # Given a credit alert for a customer over the limit
    context = notice(
        "finance_escalation",
        kind=NoticeKind.CREDIT_ALERT,
        reason="Credit limit exceeded by the new invoice",
    )

    # When it is rendered
    rendered = renderer.render(context)

    # Then the reason, the exposure and the limit are all there
    for part in (rendered.text, rendered.html):
        assert "Credit limit exceeded by the new invoice" in part
        assert "€26,400.00" in part
        assert "€20,000.00" in part


def test_step_failed_quotes_the_reason_escaped(renderer: NoticeRenderer) -> None:
    # Given a failed step whose error message contains markup
    reason = "SendFailedError: <Code>MessageRejected</Code>"
    context = notice("finance_escalation", kind=NoticeKind.STEP_FAILED, reason=reason)

    # When it is rendered
    rendered = renderer.render(context)

    # Then the text quotes it as it is and the HTML shows it without interpreting it
    assert reason in rendered.text
    assert "&lt;Code&gt;MessageRejected&lt;/Code&gt;" in rendered.html
    assert "<Code>" not in rendered.html


def test_insurer_notification_gives_buyer_invoice_amount_and_days(
    renderer: NoticeRenderer,
) -> None:
    # Given an overdue to notify under a trade-credit insurance policy
    context = notice(
        "finance_escalation",
        kind=NoticeKind.INSURER_NOTIFICATION,
        recipient_name="Claims department",
        insurance_policy_number="TCI-2017-881",
    )

    # When it is rendered
    rendered = renderer.render(context)

    # Then the insurer has what it needs to register the overdue
    text = rendered.text
    assert "Dear Claims department," in text
    assert "Buyer: 上海华信电子有限公司" in text
    assert "Policy number: TCI-2017-881" in text
    assert "Invoice number: INV-2017-0088" in text
    assert "Amount outstanding: €1,656.25" in text
    assert "Due date: 1 December 2017" in text
    assert "Days overdue: 30" in text


# --- Amounts and dates per locale -----------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "amount", "in_english", "in_chinese"),
    [
        ("EUR", "1656.25", "€1,656.25", "€1,656.25"),
        ("GBP", "1656.25", "£1,656.25", "£1,656.25"),
        ("SEK", "1656.25", "SEK1,656.25", "SEK1,656.25"),
        ("USD", "1656.25", "US$1,656.25", "US$1,656.25"),
        ("JPY", "165625", "JP¥165,625", "JP¥165,625"),
    ],
)
def test_amounts_are_formatted_for_currency_and_locale(
    renderer: NoticeRenderer, currency: str, amount: str, in_english: str, in_chinese: str
) -> None:
    # Given the same amount in one currency, for an English and a Chinese reader
    changes = {
        "currency": currency,
        "total_amount": amount,
        "amount_outstanding": amount,
        "open_items": [],
    }
    contexts = {lang: english(locale=lang, **changes) for lang in SUPPORTED_LOCALES}

    # When the notices are rendered
    texts = {lang: renderer.render(context).text for lang, context in contexts.items()}

    # Then the amount carries the currency's symbol and minor unit (JPY has none)
    assert f"Amount outstanding: {in_english}" in texts["en"]
    assert f"待付金额：{in_chinese}" in texts["zh-CN"]
    if currency == "JPY":
        assert "165,625.00" not in texts["en"]


def test_dates_are_written_the_recipients_way(renderer: NoticeRenderer) -> None:
    # Given an invoice due on 1 December 2017, in both languages
    contexts = {lang: english(locale=lang) for lang in SUPPORTED_LOCALES}

    # When the notices are rendered
    texts = {lang: renderer.render(context).text for lang, context in contexts.items()}

    # Then English reads day month year, Chinese year月day日
    assert "Due date: 1 December 2017" in texts["en"]
    assert "到期日：2017年12月1日" in texts["zh-CN"]


# --- Escaping, open items, payment instructions ---------------------------------------------


def test_html_escapes_names_and_text_keeps_them(renderer: NoticeRenderer) -> None:
    # Given a customer whose name is markup
    name = "<script>alert('x')</script> & Co"
    context = english(customer_name=name, recipient_name=name)

    # When the notice is rendered
    rendered = renderer.render(context)

    # Then the HTML shows the name as text and the plain text has it unchanged
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in rendered.html
    assert name in rendered.text


def test_text_and_subjects_are_not_html_escaped(renderer: NoticeRenderer) -> None:
    # Given a customer called "Smith & Co <UK>", in a notice whose subject uses shared phrases
    name = "Smith & Co <UK>"
    context = notice("finance_escalation", customer_name=name, recipient_name=name)
    reminder = english(kind=NoticeKind.REMINDER, recipient_name=name)

    # When the notices are rendered
    escalation = renderer.render(context)
    greeting = renderer.render(reminder)

    # Then subjects and plain text carry the name as written; HTML escapes it once
    assert escalation.subject.endswith(f"of {name} is 30 days overdue")
    assert f"Dear {name}," in greeting.text
    assert "Dear Smith &amp; Co &lt;UK&gt;," in greeting.html
    assert "&amp;amp;" not in greeting.html


def test_each_open_invoice_is_listed_with_its_own_amount_and_due_date(
    renderer: NoticeRenderer,
) -> None:
    # Given a customer with two open invoices in two currencies
    context = chinese(locale="en")

    # When the notice is rendered
    rendered = renderer.render(context)

    # Then each invoice has its own line, oldest due first, and each currency its own total
    text = rendered.text
    assert "- INV-2017-0061: US$980.50, due 20 November 2017 (26 days overdue)" in text
    assert "- INV-2017-0088: €1,656.25, due 1 December 2017 (15 days overdue)" in text
    assert text.index("INV-2017-0061:") < text.index("INV-2017-0088:")
    assert "Total outstanding (USD): US$980.50" in text
    assert "Total outstanding (EUR): €1,656.25" in text
    for shown in ("US$980.50", "20 November 2017", "Total outstanding (USD)"):
        assert shown in rendered.html


def test_open_items_without_this_invoice_still_count_it(renderer: NoticeRenderer) -> None:
    # Given open items that leave out the invoice the notice is about
    other = OpenItem(
        invoice_number="INV-2017-0057",
        currency="EUR",
        amount_outstanding=Decimal("320.00"),
        due_date=date(2017, 12, 10),
        days_overdue=6,
    )
    context = english(open_items=[other])

    # When the notice is rendered
    rendered = renderer.render(context)

    # Then the list has both invoices and the total adds both up
    assert "- INV-2017-0042: €1,656.25" in rendered.text
    assert "- INV-2017-0057: €320.00" in rendered.text
    assert "Total outstanding: €1,976.25" in rendered.text


def test_a_single_open_invoice_is_not_listed_again(renderer: NoticeRenderer) -> None:
    # Given a customer whose only open invoice is this one
    context = english(open_items=[])

    # When the notice is rendered
    rendered = renderer.render(context)

    # Then there is no list of open invoices
    assert "Your open invoices" not in rendered.text
    assert "Your open invoices" not in rendered.html


@pytest.mark.parametrize(
    "instructions", [None, PaymentInstructions()], ids=["absent", "all fields empty"]
)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_without_payment_instructions_the_customer_is_told_whom_to_ask(
    renderer: NoticeRenderer, locale: str, instructions: PaymentInstructions | None
) -> None:
    # Given a reminder with no way to pay filled in
    context = notice(
        "reminder_no_payment_details", locale=locale, payment_instructions=instructions
    )

    # When it is rendered
    rendered = renderer.render(context)

    # Then both parts ask the customer to contact the supplier, and show no bank details
    line = {
        "en": "For payment details, please contact Example Supplies B.V. at "
        "credit-control@example.com.",
        "zh-CN": "如需付款信息，请联系 Example Supplies B.V.（credit-control@example.com）。",
    }[locale]
    assert line in rendered.text
    assert line in rendered.html
    assert "IBAN" not in rendered.text


def test_payment_instructions_show_only_what_is_given(renderer: NoticeRenderer) -> None:
    # Given payment instructions with only a payment link
    link = PaymentInstructions(payment_url="https://pay.example.com/i/BL-1007")
    context = notice("reminder_no_payment_details", payment_instructions=link)

    # When the reminder is rendered
    rendered = renderer.render(context)

    # Then the link is offered and nothing else of the instructions appears
    assert "Pay online: https://pay.example.com/i/BL-1007" in rendered.text
    assert 'href="https://pay.example.com/i/BL-1007"' in rendered.html
    assert "IBAN" not in rendered.text
    assert "please contact" not in rendered.text


def test_a_payment_address_that_is_not_a_web_address_is_not_a_link(
    renderer: NoticeRenderer,
) -> None:
    # Given a payment "link" that would run script when clicked
    unsafe = PaymentInstructions(payment_url="javascript:alert(1)")
    context = notice("reminder_no_payment_details", payment_instructions=unsafe)

    # When the reminder is rendered
    rendered = renderer.render(context)

    # Then it is shown as text, never as a link
    assert "javascript:alert(1)" in rendered.html
    assert 'href="javascript' not in rendered.html


# --- Undefined variables ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NoticeKind))
def test_optional_fields_left_empty_render_every_kind(
    renderer: NoticeRenderer, kind: NoticeKind
) -> None:
    # Given a context with every optional field at its default
    context = NoticeContext(
        kind=kind,
        recipient_email=None,
        recipient_name="Accounts",
        customer_id="cust-1",
        customer_name="Customer Ltd",
        supplier_name="Supplier B.V.",
        sender_email="credit-control@example.com",
        invoice_id="inv_1",
        invoice_number="INV-1",
        currency="EUR",
        total_amount=Decimal("10.00"),
        amount_outstanding=Decimal("10.00"),
        issue_date=date(2017, 11, 1),
        due_date=date(2017, 12, 1),
        days_overdue=3,
    )

    # When it is rendered
    rendered = renderer.render(context)

    # Then StrictUndefined finds nothing missing, and nothing renders as "None"
    assert "INV-1" in rendered.subject
    assert "None" not in rendered.text
    assert "None" not in rendered.html


def test_a_template_naming_a_missing_variable_fails(tmp_path: Path) -> None:
    # Given a templates directory whose reminder uses a variable no context has
    folder = tmp_path / "email" / "en"
    folder.mkdir(parents=True)
    (folder / "reminder.subject").write_text("Reminder {{ invoice_number }}")
    (folder / "reminder.txt").write_text("Pay by {{ pay_by_date }}")
    (folder / "reminder.html").write_text("<p>{{ invoice_number }}</p>")
    renderer = NoticeRenderer(tmp_path)

    # When a reminder is rendered
    # Then the missing variable is an error, not an empty string
    with pytest.raises(UndefinedError, match="pay_by_date"):
        renderer.render(english(kind=NoticeKind.REMINDER))


def test_a_kind_with_no_templates_at_all_is_a_clear_error(tmp_path: Path) -> None:
    # Given an empty templates directory
    renderer = NoticeRenderer(tmp_path)

    # When a notice is rendered
    # Then the error names the template that is missing
    with pytest.raises(NoticeTemplateMissingError, match=r"email/en/reminder\.subject"):
        renderer.render(english(kind=NoticeKind.REMINDER))


def test_a_templates_directory_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    # Given a path with nothing there
    # When a renderer is built on it
    # Then it fails at once rather than at the first notice
    with pytest.raises(NoticeTemplateMissingError):
        NoticeRenderer(tmp_path / "missing")


# --- HTML hygiene ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NoticeKind))
def test_html_loads_nothing_remote(renderer: NoticeRenderer, kind: NoticeKind) -> None:
    # Given any notice
    context = english(kind=kind, undelivered_notice=NoticeKind.REMINDER)

    # When it is rendered
    html = renderer.render(context).html

    # Then it references no images, fonts or style sheets from elsewhere
    for remote in ("<img", "<link", "<script", "@import", "url(", "src="):
        assert remote not in html


# --- The letter -------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_formal_letter_is_a_standalone_printable_document(
    renderer: NoticeRenderer, locale: str
) -> None:
    # Given a formal notice
    context = english(locale=locale)

    # When the letter is rendered
    letter = renderer.render_letter(context)

    # Then it is a whole HTML page for A4 with the parties, date, reference, amounts and clause
    assert letter.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in letter
    assert "@page { size: A4;" in letter
    for fact in ("Example Supplies B.V.", "Northwind Trading GmbH", "FN-2017-0042-1", "10.15%"):
        assert fact in letter
    date_shown = {"en": "16 December 2017", "zh-CN": "2017年12月16日"}[locale]
    assert date_shown in letter
    for remote in ("<img", "<link", "<script", "@import", "url(", "src="):
        assert remote not in letter


def test_only_the_formal_notice_has_a_letter(renderer: NoticeRenderer) -> None:
    # Given a reminder
    context = english(kind=NoticeKind.REMINDER)

    # When a letter is asked for
    # Then there is none to render
    with pytest.raises(NoticeTemplateMissingError, match=r"letters/en/reminder\.html"):
        renderer.render_letter(context)


# --- The e-mail -------------------------------------------------------------------------------

SENT_AT = datetime(2017, 12, 16, 8, 0, tzinfo=UTC)


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def test_email_round_trips_with_headers_parts_and_attachment(renderer: NoticeRenderer) -> None:
    # Given a Chinese formal notice and its letter
    context = chinese()
    rendered = renderer.render(context)
    letter = renderer.render_letter(context).encode()
    pdf = b"%PDF-1.4 stand-in"

    # When it is built as an e-mail with the letter attached twice over
    raw = build_email(
        rendered,
        sender="Example Supplies <credit-control@example.com>",
        recipient="finance@huaxin.example.cn",
        message_id="fn-2017-0088-1@arflow.example.com",
        sent_at=SENT_AT,
        attachments=[
            ("FN-2017-0088-1.html", "text/html", letter),
            ("FN-2017-0088-1.pdf", "application/pdf", pdf),
        ],
    )
    message = parse(raw)

    # Then the headers read back as given, the Chinese subject intact
    assert message["From"] == "Example Supplies <credit-control@example.com>"
    assert message["To"] == "finance@huaxin.example.cn"
    assert message["Subject"] == rendered.subject
    assert "正式催款函" in message["Subject"]
    assert message["Date"] == "Sat, 16 Dec 2017 08:00:00 +0000"
    assert message["Message-ID"] == "<fn-2017-0088-1@arflow.example.com>"
    assert message["Content-Language"] == "zh-CN"
    assert message["Auto-Submitted"] == "auto-generated"

    # And the text and HTML are alternatives of one another
    assert message.get_content_type() == "multipart/mixed"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html

    # And both attachments come back byte for byte, with their names and types
    attached = {part.get_filename(): part for part in message.iter_attachments()}
    assert attached["FN-2017-0088-1.html"].get_content_type() == "text/html"
    assert attached["FN-2017-0088-1.html"].get_payload(decode=True) == letter
    assert attached["FN-2017-0088-1.pdf"].get_content_type() == "application/pdf"
    assert attached["FN-2017-0088-1.pdf"].get_content() == pdf


def test_email_without_attachments_is_just_the_alternatives(renderer: NoticeRenderer) -> None:
    # Given an English reminder
    rendered = renderer.render(english(kind=NoticeKind.REMINDER))

    # When it is built with no attachments
    message = parse(
        build_email(rendered, "a@example.com", "b@example.com", "<id-1@example.com>", SENT_AT)
    )

    # Then it is one multipart/alternative of text then HTML, and the id is kept as given
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert message["Message-ID"] == "<id-1@example.com>"
    assert message["Content-Language"] == "en"


def test_email_is_seven_bit_with_short_lines(renderer: NoticeRenderer) -> None:
    # Given a Chinese notice, full of characters outside ASCII
    rendered = renderer.render(chinese())

    # When it is built as an e-mail
    raw = build_email(rendered, "a@example.com", "b@example.com", "id-2@example.com", SENT_AT)

    # Then every byte is 7-bit and every line fits SMTP, as SES asks of raw messages
    assert max(raw) < 128
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_email_refuses_a_naive_sent_at(renderer: NoticeRenderer) -> None:
    # Given a notice and a send time without a timezone
    rendered = renderer.render(english())

    # When the e-mail is built
    # Then the ambiguous time is refused
    with pytest.raises(ValueError, match="timezone-aware"):
        build_email(rendered, "a@example.com", "b@example.com", "id", datetime(2017, 12, 16))


# --- Choosing the language --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "country", "expected"),
    [
        ("en", "CN", "en"),
        ("en-GB", None, "en"),
        ("en_US", "DE", "en"),
        ("zh", None, "zh-CN"),
        ("zh-CN", "GB", "zh-CN"),
        ("zh_CN", None, "zh-CN"),
        ("zh-Hans", None, "zh-CN"),
        ("zh-Hans-CN", None, "zh-CN"),
        ("zh-SG", "SG", "zh-CN"),
        ("ZH_cn", None, "zh-CN"),
        (None, "CN", "zh-CN"),
        ("", "cn", "zh-CN"),
        ("de", "CN", "zh-CN"),
        ("de", "DE", "en"),
        (None, "SG", "en"),
        (None, "TW", "en"),
        (None, "HK", "en"),
        ("zh-TW", "TW", "en"),
        ("zh-Hant", None, "en"),
        ("zh-Hant", "CN", "zh-CN"),
        (None, None, "en"),
        (None, "US", "en"),
    ],
)
def test_locale_for(locale: str | None, country: str | None, expected: str) -> None:
    # Given a party's stated locale and country
    # When the notice language is chosen
    chosen = locale_for(locale, country)

    # Then a stated supported language wins, otherwise the country decides
    assert chosen == expected


def test_a_context_locale_is_normalised_before_rendering(renderer: NoticeRenderer) -> None:
    # Given contexts with a loosely written Chinese locale and an unsupported one
    loose = english(kind=NoticeKind.REMINDER, locale="zh_Hans")
    unsupported = english(kind=NoticeKind.REMINDER, locale="de")

    # When they are rendered
    # Then the first is Chinese and the second English
    assert renderer.render(loose).locale == "zh-CN"
    assert renderer.render(unsupported).locale == "en"


# --- Where the templates are ------------------------------------------------------------------


def test_templates_dir_comes_from_the_environment_when_set() -> None:
    # Given TEMPLATES_DIR as the templates layer sets it
    # When the directory is resolved
    # Then it is that path
    assert templates_dir_from_env({"TEMPLATES_DIR": "/opt"}) == Path("/opt")


def test_templates_dir_defaults_to_the_repo() -> None:
    # Given no TEMPLATES_DIR, or an empty one
    # When the directory is resolved
    # Then it is the repo's templates folder, which holds the layouts
    for env in ({}, {"TEMPLATES_DIR": ""}):
        found = templates_dir_from_env(env)
        assert found == REPO / "templates"
        assert (found / "email" / "base.html").is_file()
