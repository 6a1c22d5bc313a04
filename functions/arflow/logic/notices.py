"""Notices: a NoticeContext rendered to subject, text and HTML, and wrapped as a MIME e-mail.

The templates live in one directory (the repo's `templates/`, or the layer at TEMPLATES_DIR):

    email/base.html, email/base.txt   the layouts every e-mail extends
    email/_<piece>.html, .txt         shared pieces: amounts, open invoices, how to pay
    email/<locale>/_phrases.j2        the labels and shared sentences of one language
    email/en/_*_rows.j2               the fact tables of the finance and insurer notices
    email/<locale>/<kind>.subject     the subject line
    email/<locale>/<kind>.txt         the plain-text part
    email/<locale>/<kind>.html        the HTML part (autoescaped)
    letters/base.html                 the printable letter layout
    letters/<locale>/<kind>.html      a letter; only the formal dunning letter has one

A kind without templates in the recipient's language is rendered in English: the finance and
insurer notices are written in English only. HTML and .j2 files are autoescaped; .txt and
.subject files are not, and read the phrases through `plain(...)`.
"""

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from arflow.models.invoice import PaymentInstructions
from arflow.models.notice import CUSTOMER_NOTICES, NoticeContext, OpenItem, RenderedNotice

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LOCALE = "en"

# English reads dates as "1 December 2017" (en_GB): day before month is what most recipients
# outside the US expect, and spelling the month out leaves no doubt either way.
_BABEL_LOCALES: Mapping[str, str] = {"en": "en_GB", "zh-CN": "zh_Hans_CN"}

# Countries whose customers get Simplified Chinese when they state no language of their own.
# Singapore is left out on purpose: Simplified is its official script, but its business
# correspondence is in English. Taiwan, Hong Kong and Macao write Traditional Chinese.
_SIMPLIFIED_CHINESE_COUNTRIES = frozenset({"CN"})
_TRADITIONAL_CHINESE_SUBTAGS = frozenset({"hant", "tw", "hk", "mo"})

# SES asks for every part outside 7-bit ASCII to be encoded: with a 7-bit policy each part is
# written as quoted-printable or base64, whichever is shorter, and headers as RFC 2047 words.
_MAIL_POLICY = SMTP.clone(cte_type="7bit")


class NoticeTemplateMissingError(LookupError):
    """The templates directory has no template for a notice kind, in any language."""


def locale_for(locale: str | None, country: str | None) -> str:
    """The supported language a notice is written in, from a party's locale and country.

    A stated English or Simplified Chinese locale wins (`zh`, `zh_CN`, `zh-Hans`, `zh-SG` all
    mean zh-CN). Otherwise the country decides: CN gets zh-CN, every other country English.
    A stated Traditional Chinese locale (`zh-TW`, `zh-Hant`) is not one arflow writes, so it
    falls through to the country like any other unsupported language.
    """
    if locale:
        stated = _supported_language(locale)
        if stated is not None:
            return stated

    if country and country.strip().upper() in _SIMPLIFIED_CHINESE_COUNTRIES:
        return "zh-CN"
    return DEFAULT_LOCALE


def _supported_language(tag: str) -> str | None:
    language, *subtags = tag.strip().replace("_", "-").lower().split("-")
    if language == "en":
        return "en"
    if language == "zh" and not _TRADITIONAL_CHINESE_SUBTAGS.intersection(subtags):
        return "zh-CN"
    return None


