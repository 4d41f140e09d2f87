"""What people read: one digest email (text + HTML) or one short SMS per recipient and tick."""

from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from alerting.rules import severity_rank

SMS_LIMIT = 320  # two SMS segments; Twilio splits and re-joins longer texts, phones show both


def _top_severity(items: list[dict[str, Any]]) -> str:
    return max((i["severity"] for i in items if i.get("severity")), key=severity_rank,
               default="high")


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f}" if isinstance(value, (int, float)) else str(value)


def _anomaly_line(item: dict[str, Any]) -> str:
    p = item["payload"]
    return (f"[{item['severity'].upper()}] {p['day']} store {p['store_id']}: {p['explanation']} "
            f"(actual {_number(p.get('actual'))}, expected {_number(p.get('expected'))})")


def compose_email(tenant_id: str, kind: str, items: list[dict[str, Any]], sender: str,
                  recipient: str, link: str | None) -> EmailMessage:
    """A multipart email for one recipient covering every item of this tick (a digest)."""
    severity = _top_severity(items)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Message-ID"] = make_msgid(domain="storepulse.local")
    if kind == "anomaly":
        noun = "anomaly" if len(items) == 1 else "anomalies"
        message["Subject"] = (f"[StorePulse] {tenant_id}: {len(items)} {noun}, "
                              f"{severity} at worst")
        lines = [_anomaly_line(i) for i in sorted(
            items, key=lambda i: (-severity_rank(i["severity"]), i["payload"]["day"]))]
        intro = f"StorePulse found {len(items)} {noun} for {tenant_id}:"
        rows_html = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in (
                i["severity"], i["payload"]["day"], i["payload"]["store_id"],
                i["payload"]["kpi"], _number(i["payload"].get("actual")),
                _number(i["payload"].get("expected")), i["payload"]["explanation"])) + "</tr>"
            for i in items)
        table = ("<table border='1' cellpadding='4'><tr><th>severity</th><th>day</th>"
                 "<th>store</th><th>KPI</th><th>actual</th><th>expected</th><th>what</th></tr>"
                 f"{rows_html}</table>")
    else:
        titles = [i["payload"].get("title", kind) for i in items]
        message["Subject"] = f"[StorePulse] {titles[0]}" + (
            f" (+{len(items) - 1} more)" if len(items) > 1 else "")
        lines = [f"{i['payload'].get('title', kind)}\n{i['payload'].get('body', '')}"
                 + (f"\n{i['payload']['link']}" if i["payload"].get("link") else "")
                 for i in items]
        intro = f"StorePulse {kind.replace('_', ' ')}:"
        table = "".join(
            f"<h3>{html.escape(i['payload'].get('title', kind))}</h3>"
            f"<pre>{html.escape(str(i['payload'].get('body', '')))}</pre>"
            + (f"<p><a href='{html.escape(i['payload']['link'])}'>Open in Dagster</a></p>"
               if i["payload"].get("link") else "")
            for i in items)
    footer = f"\nDashboard: {link}\n" if link else "\n"
    message.set_content(intro + "\n\n" + "\n".join(lines) + "\n" + footer)
    link_html = f"<p><a href='{html.escape(link)}'>Open the dashboard</a></p>" if link else ""
    message.add_alternative(
        f"<html><body><p>{html.escape(intro)}</p>{table}{link_html}</body></html>",
        subtype="html")
    return message


def compose_sms(tenant_id: str, kind: str, items: list[dict[str, Any]]) -> str:
    first = sorted(items, key=lambda i: -severity_rank(i.get("severity") or "high"))[0]
    if kind == "anomaly":
        p = first["payload"]
        text = (f"StorePulse {tenant_id} {first['severity'].upper()}: store {p['store_id']} "
                f"{p['day']}: {p['explanation']}")
    else:
        text = f"StorePulse: {first['payload'].get('title', kind)}"
    if len(items) > 1:
        text += f" (+{len(items) - 1} more, see email)"
    return text if len(text) <= SMS_LIMIT else text[:SMS_LIMIT - 1] + "…"
