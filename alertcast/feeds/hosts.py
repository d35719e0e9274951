"""Which hosts a feed may lead alertcast to: one rule for the parsers and the fetcher.

A link in a feed document is only followed when it points at the feed URL's
own host or at a host the operator listed in the feed's ``allowed_hosts``;
the parser refuses other links with a reason, and the fetcher checks again
on every redirect. Both use this one function so they can never disagree.
"""

from __future__ import annotations


def host_matches(host: str, pattern: str) -> bool:
    """``pattern`` is a host name, or ``*.domain`` for the domain and every host under it."""
    host = host.lower().rstrip(".")
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        domain = pattern[2:]
        return host == domain or host.endswith("." + domain)
    return host == pattern
