"""Errors of the state store, each saying what went wrong and what to do about it."""


class StoreError(Exception):
    """Base of every state-store error; ``str()`` is a message an admin can act on."""


class InvalidStoreUrlError(StoreError):
    """``sync.store_url`` is not a database URL presence-sync can use."""


class StoreUnavailableError(StoreError):
    """The database could not be opened or reached (worth retrying once it is back)."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer presence-sync than this one."""


class MigrationError(StoreError):
    """A schema step failed; the database was left as it was before."""


class StoreConflictError(StoreError):
    """A write would break a rule of the store (e.g. two agents linked to one Salesforce user)."""


class LeaseLostError(StoreError):
    """Another sync run took over the lease; this run must stop writing."""


class StoreOwnedElsewhereError(StoreError):
    """The store belongs to another contact center (CXone tenant and Salesforce org) than the config's."""
