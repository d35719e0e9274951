"""Running alertcast on several instances: process roles and the leases of one-instance parts.

* :mod:`alertcast.ha.roles`: which parts a process runs (``serve --role``).
* :mod:`alertcast.ha.leases`: the right to run a part that must run on one
  instance at a time (a Telegram bot's update consumer), with fail-over.
* :mod:`alertcast.ha.status`: what this process runs and holds, for ``/readyz``.
"""
