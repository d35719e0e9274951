"""Duty officers: who they are, how they prove it, and how their alerts are approved.

``roles`` and ``errors`` are the vocabulary; ``users``, ``tokens`` and
``sessions`` are the stores behind API tokens and console logins;
``workflow`` is the alert desk (draft, submit, approve, release) that
enforces the two-person rule in the core, so no front end can skip it;
``services`` bundles them for the HTTP API, the console and the CLI.
"""
