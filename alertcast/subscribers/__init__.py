"""Citizens' subscriptions: the store, privacy (encryption, keyed look-ups), audiences."""
