"""The citizens' Telegram bot: people subscribe, choose topics and an area, answer alerts.

:mod:`~alertcast.bot.runner` runs it inside the service's event loop,
:mod:`~alertcast.bot.handlers` holds the conversation, :mod:`~alertcast.bot.texts`
everything it says and :mod:`~alertcast.bot.keyboards` its buttons.
"""
