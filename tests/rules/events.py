"""The event the rule tables run against."""

from __future__ import annotations

from typing import Any

EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u1",
    "messageId": "m-1",
    "timestamp": "2026-01-02T03:04:05Z",
    "properties": {
        "total": 120.5,
        "count": 3,
        "zero": 0,
        "currency": "EUR",
        "coupon": None,
        "tags": ["sale", "vip", 7],
        "empty": "",
        "none_list": [],
        "flag": True,
        "off": False,
        "name": "Café Ünïcode 東京",
        "str_num": "100",
        "nested": {"a": {"b": 1}},
        "order.id": "o-9",
        "first name": "Ada",
    },
    "context": {
        "page": {"url": "https://shop.example/checkout?step=2"},
        "library": {"name": "analytics.js", "version": "2.1"},
    },
}