def templates_dir_from_env(env: Mapping[str, str]) -> Path:
    """TEMPLATES_DIR when set (the templates layer in Lambda), else the repo's `templates/`."""
    configured = env.get("TEMPLATES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "templates"


class NoticeRenderer:
    """Renders notices from one templates directory; build it once per process and reuse it."""

    def __init__(self, templates_dir: Path) -> None:
        if not templates_dir.is_dir():
            raise NoticeTemplateMissingError(f"templates directory not found: {templates_dir}")

        self.templates_dir = templates_dir
        self._env = Environment(
            loader=FileSystemLoader(templates_dir),
            # The .j2 modules hold words and rows that end up in HTML, so they escape too; the
            # text templates read them through `plain`, which takes the escaping off again.
            autoescape=select_autoescape(
                enabled_extensions=("html", "j2"), default_for_string=False, default=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # The templates ship with the code: nothing changes them under a running process.
            auto_reload=False,
        )
        self._env.filters.update(
            money=_money, date=_date, number=_number, iban=_iban, timestamp=_timestamp
        )
        self._env.tests["web_address"] = _is_web_address
        self._env.globals["plain"] = _PlainPhrases
        self._found: dict[str, bool] = {}

    def render(self, context: NoticeContext) -> RenderedNotice:
        """The e-mail for a notice: subject, plain text and HTML, in the recipient's language."""
        names = [f"email/{{locale}}/{context.kind}.{part}" for part in ("subject", "txt", "html")]
        locale = self._language_with(names, context.locale)
        variables = self._variables(context, locale)

        subject, text, html = (
            self._env.get_template(name.format(locale=locale)).render(variables) for name in names
        )
        return RenderedNotice(
            kind=context.kind,
            locale=locale,
            # A header is one line, whatever the template's whitespace.
            subject=" ".join(subject.split()),
            text=_tidy_text(text),
            html=html.strip() + "\n",
        )

    def render_letter(self, context: NoticeContext) -> str:
        """The notice as a standalone printable letter (HTML): the formal dunning letter."""
        name = f"letters/{{locale}}/{context.kind}.html"
        locale = self._language_with([name], context.locale)
        template = self._env.get_template(name.format(locale=locale))
        return template.render(self._variables(context, locale)).strip() + "\n"

    def _language_with(self, names: Sequence[str], requested: str) -> str:
        """The recipient's language when all the templates exist in it, else English."""
        for locale in dict.fromkeys((locale_for(requested, None), DEFAULT_LOCALE)):
            if all(self._has(name.format(locale=locale)) for name in names):
                return locale
        wanted = ", ".join(name.format(locale=DEFAULT_LOCALE) for name in names)
        raise NoticeTemplateMissingError(f"no templates {wanted} in {self.templates_dir}")

    def _has(self, name: str) -> bool:
        # Asked file by file, not by listing: in Lambda the directory is /opt, which holds every
        # layer's files, not only the templates.
        if name not in self._found:
            self._found[name] = (self.templates_dir / name).is_file()
        return self._found[name]

    def _variables(self, context: NoticeContext, locale: str) -> dict[str, Any]:
        variables = {name: getattr(context, name) for name in type(context).model_fields}
        items = _open_items(context)
        variables.update(
            locale=locale,
            for_customer=context.kind in CUSTOMER_NOTICES,
            babel_locale=_BABEL_LOCALES[locale],
            # days_overdue was counted on the day the notice goes out, in the recipient's time.
            notice_date=context.due_date + timedelta(days=context.days_overdue),
            payment_instructions=_given(context.payment_instructions),
            items=items,
            totals=_totals(items),
        )
        return variables


# The six positional parameters are the signature the handlers were given to call.
def build_email(
    rendered: RenderedNotice,
    sender: str,
    recipient: str,
    message_id: str,
    sent_at: datetime,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """The notice as a MIME message, for SES `send_raw_email` or a `.eml` file.

    Each attachment is (filename, MIME type, content), e.g. the formal letter as text/html.
    """
    if sent_at.utcoffset() is None:
        raise ValueError("sent_at must be timezone-aware")

    message = EmailMessage(policy=_MAIL_POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(sent_at.astimezone(UTC))
    message["Message-ID"] = message_id if message_id.startswith("<") else f"<{message_id}>"
    # Marks the message as sent by a program, so out-of-office responders leave it alone.
    message["Auto-Submitted"] = "auto-generated"

    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")

    for filename, mime_type, content in attachments:
        maintype, _, subtype = mime_type.split(";")[0].strip().partition("/")
        # Sent as bytes (base64), so the copy is exactly the archived one; text says its charset.
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
        if maintype == "text":
            *_, attached = message.iter_attachments()
            attached.set_param("charset", "utf-8")

    # Last: setting the body clears every Content-* header, and attaching moves them inward.
    message["Content-Language"] = rendered.locale
    # The parts were encoded at 78 columns above. Written out, a header is folded only past the
    # RFC 5322 limit: the e-mail package moves a subject that would just not fit onto a line of
    # its own, and readers then see it with a leading space.
    return message.as_bytes(policy=_MAIL_POLICY.clone(max_line_length=998))


def _open_items(context: NoticeContext) -> list[OpenItem]:
    """The customer's open invoices, oldest due first, always including this notice's own."""
    items = list(context.open_items)
    if all(item.invoice_number != context.invoice_number for item in items):
        items.append(
            OpenItem(
                invoice_number=context.invoice_number,
                currency=context.currency,
                amount_outstanding=context.amount_outstanding,
                due_date=context.due_date,
                days_overdue=context.days_overdue,
            )
        )
    return sorted(items, key=lambda item: (item.due_date, item.invoice_number))


def _totals(items: Sequence[OpenItem]) -> list[tuple[str, Decimal]]:
    """What the open invoices add up to, one total per currency."""
    totals: dict[str, Decimal] = {}
    for item in items:
        totals[item.currency] = totals.get(item.currency, Decimal(0)) + item.amount_outstanding
    return list(totals.items())


def _given(instructions: PaymentInstructions | None) -> PaymentInstructions | None:
    """None when no way to pay is filled in, so the templates show the contact line instead."""
    if instructions is None or not any(instructions.model_dump().values()):
        return None
    return instructions


def _tidy_text(text: str) -> str:
    """Plain text without trailing spaces or runs of blank lines left by template logic."""
    lines = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return re.sub(r"\n{3,}", "\n\n", lines) + "\n"


@pass_context
def _money(context: Context, amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale=context["babel_locale"])


@pass_context
def _date(context: Context, value: date) -> str:
    return format_date(value, format="long", locale=context["babel_locale"])


@pass_context
def _number(context: Context, value: Decimal) -> str:
    return format_decimal(value, locale=context["babel_locale"])


def _iban(value: str) -> str:
    """An IBAN in groups of four, the way it is printed for people to type."""
    compact = "".join(value.split()).upper()
    return " ".join(compact[start : start + 4] for start in range(0, len(compact), 4))


def _timestamp(value: datetime) -> str:
    """A history instant for finance: UTC, to the minute. Naive instants are taken as UTC."""
    instant = value.astimezone(UTC) if value.utcoffset() is not None else value
    return instant.strftime("%Y-%m-%d %H:%M UTC")


class _PlainPhrases:
    """A phrases module as a plain-text template reads it: the same words, not HTML-escaped.

    The phrases escape what they interpolate, which is right in HTML; text and subjects need the
    customer's "Smith & Co" back as written, so each macro's result is unescaped on the way out.
    """

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if not callable(value):
            return value

        def unescaped(*args: Any, **kwargs: Any) -> str:
            words = value(*args, **kwargs)
            return words.unescape() if isinstance(words, Markup) else str(words)

        return unescaped


def _is_web_address(value: object) -> bool:
    """Only http(s) addresses become links: anything else in a notice stays inert text."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))
