"""Policies for tests that are about dunning, not about credit decisions."""

import yaml


def approving(policy_text: str) -> str:
    """The policy, plus a limit for buyers with no credit report, so the test's buyer gets credit.

    Without it an unrated buyer is referred to finance and its orders are held from the start,
    which is right for the product and beside the point of these tests.
    """
    document = yaml.safe_load(policy_text) or {}
    document.setdefault("credit", {}).setdefault("unrated_buyer_limit", 100000)
    return yaml.safe_dump(document)
