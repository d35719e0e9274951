"""Dispatch: the durable delivery ledger, the retry policy and the worker that sends.

The core of the broadcaster, with no SDK: channels are reached through
:class:`alertcast.ports.Channel`, rate limits through the limiter's two methods.
"""
