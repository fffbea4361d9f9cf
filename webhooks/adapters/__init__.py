"""The source adapters by name: the module that verifies and parses each `/webhooks/<source>`."""

from __future__ import annotations

from types import ModuleType

from webhooks.adapters import (
    chatwoot,
    freshdesk,
    gorgias,
    helpscout,
    intercom,
    jira,
    shopify,
    standard,
    woocommerce,
    zendesk,
)

ADAPTERS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (standard, zendesk, freshdesk, helpscout, intercom, chatwoot, jira, gorgias, shopify,
                   woocommerce)
}
